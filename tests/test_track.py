"""MLflow tracking (`pgkd_nb.track`) against a real MLflow SQLite store in a temporary folder, no mocks: a run's
settings as params, each step's metrics, its files as artifacts, runs nested in a parent, a killed run resumed into
the same MLflow run without a step logged twice, and `mlflow server` serving the store on 127.0.0.1."""
import json, os, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')
mlflow = pytest.importorskip('mlflow', reason="MLflow is not installed: pip install 'pgkd_nb[track]' (the full "
                             "mlflow package) to run the tracking tests")

from mlflow import MlflowClient  # noqa: E402
from pgkd_nb.config import RunConfig  # noqa: E402
from pgkd_nb.loop import run_pgkd  # noqa: E402
from pgkd_nb.records import completed_steps, read_json  # noqa: E402
from pgkd_nb.student import tiny_checkpoint  # noqa: E402
from pgkd_nb.track import (PARAM_LIMITS, StepTracker, flat_params, mlflow_client, parent_run, track_run,  # noqa: E402
                           track_runs)

STEPS = 3


def tiny(tmp, **kw) -> RunConfig:
    "A tiny run: tiny BERT in head mode, 80 annotated rows, the simulated teacher."
    return RunConfig(preset='tiny', checkpoint=tiny_checkpoint(tmp/'tiny'), n_samples=80, gen_batch=8, n_mined=2,
                     n_few_shot=2, test_max=40, kd_steps=STEPS, patience=STEPS,
                     student={'mode': 'head', 'epochs': 5, 'cache_dir': str(tmp/'enc')}, **kw)


@pytest.fixture(scope='module')
def finished(tmp_path_factory) -> Path:
    "A finished tiny run (not tracked), copied by the tests that need one."
    tmp = tmp_path_factory.mktemp('base')
    run_pgkd(tiny(tmp), tmp/'run', progress=False)
    return tmp/'run'


def copy_run(src, dst) -> Path:
    shutil.copytree(src, dst)
    return dst


def sqlite(tmp_path) -> str: return f"sqlite:///{tmp_path/'store'/'mlflow.db'}"


def history(client, run_id, key='val_loss') -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


class Kill(Exception): pass


def test_after_the_fact(tmp_path, finished, monkeypatch):
    monkeypatch.chdir(tmp_path)                        # nothing may land in the working folder (./mlruns)
    out = copy_run(finished, tmp_path/'run')
    params = flat_params(read_json(out/'config.json'))
    run_id = track_run(out, sqlite(tmp_path))
    c = MlflowClient(sqlite(tmp_path))
    run = c.get_run(run_id)
    assert run.info.status == 'FINISHED' and run.info.run_name == 'run'
    assert run.data.params == params and params['student.mode'] == 'head' and params['kd_steps'] == str(STEPS)
    assert run.data.tags['pgkd.teacher'] == 'simulated' and run.data.tags['pgkd.dataset'] == 'huffpost_mini'
    recs, s = completed_steps(out), read_json(out/'summary.json')
    for key in ('val_loss', 'val_accuracy', 'val_macro_f1', 'n_accepted', 'n_rejected', 'seconds'):
        assert history(c, run_id, key) == [(r['step'], float(r[key])) for r in recs], key
    assert [s for s, _ in history(c, run_id, 'cost_usd')] == list(range(1, STEPS + 1))          # KD steps only
    assert [s for s, _ in history(c, run_id, 'input_tokens')] == list(range(1, STEPS + 1))
    assert run.data.metrics['test_pgkd_accuracy'] == s['pgkd']['accuracy']
    assert run.data.metrics['test_baseline_macro_f1'] == s['baseline']['macro_f1']
    top = {a.path for a in c.list_artifacts(run_id)}
    assert {'summary.json', 'step-000', 'step-001'} <= top
    assert {a.path for a in c.list_artifacts(run_id, 'step-001')} == {f'step-001/{n}' for n in
                                                                      ('prompt.txt', 'reply.txt', 'step.json')}
    got = Path(c.download_artifacts(run_id, 'step-002/prompt.txt', str(tmp_path/'dl')))
    assert got.read_text() == (out/'step-002'/'prompt.txt').read_text()
    assert not (tmp_path/'mlruns').exists() and (tmp_path/'store'/'mlartifacts').is_dir()
    assert read_json(out/'tracking.json')['runs'] == {sqlite(tmp_path).replace('sqlite:///', 'sqlite:///'): run_id}
    (out/'report.html').write_text('<html>report</html>')            # written later by `pgkd report`
    assert track_run(out) == run_id                                  # the store is found in tracking.json
    assert history(c, run_id) == [(r['step'], r['val_loss']) for r in recs]    # nothing logged twice
    assert 'report.html' in {a.path for a in c.list_artifacts(run_id)}
    assert len(c.get_metric_history(run_id, 'test_pgkd_accuracy')) == 1


