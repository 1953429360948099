"""Faults of a run's own record and of real data, met end to end: damaged or deleted files, re-runs of a finished run,
file modes, a pool too small for the simulated teacher, texts equal to class names, a teacher copying a test text."""
import ast
import json
import os
import shutil
import stat
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import one_line_error
from pgkd_nb.config import RunConfig
from pgkd_nb.data import DEMO_TASK, EMBEDDED_DIR, Task, load_task
from pgkd_nb.loop import run_pgkd
from pgkd_nb.prompt import PGKDRequest, build_prompt, withhold_blocked
from pgkd_nb.records import RecordError, atomic_dir, completed_steps, read_json, write_json, write_step
from pgkd_nb.reply import parse_rows, rows_to_reply
from pgkd_nb.student import tiny_checkpoint

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp('ck')/'tiny')


def argv(tiny, out, *more):
    "`pgkd run` for a tiny run (tiny BERT, head mode, 80 annotated rows, 2 KD steps of 8 rows, simulated teacher)."
    return [str(a) for a in ['run', '--preset', 'tiny', '--checkpoint', tiny, '--n-samples', 80, '--kd-steps', 2,
                             '--gen-batch', 8, '--n-mined', 2, '--n-few-shot', 2, '--test-max', 40, '--student',
                             'mode=head', 'epochs=3', f"cache_dir={Path(tiny).parent/'enc'}", '--quiet', '--out', out,
                             *more]]


def tiny_cfg(tiny, **kw):
    "The same run as `argv`, as a `RunConfig`."
    return RunConfig(preset='tiny', checkpoint=tiny, n_samples=80, kd_steps=2, gen_batch=8, n_mined=2, n_few_shot=2,
                     test_max=40, student={'mode': 'head', 'epochs': 3, 'cache_dir': str(Path(tiny).parent/'enc')},
                     **kw)


@pytest.fixture(scope='module')
def finished(tiny, tmp_path_factory):
    "A finished tiny run, made once; tests work on copies."
    from pgkd_nb.cli import main
    out = tmp_path_factory.mktemp('runs')/'done'
    assert main(argv(tiny, out)) == 0
    return out


@pytest.fixture
def run_copy(finished, tmp_path):
    out = tmp_path/'run'
    shutil.copytree(finished, out)
    return out


class Kill(Exception): pass


def kill_after(step):
    def hook(i, rec):
        if i == step: raise Kill()
    return hook


# 1. the prompt notebook finds amazon_hierarchical in the repository's data/, never on the Hub

