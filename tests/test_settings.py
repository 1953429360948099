"""Issue 23's settings spine: one `TeacherConfig`/`GridConfig` composed into `RunConfig`, every command's flags made
from them, a teacher a type (`calls_llm` from its class), one `Budget` with one message, `--grid` on reproduce."""
import dataclasses, json
from pathlib import Path

import pytest

from pgkd_nb import config, teachers
from pgkd_nb.cli import parser
from pgkd_nb.config import (GridConfig, RunConfig, TeacherConfig, config_from_args, config_from_dict, config_to_dict,
                            runtime_fields, setting)
from pgkd_nb.costs import Budget, BudgetExceeded
from pgkd_nb.grid import spec_config, RunSpec
from pgkd_nb.repro import repro_settings
from pgkd_nb.student import tiny_checkpoint
from conftest import one_line_error


def _redecorate(cls, extra=(), drop=()):
    "Make the dataclass `cls` again, in place (every reference to it sees it), `extra` (name, type, field) added."
    keep = [f for f in dataclasses.fields(cls) if f.name not in {n for n, _, _ in extra} | set(drop)]
    for n in ('__init__', '__repr__', '__eq__', '__match_args__', '__dataclass_fields__', '__dataclass_params__'):
        if n in cls.__dict__: delattr(cls, n)
    ann = {f.name: f.type for f in keep}
    for f in keep: setattr(cls, f.name, f)
    for name, typ, fld in extra:
        ann[name] = typ
        setattr(cls, name, fld)
    cls.__annotations__ = ann
    for name in list(cls.__dict__):
        if name not in ann and isinstance(cls.__dict__[name], dataclasses.Field): delattr(cls, name)
    return dataclasses.dataclass(cls)


@pytest.fixture
def new_teacher_setting():
    "One new teacher setting, `top_p`, added the way a contributor adds one: a field of `TeacherConfig`, nothing else."
    _redecorate(TeacherConfig, [('top_p', 'float|None', setting(None, 'LLM teachers: nucleus sampling', runtime=True))])
    yield 'top_p'
    _redecorate(TeacherConfig, drop=['top_p'])
    assert 'top_p' not in {f.name for f in dataclasses.fields(TeacherConfig)}


def subcommand(name):
    return next(a for a in parser()._subparsers._group_actions[0].choices.items() if a[0] == name)[1]


def test_adding_a_teacher_setting_is_one_dataclass_field(new_teacher_setting, tmp_path, monkeypatch, capsys):
    for cmd in ('run', 'plan', 'zero-shot', 'reproduce', 'demo'):               # a flag on every command
        assert '--top-p' in subcommand(cmd)._option_string_actions, cmd
    cfg = config_from_args(parser().parse_args(['run', '--teacher', 'openai', '--top-p', '0.9']))
    assert cfg.teacher.top_p == 0.9
    saved = config_to_dict(cfg)                                                 # in config.json, read back
    assert saved['teacher']['top_p'] == 0.9 and config_from_dict(json.loads(json.dumps(saved))) == cfg
    assert 'top_p' in runtime_fields()                                         # its metadata travels too
    r = parser().parse_args(['reproduce', '--teacher', 'openai', '--top-p', '0.5'])   # reproduce: into each run
    s = repro_settings('smoke', 'table2', config_from_args(r, GridConfig), config_from_args(r, TeacherConfig))
    assert spec_config(RunSpec('huffpost_mini', 0, n_samples=120), {**s, 'checkpoint': None}).teacher.top_p == 0.5
    seen = []                                                                   # and it reaches the teacher builder

    def builder(t, *a, **kw):
        seen.append(t)
        raise ValueError('builder reached')
    import pgkd_nb.loop, pgkd_nb.zeroshot
    monkeypatch.setattr(pgkd_nb.loop, 'build_teacher', builder)
    monkeypatch.setattr(pgkd_nb.zeroshot, 'build_teacher', builder)
    one_line_error(capsys, ['run', '--preset', 'tiny', '--checkpoint', tiny_checkpoint(tmp_path/'tiny'), '--n-samples',
                            '120', '--kd-steps', '1', '--top-p', '0.7', '--out', tmp_path/'run', '--quiet',
                            '--student', 'mode=head', 'epochs=1', f"cache_dir={tmp_path/'enc'}"], 'builder reached')
    one_line_error(capsys, ['zero-shot', '--dataset', 'huffpost_mini', '--top-p', '0.8', '--out', tmp_path/'zs'],
                   'builder reached')
    assert [t.top_p for t in seen] == [0.7, 0.8]