def test_params_cut_to_limits_and_no_credentials(tmp_path, finished):
    from mlflow.utils.validation import MAX_ENTITY_KEY_LENGTH, MAX_PARAM_VAL_LENGTH
    assert PARAM_LIMITS == (MAX_ENTITY_KEY_LENGTH, MAX_PARAM_VAL_LENGTH)
    p = flat_params({'student': {'lr': 1e-3, 'mode': 'head'}, 'base_url': 'http://me:pw-SENTINEL@127.0.0.1:9/v1',
                     'api_key': 'sk-SENTINEL', 'name': 'x'*7000, 'empty': {}, 'labels': None, 'k'*300: 1})
    assert p['student.lr'] == '0.001' and p['student.mode'] == 'head' and p['empty'] == '{}' and p['labels'] == 'null'
    assert p['base_url'] == 'http://***@127.0.0.1:9/v1' and 'api_key' not in p
    assert len(p['name']) == 6000 and 'k'*250 in p
    out = copy_run(finished, tmp_path/'run')
    cfg = read_json(out/'config.json')                 # as if config.json had kept a URL's credentials
    teacher = cfg['teacher'] if isinstance(cfg.get('teacher'), dict) else cfg
    teacher['base_url'] = 'http://me:pw-SENTINEL@h/v1'
    (out/'config.json').write_text(json.dumps({**cfg, 'name': 'x'*7000}))
    run_id = track_run(out, sqlite(tmp_path))
    params = MlflowClient(sqlite(tmp_path)).get_run(run_id).data.params
    url = next(k for k in params if k.endswith('base_url'))
    assert len(params['name']) == 6000 and params[url] == 'http://***@h/v1'
    for f in (tmp_path/'store').rglob('*'):
        if f.is_file(): assert b'pw-SENTINEL' not in f.read_bytes(), f


def test_live_hook_resume_no_duplicates(tmp_path):
    out, uri, cfg = tmp_path/'run', sqlite(tmp_path), tiny(tmp_path)

    def hook_then_kill(tracker):
        def hook(i, rec):
            tracker(i, rec)
            if i == 2: raise Kill()
        return hook

    with pytest.raises(Kill):
        with StepTracker(out, uri) as tracker: run_pgkd(cfg, out, progress=False, on_step=hook_then_kill(tracker))
    c, run_id = MlflowClient(uri), tracker.run_id
    assert [s for s, _ in history(c, run_id)] == [0, 1, 2] and c.get_run(run_id).info.status == 'FAILED'
    with StepTracker(out) as again:                    # resumed: the store and the MLflow run from tracking.json
        run_pgkd(cfg, out, progress=False, on_step=again)
    assert again.run_id == run_id and c.get_run(run_id).info.status == 'FINISHED'
    recs = completed_steps(out)
    assert history(c, run_id) == [(r['step'], r['val_loss']) for r in recs] and len(recs) == STEPS + 1
    assert [s for s, _ in history(c, run_id, 'n_accepted')] == list(range(STEPS + 1))
    assert track_run(out) == run_id and len(history(c, run_id)) == STEPS + 1     # after the fact: nothing twice
    assert len(c.search_runs([c.get_experiment_by_name('pgkd').experiment_id])) == 1
    other = f"sqlite:///{tmp_path/'other'/'mlflow.db'}"                        # the same folder logged after the fact
    later = track_run(out, other)
    assert history(MlflowClient(other), later) == history(c, run_id)
    assert set(read_json(out/'tracking.json')['runs']) == {uri, other}


