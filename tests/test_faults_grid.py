"""Faults of the run grid and its lock-step batches: a partial run on the driver is resumed by its Ray task, never
deleted; a record's file names cannot leave the run folder; long run names keep distinct Message Batch ids; a
lock-step wait ends with a clear error instead of hanging."""
import json, os, re, threading, time
from types import SimpleNamespace

import pytest

from pgkd_nb.batches import LockStep, LockStepTeacher, custom_id
from pgkd_nb.config import GridConfig
from pgkd_nb.data import DEMO_TASK
from pgkd_nb.grid import RunSpec, run_files, spec_config, write_run_files
from pgkd_nb.loop import run_pgkd
from pgkd_nb.records import RecordError

SMOKE = dict(teacher='simulated', preset='tiny', checkpoint='tiny', kd_steps=2, gen_batch=16, n_mined=4, n_few_shot=4,
             test_max=200, pool_max=1000, student={'mode': 'head', 'epochs': 10, 'lr': 1e-2, 'patience': 2,
                                                   'progress': False})
SPEC = RunSpec(DEMO_TASK, 0, 'pgkd', 120)


class Stop(Exception): pass


def stop_after_step_1(i, rec):
    if i == 1: raise Stop


def partial_run(runs_dir) -> tuple[dict, object]:
    "Settings and the run folder of SPEC stopped after KD step 1 of 2 (a local run that was interrupted)."
    s = {**SMOKE, 'runs_dir': str(runs_dir)}
    out = SPEC.path(runs_dir)
    with pytest.raises(Stop): run_pgkd(spec_config(SPEC, s), out, progress=False, on_step=stop_after_step_1)
    return s, out


def test_a_partial_run_is_sent_to_its_task_resumed_and_kept(tmp_path):
    "Without Ray: what the task is sent of a partial run, the task resuming it, the driver writing the result."
    from pgkd_nb.grid import run_record, task_files
    s, out = partial_run(tmp_path/'runs')
    before = run_files(out, weights=True)
    assert task_files(tmp_path/'nothing') is None
    sent = task_files(out)
    assert sent == before and 'step-001/model/head.pt' in sent             # records and the models a resume loads
    rec = run_record(SPEC, s, files=sent)                                   # the Ray task's body, in this process
    got = rec['files']
    assert got['step-001/step.json'] == before['step-001/step.json']       # step 1 kept, not asked again
    assert 'step-002/step.json' in got and 'summary.json' in got
    write_run_files(got, out, keep=True)
    after = run_files(out, weights=True)
    assert all(after[k] == v for k, v in before.items())                  # nothing recorded is lost
    assert after['run.log'].startswith(b'# ')                              # the task's log came back too
    assert json.loads((out/'summary.json').read_text()) == rec['summary']


def test_a_partial_run_survives_the_ray_backend(tmp_path):
    "The one Ray test: a partial run on the driver, `--backend ray` without --shared-out: resumed, not deleted."
    os.environ.setdefault('RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER', '0')
    ray = pytest.importorskip('ray')
    from pgkd_nb.grid import run_missing
    s, out = partial_run(tmp_path/'runs')
    step1 = (out/'step-001'/'step.json').read_bytes()
    started = not ray.is_initialized()
    if started: ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try: got = run_missing([SPEC], s, GridConfig(backend='ray'), log=lambda m: None)
    finally:
        if started: ray.shutdown()
    assert (out/'step-001'/'step.json').read_bytes() == step1              # not redone (its seconds would differ)
    assert (out/'step-000'/'model').is_dir() and (out/'step-002').is_dir()  # the driver's models kept; step 2 added
    assert got[SPEC]['steps'][1]['seconds'] == json.loads(step1)['seconds']


@pytest.mark.parametrize('name', ['../escape.txt', 'step-001/../../escape.txt', 'ABS', '.'])
def test_write_run_files_refuses_names_outside_the_run_folder(tmp_path, name):
    name = str(tmp_path/'escape.txt') if name == 'ABS' else name
    with pytest.raises(RecordError) as e: write_run_files({'ok.txt': b'fine', name: b'x'}, tmp_path/'run')
    msg = str(e.value)
    assert f"refusing the run's file {name!r}" in msg and str(tmp_path/'run') in msg and '\n' not in msg
    assert not (tmp_path/'escape.txt').exists() and not (tmp_path/'run').exists()   # nothing written at all


LONG = 'a_dataset_with_a_long_name_from_the_hugging_face_hub_and_more/n1000/pgkd/seed'


def test_long_run_names_keep_distinct_custom_ids():
    ids = [custom_id(f'{LONG}{seed}', step) for seed in range(20) for step in range(1, 11)]
    assert len(set(ids)) == len(ids)                                         # seed 0 and seed 1 no longer collide
    assert all(re.fullmatch(r'[A-Za-z0-9_-]{1,64}', i) for i in ids)
    assert custom_id(f'{LONG}0', 1).startswith('a_dataset_with_a_long_name')  # a readable prefix
    assert custom_id(f'{LONG}0', 1) == custom_id(f'{LONG}0', 1)               # a pure function: re-attach works
    assert custom_id(f'{LONG}0', 1) == 'a_dataset_with_a_long_name_from_the_hugging_fac--32ca0a4e4d6c-s1'  # any process
    assert custom_id('huffpost_mini/n120/pgkd/seed0', 1) == 'huffpost_mini-n120-pgkd-seed0-s1'  # short: as before
    assert len({custom_id(n, 1) for n in ('a/b', 'a-b', 'a.b', 'a b')}) == 4


def echo(teacher, items, state_dir, progress): return {cid: {'raw': cid} for cid, _, _ in items}


def in_thread(fn) -> dict:
    "Run `fn` on a daemon thread; {'thread', and 'value' or 'error' once it ends}."
    got = {}
    def body():
        try: got['value'] = fn()
        except Exception as e: got['error'] = e
    got['thread'] = threading.Thread(target=body, daemon=True)
    got['thread'].start()
    return got


def test_two_long_named_runs_in_lock_step_get_their_own_answers(tmp_path):
    ls = LockStep(None, tmp_path, 2, echo)
    runs = [in_thread(lambda seed=seed: LockStepTeacher(ls, f'{LONG}{seed}').ask('p', SimpleNamespace(step=1)))
            for seed in (0, 1)]
    for r in runs: r['thread'].join(10)
    assert not any(r['thread'].is_alive() for r in runs), 'lock-step hung'
    assert len(ls.rounds) == 1 and len({r['value']['raw'] for r in runs}) == 2


def test_a_lock_step_wait_ends_with_a_clear_error(tmp_path):
    ls = LockStep(None, tmp_path, 2, echo, wait_s=0.3)                      # the other run never asks
    t = time.time()
    with pytest.raises(TimeoutError) as e: ls.ask('r0-s1', 'p', None)
    assert time.time() - t < 5 and not ls.asked
    assert str(e.value) == ("lock-step: r0-s1 waited 0.3 s for the grid's other runs to ask (0 of 1 did); see their "
                            "run.log, then run the grid again (it resumes)")
    ls = LockStep(None, tmp_path, 2, echo, wait_s=30)                       # two requests with one id
    first = in_thread(lambda: ls.ask('same-s1', 'p', None))
    while not ls.asked: time.sleep(0.01)
    second = in_thread(lambda: ls.ask('same-s1', 'p', None))
    second['thread'].join(5)
    assert isinstance(second.get('error'), ValueError) and "two requests with custom_id 'same-s1'" in str(
        second['error'])
    ls.leave()                                                               # the refused run ends: the first is answered
    first['thread'].join(5)
    assert first['value'] == {'raw': 'same-s1'}