def test_older_flat_config_json_still_reads():
    flat = {'dataset': 'huffpost_mini', 'teacher': 'openai', 'teacher_model': 'qwen', 'teacher_rule': 'random',
            'budget_usd': 1.5, 'timeout': 9.0, 'max_retries': 1, 'base_url': 'http://h/v1', 'prompt': 'paper',
            'teacher_cache': '/c', 'price_in': 1.0, 'price_out': 2.0}
    t = config_from_dict(flat).teacher
    assert t == TeacherConfig('openai', 'qwen', 'http://h/v1', '/c', 9.0, 1, 1.5, 'paper', 1.0, 2.0, 'random')
    assert config_from_dict({'model': 'old-name'}).teacher.model == 'old-name'         # the oldest name too
    with pytest.raises(ValueError, match=r"does not know: \['nope'\]"): config_from_dict({'teacher': {'nope': 1}})


def test_a_teacher_is_a_type():
    from pgkd_nb.simulated import SimulatedTeacher
    from pgkd_nb.batches import LockStepTeacher
    from pgkd_nb.teacher import BaseTeacher, ReplayTeacher
    assert issubclass(SimulatedTeacher, BaseTeacher) and issubclass(LockStepTeacher, BaseTeacher)
    assert 'generate' not in vars(SimulatedTeacher) and 'generate' not in vars(LockStepTeacher)   # one generate
    assert (SimulatedTeacher.calls_llm, ReplayTeacher.calls_llm, ReplayTeacher.billed) == (False, True, False)
    assert teachers.calls_llm(TeacherConfig('anthropic')) and not teachers.calls_llm(TeacherConfig())
    assert 'simulated' not in teachers.llm_teachers() and 'simulated' in teachers.KINDS


def test_one_budget_one_message():
    b = Budget(0.25, 0.1)
    assert b.refusal(0.1) is None
    assert b.refusal(0.2, 'a batch of 6 m requests', 'raise it') == (
        "budget $0.25: $0.1000 spent, and a batch of 6 m requests could cost up to $0.2000; raise it")
    with pytest.raises(BudgetExceeded, match=r"^grid budget \$1\.00: \$1\.0000 spent, and nothing is left for the next"):
        Budget(1.0, 1.0, scope='grid ').check(0.0, 'the next call', 'raise --grid-budget-usd to go on')
    assert Budget(None, 99).refusal(1e9) is None


def test_reproduce_grid_flag_and_the_deprecated_preset(capsys):
    from pgkd_nb.cli import reproduce_preset
    a = parser().parse_args(['reproduce', '--grid', 'cpu', '--datasets', 'imdb,inshorts', '--jobs', '3'])
    assert reproduce_preset(a) == 'cpu' and capsys.readouterr().err == ''
    g = config_from_args(a, GridConfig)
    assert (g.datasets, g.jobs, g.backend) == (['imdb', 'inshorts'], 3, 'local')
    old = parser().parse_args(['reproduce', '--preset', 'cpu'])
    assert reproduce_preset(old) == 'cpu'
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and '--preset is deprecated' in err and '--grid' in err
    assert reproduce_preset(parser().parse_args(['reproduce'])) == 'smoke'


def test_wording_flag_is_the_prompt_flag():
    a = parser().parse_args(['run', '--wording', 'paper'])
    assert config_from_args(a).teacher.wording == 'paper'
    assert config_from_args(parser().parse_args(['run', '--prompt', 'paper'])).teacher.wording == 'paper'
    assert config_from_args(parser().parse_args(['run', '--model', 'm'])).teacher.model == 'm'
    assert RunConfig().teacher == TeacherConfig() and Path(config.__file__).name == 'config.py'