def test_nested_runs(tmp_path, finished):
    grid, uri = tmp_path/'grid', sqlite(tmp_path)
    for name in ('huffpost-seed0', 'huffpost-seed1'): copy_run(finished, grid/'runs'/name)
    ids = track_runs(grid, uri)
    c = MlflowClient(uri)
    parent = read_json(grid/'tracking.json')['runs'][uri]
    assert sorted(Path(p).name for p in ids) == ['huffpost-seed0', 'huffpost-seed1']
    for run_id in ids.values(): assert c.get_run(run_id).data.tags['mlflow.parentRunId'] == parent
    assert c.get_run(parent).info.status == 'FINISHED'
    assert track_runs(grid, uri) == ids and parent_run(grid, uri) == parent      # again: the same runs
    assert len(c.search_runs([c.get_experiment_by_name('pgkd').experiment_id])) == 3
    live = StepTracker(copy_run(finished, grid/'runs'/'extra'), uri, parent=grid)    # a parent named by its folder
    assert live.parent == parent and c.get_run(live.sync()).data.tags['mlflow.parentRunId'] == parent


def test_missing_mlflow_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, 'mlflow', None)            # as if it were not installed
    with pytest.raises(ImportError, match=r"pip install 'pgkd_nb\[track\]'"): mlflow_client('sqlite:///x.db')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def call(url, body=None) -> dict:
    "GET `url`, or POST `body` as JSON to it; the JSON answer."
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data, {'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=10) as r: return json.loads(r.read())


def test_mlflow_server_serves_the_store(tmp_path, finished):
    uri = sqlite(tmp_path)
    run_id = track_run(copy_run(finished, tmp_path/'run'), uri)
    port = free_port()
    cmd = [sys.executable, '-m', 'mlflow', 'server', '--backend-store-uri', uri, '--host', '127.0.0.1',
           '--port', str(port), '--workers', '1']
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f'http://127.0.0.1:{port}'
    try:
        for _ in range(240):                                     # up to 2 min on a busy 2-core machine
            try:
                with urllib.request.urlopen(base + '/health', timeout=2): break
            except OSError:
                if proc.poll() is not None: pytest.fail(f"mlflow server exited: {proc.stderr.read().decode()[-2000:]}")
                time.sleep(0.5)
        api = base + '/api/2.0/mlflow'
        exp = call(api + '/experiments/get-by-name?experiment_name=pgkd')['experiment']
        found = call(api + '/runs/search', {'experiment_ids': [exp['experiment_id']]})
        assert [r['info']['run_id'] for r in found['runs']] == [run_id]
        got = call(f'{api}/metrics/get-history?run_id={run_id}&metric_key=val_loss')
        assert sorted(m['step'] for m in got['metrics']) == list(range(STEPS + 1))
        arts = call(f'{api}/artifacts/list?run_id={run_id}&path=step-001')      # the artifacts are served too
        assert {f['path'] for f in arts['files']} >= {'step-001/prompt.txt', 'step-001/reply.txt'}
    finally:
        proc.terminate()
        try: proc.wait(20)
        except subprocess.TimeoutExpired: proc.kill()


def test_pgkd_run_tracking_flag(tmp_path):
    "`pgkd run --tracking URI` logs each step of the run as it goes, and its end, into the store at URI."
    from pgkd_nb.cli import main
    tiny_dir = tiny_checkpoint(tmp_path/'tiny')
    code = main(['run', '--preset', 'tiny', '--checkpoint', str(tiny_dir), '--n-samples', '80', '--gen-batch', '8',
                 '--n-mined', '2', '--n-few-shot', '2', '--test-max', '40', '--kd-steps', '2', '--patience', '2',
                 '--student', 'mode=head', 'epochs=5', f"cache_dir={tmp_path/'enc'}", '--out', str(tmp_path/'run'),
                 '--quiet', '--tracking', sqlite(tmp_path)])
    assert code == 0
    c = MlflowClient(sqlite(tmp_path))
    run_id = json.loads((tmp_path/'run'/'tracking.json').read_text())['runs'][sqlite(tmp_path)]
    run = c.get_run(run_id)
    assert run.info.status == 'FINISHED'
    assert [s for s, _ in history(c, run_id)] == [0, 1, 2]