def test_prompt_notebook_loads_tasks_without_the_hub(monkeypatch, capsys):
    nb = json.loads((REPO/'nbs'/'11_prompt.ipynb').read_text())
    cells = {c['id']: ''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code'}
    for src in cells.values():                 # every load of a task other than the embedded demo says hub=False
        for node in ast.walk(ast.parse('\n'.join(l for l in src.splitlines() if not l.startswith(('%', '!'))))):
            if isinstance(node, ast.Call) and getattr(node.func, 'id', '') == 'load_task':
                demo = isinstance(node.args[0], ast.Name) and node.args[0].id == 'DEMO_TASK'
                assert demo or any(k.arg == 'hub' for k in node.keywords), ast.unparse(node)
    import pgkd_nb.data as data
    monkeypatch.setattr(data, 'data_dirs', lambda data_dir=None: [REPO/'data', EMBEDDED_DIR])   # a clone: no ../shared
    def offline(*a, **kw): raise ConnectionError('no network')
    monkeypatch.setattr(data, 'load_hub', offline)
    import pgkd_nb.prompt
    g = dict(vars(pgkd_nb.prompt))                                     # the notebook's exported definitions
    order = [c['id'] for c in nb['cells'] if c['cell_type'] == 'code']
    for cid in ('9bc75df0', '5d4e2f4e', '88ee45a6'):                    # imports, fake_request, the token table
        before = cells[order[order.index(cid) - 1]]                      # the cell holding its imports, if any
        if all(isinstance(s, (ast.Import, ast.ImportFrom)) for s in ast.parse(before).body): exec(before, g)
        exec(cells[cid], g)
    assert 'amazon_hierarchical: 363 classes' in capsys.readouterr().out


# 2. a validation/test text equal to a class name is not a leak of the taxonomy; rows showing one are withheld

def with_class_name_texts(task) -> Task:
    "The demo task with test rows whose texts are class names (as intent data has 'goodbye' in class goodbye)."
    extra = [{'text': l, 'label': l} for l in task.labels[:5]]
    extra.append({'text': task.labels[5].lower(), 'label': task.labels[5]})
    return Task(task.name, task.labels, task.train, task.test + extra, task.source)


def test_class_name_texts_do_not_stop_a_run(tiny, tmp_path):
    task = with_class_name_texts(load_task(DEMO_TASK))
    s = run_pgkd(tiny_cfg(tiny), tmp_path/'run', task=task, progress=False)
    assert [r['step'] for r in s['steps']] == [0, 1, 2]
    for r in completed_steps(tmp_path/'run')[1:]: assert r['withheld'] == 0 and r['n_accepted'] > 0


def test_taxonomy_and_labels_are_not_leaks():
    labels = ['goodbye', 'greeting', 'activity centers entertainers']
    rows = [{'text': 'see you later', 'label': 'goodbye'}, {'text': 'hello there', 'label': 'greeting'}]
    mined = [{**rows[0], 'pred': 'goodbye', 'confidence': .9}]
    req = PGKDRequest(task='intents', labels=labels, few_shot=rows, correct=mined, misclassified=mined)
    build_prompt(req, blocked_texts=['goodbye', 'Activity centers entertainers'])          # class names: no leak
    shown = PGKDRequest(task='intents', labels=labels, few_shot=rows + [{'text': 'Goodbye!', 'label': 'goodbye'}])
    with pytest.raises(ValueError, match='blocked'): build_prompt(shown, blocked_texts=['goodbye'])
    kept, n = withhold_blocked(shown, ['goodbye'])
    assert n == 1 and kept.few_shot == rows
    build_prompt(kept, blocked_texts=['goodbye'])


# 3. one rule for "shows a blocked text", on the prompt side and in the reply parser

def test_reply_parser_rejects_a_row_containing_a_test_text():
    task = load_task(DEMO_TASK)
    test_text = next(r['text'] for r in task.test if len(r['text']) >= 40)
    reply = rows_to_reply([{'text': 'Note: ' + test_text, 'label': task.labels[0]}, task.train[0]])
    rows, rejects, _ = parse_rows(reply, task.labels, blocked_texts=[test_text])
    assert rows == [task.train[0]] and rejects == {'blocked': 1}
    req = PGKDRequest(task='t', labels=task.labels, few_shot=[{'text': 'Note: ' + test_text, 'label': task.labels[0]}])
    assert withhold_blocked(req, [test_text])[1] == 1                   # the prompt side, by the same rule


# 4. a deleted best_model/ is rebuilt from the kept step's weights, or the one line says why it cannot be

def test_deleted_best_model_is_rebuilt(tiny, run_copy, capsys):
    from pgkd_nb.cli import main
    best = read_json(run_copy/'summary.json')['best_step']
    before = {p.name: p.read_bytes() for p in (run_copy/'best_model').iterdir()}
    shutil.rmtree(run_copy/'best_model')
    assert main(argv(tiny, run_copy)) == 0
    assert {p.name: p.read_bytes() for p in (run_copy/'best_model').iterdir()} == before
    assert before == {p.name: p.read_bytes() for p in (run_copy/f'step-{best:03d}'/'model').iterdir()}
    assert main(['export', str(run_copy), str(run_copy.parent/'export')]) == 0


def test_best_model_and_its_step_weights_gone(tiny, run_copy, capsys):
    best = read_json(run_copy/'summary.json')['best_step']
    shutil.rmtree(run_copy/'best_model')
    shutil.rmtree(run_copy/f'step-{best:03d}'/'model')
    one_line_error(capsys, argv(tiny, run_copy), 'best_model', f'step-{best:03d}/model', '--out')


# 5. re-running a finished run does not rewrite its settings: config.json and summary.json keep one truth

def test_finished_run_keeps_its_settings(tiny, run_copy, capsys):
    from pgkd_nb.cli import main
    config = (run_copy/'config.json').read_bytes()
    assert main(argv(tiny, run_copy, '--timeout', '33', '--budget-usd', '7')) == 0
    assert (run_copy/'config.json').read_bytes() == config
    assert read_json(run_copy/'summary.json')['config'] == read_json(run_copy/'config.json')


# 6. damaged records: named, a damaged last step set aside and redone, a damaged summary rebuilt

def truncate(path): path.write_text(path.read_text()[:40])


def test_damaged_last_step_is_set_aside_and_redone(tiny, tmp_path):
    cfg, out = tiny_cfg(tiny), tmp_path/'run'
    with pytest.raises(Kill): run_pgkd(cfg, out, progress=False, on_step=kill_after(2))
    truncate(out/'step-002'/'step.json')
    with pytest.raises(RecordError, match=r'step-002/step\.json'): completed_steps(out)      # named, for show/report
    s = run_pgkd(cfg, out, progress=False)
    assert [r['step'] for r in s['steps']] == [0, 1, 2]
    aside = list(tmp_path.glob('run/step-002.damaged-*'))
    assert len(aside) == 1 and (aside[0]/'accepted.json').exists()           # kept, not deleted


def test_damaged_earlier_step_is_one_line(tiny, run_copy, capsys):
    (run_copy/'summary.json').unlink()
    truncate(run_copy/'step-001'/'step.json')
    one_line_error(capsys, argv(tiny, run_copy), 'step-001/step.json', '--out')
    one_line_error(capsys, ['show', run_copy], 'step-001/step.json')


def test_damaged_summary_is_named_then_rebuilt(tiny, run_copy, capsys):
    from pgkd_nb.cli import main
    old = read_json(run_copy/'summary.json')
    (run_copy/'summary.json').write_text('garbage{')
    for cmd in (['show', run_copy], ['report', run_copy], ['export', run_copy, run_copy.parent/'x']):
        one_line_error(capsys, cmd, 'summary.json', 'pgkd run')
    assert main(argv(tiny, run_copy)) == 0
    new = read_json(run_copy/'summary.json')
    assert (new['pgkd'], new['baseline'], new['steps'][-1]['val_loss']) == (old['pgkd'], old['baseline'],
                                                                            old['steps'][-1]['val_loss'])
    assert len(list(run_copy.glob('summary.json.damaged-*'))) == 1


def test_read_json_names_the_file(tmp_path):
    (tmp_path/'x.json').write_text('{"a": ')
    with pytest.raises(RecordError, match=r'x\.json'): read_json(tmp_path/'x.json')
    (tmp_path/'y.json').write_bytes(b'\xff\xfe{')
    with pytest.raises(RecordError, match=r'y\.json'): read_json(tmp_path/'y.json')


# 7. atomic writes respect the umask

@contextmanager
def umask(mask):
    old = os.umask(mask)
    try: yield
    finally: os.umask(old)


def modes(d) -> dict:
    return {str(p.relative_to(d)): stat.S_IMODE(p.stat().st_mode) for p in Path(d).rglob('*') if p.is_file()}


def test_atomic_writes_respect_the_umask(tmp_path):
    with umask(0o022):
        write_json(tmp_path/'a.json', {'x': 1})
        with atomic_dir(tmp_path/'d') as t: write_json(t/'b.json', {})
        write_step(tmp_path, 1, {'step.json': {'step': 1}, 'prompt.txt': 'p'})
    assert set(modes(tmp_path).values()) == {0o644}, modes(tmp_path)
    with umask(0o077): write_json(tmp_path/'private.json', {})
    assert stat.S_IMODE((tmp_path/'private.json').stat().st_mode) == 0o600


def test_run_report_and_export_are_readable(tiny, tmp_path):
    from pgkd_nb.cli import main
    with umask(0o022):
        assert main(argv(tiny, tmp_path/'run')) == 0
        assert main(['report', str(tmp_path/'run')]) == 0
        assert main(['export', str(tmp_path/'run'), str(tmp_path/'export')]) == 0
    unreadable = {k: oct(m) for k, m in modes(tmp_path).items() if m & 0o044 != 0o044}
    assert not unreadable, unreadable


# 8. a pool too small for the simulated teacher is refused before model_0 is trained

def test_no_pool_is_refused_before_training(tiny, tmp_path, capsys):
    from pgkd_nb.files import load_data
    texts = {'sport': 'the match the goal the team won', 'food': 'the recipe the soup the bread baked'}
    rows = [{'text': f"{t} {i}", 'label': l} for l, t in texts.items() for i in range(30)]
    (tmp_path/'small.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    n = len(load_data(tmp_path/'small.jsonl').train)
    out = tmp_path/'run'
    args = argv(tiny, out)
    args[args.index('--n-samples') + 1] = str(n)
    one_line_error(capsys, args + ['--data', tmp_path/'small.jsonl'], f'--n-samples {n}', f'--n-samples {n - 8}')
    assert not (out/'step-000').exists()                                     # refused before model_0
    args[args.index('--n-samples') + 1] = str(n - 4)                         # a pool of 4 rows < one gen_batch of 8
    one_line_error(capsys, args + ['--data', tmp_path/'small.jsonl'], f'--n-samples {n - 8}')
