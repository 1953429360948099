"""A fair baseline (issue 27): every fit says what stopped it, an under-trained model_0 is named wherever the run is
shown, and the more-training control (`--strategy more`) adds no rows and asks no teacher. Real MiniLM embeddings
(the `cpu` preset's frozen encoder, offline) on 120 annotated rows of the demo task: about 20 s in all."""
import json

import pytest

from pgkd_nb.cli import parser
from pgkd_nb.config import UNDER_TRAINED, RunConfig, make_config, under_trained_line
from pgkd_nb.data import DEMO_TASK, load_task
from pgkd_nb.grid import RunSpec
from pgkd_nb.loop import run_pgkd
from pgkd_nb.records import completed_steps, format_summary, read_json, step_path, write_json
from pgkd_nb.report import load_run, write_report
from pgkd_nb.repro import write_report as write_table
from pgkd_nb.student import Student
from pgkd_nb.tables import results_frame, table2, under_trained_note

FIT_KEYS = ('max_epochs', 'stopped', 'val_loss_slope', 'under_trained')


def short(tmp, **kw) -> RunConfig:
    "The `cpu` preset's head capped at 3 epochs: on 120 rows its validation loss is still falling at the cap."
    return RunConfig(**{**dict(preset='cpu', n_samples=120, kd_steps=2, gen_batch=16, n_mined=4, n_few_shot=4,
                               test_max=50, pool_max=64,
                               student={'epochs': 3, 'lr': 1e-2, 'cache_dir': str(tmp/'cache'), 'progress': False}),
                        **kw})


class NoCalls:
    "A teacher that fails the run if it is asked anything."
    def generate(self, *a, **kw): raise AssertionError('the teacher was asked')


@pytest.fixture(scope='module')
def tmp(tmp_path_factory): return tmp_path_factory.mktemp('fit_stop')


@pytest.fixture(scope='module')
def capped(tmp):
    "A finished PGKD run whose model_0 stopped at its 3-epoch cap, loss still falling."
    return run_pgkd(short(tmp), tmp/'runs'/'pgkd-seed0', progress=False), tmp/'runs'/'pgkd-seed0'


@pytest.fixture(scope='module')
def more(tmp):
    "A finished `--strategy more` run with a teacher that fails if asked."
    return run_pgkd(short(tmp, strategy='more'), tmp/'runs'/'more-seed0', teacher=NoCalls(), progress=False)


def three_classes():
    task = load_task(DEMO_TASK)
    labs = task.labels[:3]
    return labs, [r for r in task.train if r['label'] in labs][:150]


def test_a_fit_at_its_cap_with_falling_loss_is_under_trained(tmp):
    labs, rows = three_classes()
    cfg = make_config('tiny', checkpoint='default', mode='head', epochs=3, lr=1e-2, patience=3,
                      cache_dir=str(tmp/'cache'))
    fit = Student(labs, cfg).fit(rows[:120], rows[120:])
    assert (fit['stopped'], fit['under_trained'], fit['max_epochs'], len(fit['epochs'])) == ('cap', True, 3, 3)
    assert fit['val_loss_slope'] < 0


def test_a_fit_that_early_stops_says_early(tmp):
    labs, rows = three_classes()
    cfg = make_config('tiny', checkpoint='default', mode='head', epochs=200, lr=1e-1, patience=2,
                      cache_dir=str(tmp/'cache'))
    fit = Student(labs, cfg).fit(rows[:120], rows[120:])
    assert fit['stopped'] == 'early' and not fit['under_trained'] and len(fit['epochs']) < 200


def test_every_step_record_says_what_stopped_its_fit(capped):
    _, out = capped
    for r in completed_steps(out): assert all(k in r for k in FIT_KEYS), r


def test_the_warning_is_in_the_summary(capped):
    s, _ = capped
    assert s['baseline_fit']['stopped'] == 'cap' and s['baseline_fit']['under_trained']
    assert len(s['warnings']) == 1 and UNDER_TRAINED in s['warnings'][0]
    assert s['warnings'] == [under_trained_line(s['baseline_fit'])]


def test_the_warning_is_in_pgkd_show(capped, capsys):
    from pgkd_nb.cli import main
    _, out = capped
    assert main(['show', str(out)]) == 0
    assert capsys.readouterr().out.rstrip().endswith(under_trained_line(capped[0]['baseline_fit']))


def test_the_warning_is_printed_when_model_0_is_written(tmp, capsys):
    run_pgkd(short(tmp, kd_steps=0), tmp/'printed', progress=False)
    assert f"{UNDER_TRAINED}; give it more epochs (--student epochs=N)" in capsys.readouterr().err


def test_the_warning_is_in_the_report(capped, tmp):
    _, out = capped
    page = write_report(out, tmp/'capped.html').read_text()
    assert 'UNDER-TRAINED baseline.' in page and UNDER_TRAINED in page


def test_the_warning_is_under_the_reproduction_tables(capped, tmp):
    s, _ = capped
    runs = results_frame({RunSpec(DEMO_TASK, 0, 'pgkd', 120): s})
    assert runs.baseline_under_trained[0]
    assert 'huffpost_mini n=120 pgkd seed 0' in under_trained_note(runs)
    md = write_table(tmp/'tables', 'table2', table2(runs), runs, '# Table 2\n')[0].read_text()
    assert UNDER_TRAINED in md


def test_more_adds_no_rows_asks_no_teacher_and_records_every_step(more, tmp):
    out = tmp/'runs'/'more-seed0'
    assert (more['strategy'], more['n_added'], more['teacher']['calls'], more['teacher']['cost_usd']) == ('more', 0, 0, 0)
    recs = completed_steps(out)
    assert [r['step'] for r in recs] == [0, 1, 2]
    n0 = recs[0]['n_history']
    for r in recs[1:]:
        assert (r['teacher'], r['n_accepted'], r['n_history']) == ('none', 0, n0)
        assert read_json(step_path(out, r['step'])/'accepted.json') == []
        assert all(k in r for k in FIT_KEYS)
    assert [r['val_loss'] for r in recs] == sorted((r['val_loss'] for r in recs), reverse=True)   # it trains further
    assert 'strategy more' in format_summary(more) and 'more ' in format_summary(more)
    page = write_report(out, tmp/'more.html').read_text()
    assert "PGKD&#39;s loop with --strategy more" in page and 'What the teacher saw' not in page


def test_more_reaches_the_command_line():
    a = parser().parse_args(['run', '--strategy', 'more'])
    assert a.strategy == 'more'


def test_older_records_without_these_keys_still_load_and_render(capped, tmp):
    import shutil
    _, src = capped
    out = tmp/'old'
    shutil.copytree(src, out)
    for p in out.glob('step-*/step.json'):
        write_json(p, {k: v for k, v in read_json(p).items() if k not in FIT_KEYS})
    s = {k: v for k, v in read_json(out/'summary.json').items() if k not in ('baseline_fit', 'warnings')}
    write_json(out/'summary.json', s)
    assert under_trained_line(s.get('baseline_fit')) == ''
    assert 'dataset huffpost_mini' in format_summary(s)
    page = write_report(out, tmp/'old.html').read_text()
    assert 'UNDER-TRAINED' not in page and 'Test metrics' in page
    assert load_run(out)['steps'][0].get('stopped') is None
    runs = results_frame({RunSpec(DEMO_TASK, 0, 'pgkd', 120): s})
    assert not runs.baseline_under_trained[0] and under_trained_note(runs) is None
    assert run_pgkd(short(tmp), out, progress=False) == json.loads((out/'summary.json').read_text())   # finished
