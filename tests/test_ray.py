"""The `ray` backend of the run grid, on a Ray instance started inside the test (2 CPUs, loopback, no dashboard).

The smoke grid through `--backend ray` gives the summaries of the local backend; a worker killed mid-run is
retried by Ray and the grid ends with the same results; a driver started again re-runs only what is missing;
one provider-limit actor serves every task; a bad address is a one-line error.
"""
import json, math, os, shutil, signal, tempfile, threading, time
from pathlib import Path
import pytest

os.environ.setdefault('RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER', '0')   # before `import ray`: the node's address is 127.0.0.1
ray = pytest.importorskip('ray')

from pgkd_nb.config import GridConfig  # noqa: E402
from pgkd_nb.grid import LimitedTeacher, check_address, check_backend, provider_limit, run_missing  # noqa: E402
from pgkd_nb.repro import repro_settings, reproduce, table_plan  # noqa: E402
from pgkd_nb.costs import BudgetExceeded  # noqa: E402

TIME_FIELDS = ('hardware', 'finished', 'wall_seconds')


@pytest.fixture(scope='module')
def cluster():
    "One local Ray instance for every test here; its address."
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def comparable(summary, runs_dir) -> dict:
    "A summary without its time and machine fields, its run folder written <runs>."
    s = json.loads(json.dumps(summary).replace(str(runs_dir), '<runs>'))
    for k in TIME_FIELDS: s.pop(k)
    for step in s['steps']: step.pop('seconds')
    return s


def comparables(summaries: dict, runs_dir) -> dict:
    return {sp: comparable(r, runs_dir) for sp, r in summaries.items()}


def differences(a, b, at='') -> list[str]:
    """Where two summaries differ; floats within 1e-6 are equal (a text's cached encoding can differ in its last
    bits with the batch that made it, so a run that found another run's encodings may differ there)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str) for d in differences(a.get(k), b.get(k), f'{at}/{k}')]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f'{at}/{i}')]
    if isinstance(a, float) and isinstance(b, float) and math.isclose(a, b, rel_tol=1e-6): return []
    return [] if a == b else [f'{at}: {a!r} != {b!r}']


@pytest.fixture(scope='module')
def grid(tmp_path_factory):
    "The smoke grid of Table 2 on the local backend: (settings maker, {spec: comparable summary})."
    tmp = tmp_path_factory.mktemp('grid')
    def settings(name): return repro_settings('smoke', 'table2', GridConfig(runs_dir=tmp/name))
    s = settings('local')
    local = run_missing(table_plan('table2', s), s, log=lambda m: None)
    return tmp, settings, comparables(local, s['runs_dir'])


def test_smoke_grid_through_ray_equals_local(cluster, grid):
    tmp, settings, local = grid
    reproduce('smoke', only='table2', out=tmp/'reports', grid=GridConfig(runs_dir=tmp/'ray', backend='ray', address=cluster))
    s = settings('ray')
    for sp, want in local.items():
        run = sp.path(s['runs_dir'])
        got = comparable(json.loads((run/'summary.json').read_text()), s['runs_dir'])
        assert not differences(got, want), (sp, differences(got, want)[:5])
        assert (run/'run.log').exists() and (run/'step-001'/'accepted.json').exists()
        assert not (run/'best_model').exists()                           # weights stay on the worker unless asked
    executed = (tmp/'reports'/'smoke'/'table2.ipynb').read_text()
    assert 'running 2 on ray' in executed and '[2/2 done, 0 running, 0 failed, ETA 0 s]' in executed


def ray_task_pids(name='ray::run_record') -> list[int]:
    "Processes of this machine running the Ray task `name` (Ray names its worker processes after their task)."
    pids = []
    for p in Path('/proc').iterdir():
        try:
            if p.name.isdigit() and (p/'cmdline').read_bytes().startswith(name.encode()): pids.append(int(p.name))
        except OSError: pass
    return pids


def scratch_of(pid) -> Path|None:
    "The scratch folder of the run that worker `pid` is running (its run.log names the pid), if it has begun."
    for d in Path(tempfile.gettempdir()).glob('pgkd-run-*'):
        log = d/'run'/'run.log'
        if log.exists() and f'pid {pid}\n' in log.read_text(): return d
    return None


def kill_first_run(after_s=0.5, timeout_s=300) -> dict:
    """In a thread: SIGKILL the first worker seen running a run, `after_s` seconds after its run began (watching up to
    `timeout_s`: on a loaded machine Ray starts its workers slowly)."""
    killed = {}
    def watch():
        end = time.time() + timeout_s
        while time.time() < end and not killed:
            for pid in ray_task_pids():
                if scratch_of(pid):
                    time.sleep(after_s)
                    os.kill(pid, signal.SIGKILL)
                    killed.update(pid=pid, scratch=scratch_of(pid))
                    break
            time.sleep(0.05)
    threading.Thread(target=watch, daemon=True).start()
    return killed


def test_killed_worker_is_retried_and_a_restarted_driver_runs_only_what_is_missing(cluster, grid):
    tmp, settings, local = grid
    s = settings('killed')
    specs = table_plan('table2', s)
    killed = kill_first_run()
    got = run_missing(specs, s, GridConfig(backend='ray'), log=lambda m: None)
    assert killed.get('pid'), 'no worker was killed'
    assert killed['scratch'] and not (killed['scratch']/'run'/'summary.json').exists()   # killed mid-run
    shutil.rmtree(killed['scratch'])                                    # SIGKILL left its scratch folder behind
    got = comparables(got, s['runs_dir'])
    assert not differences(got, local), differences(got, local)[:5]    # the retried run gives the same summary
    # a driver killed before one record reached it: started again, it runs that run alone
    lost = specs[1].path(s['runs_dir'])
    for p in sorted(lost.rglob('*'), reverse=True): p.rmdir() if p.is_dir() else p.unlink()
    lines = []
    again = run_missing(specs, s, GridConfig(backend='ray'), log=lines.append)
    assert lines[0] == '1 of 2 runs already finished; running 1 on ray, 2 at a time', lines
    assert len(lines) == 2 and lines[1].startswith('[1/1 done'), lines
    again = comparables(again, s['runs_dir'])
    assert not differences(again, local), differences(again, local)[:5]


class Stop(Exception): pass


def stop_after_step_1(i, rec):
    if i == 1: raise Stop


def test_shared_out_writes_in_place_and_resumes_a_partial_run(cluster, grid):
    "--shared-out: the task writes the run where the driver would, and resumes a run a dead worker left."
    from pgkd_nb.grid import spec_config
    from pgkd_nb.loop import run_pgkd
    from pgkd_nb.repro import REPRO_PRESETS
    tmp, settings, local = grid
    s = {**settings('shared'), 'kd_steps': 2}
    specs = table_plan('table2', s)
    partial = specs[0].path(s['runs_dir'])
    with pytest.raises(Stop): run_pgkd(spec_config(specs[0], s), partial, progress=False, on_step=stop_after_step_1)
    step1 = (partial/'step-001'/'step.json').stat().st_mtime_ns
    got = run_missing(specs, s, GridConfig(backend='ray', shared_out=True), log=lambda m: None)
    assert (partial/'step-001'/'step.json').stat().st_mtime_ns == step1          # step 1 kept, not redone
    assert (partial/'step-002').exists() and (partial/'run.log').read_text().count('# ') == 1
    plain = {**settings('plain'), 'kd_steps': 2}
    want = run_missing(specs, plain, log=lambda m: None)                      # the same grid, uninterrupted, local
    for sp in specs:
        a, b = comparable(got[sp], s['runs_dir']), comparable(want[sp], plain['runs_dir'])
        assert not differences(a, b), (sp, differences(a, b)[:5])
    assert REPRO_PRESETS['smoke']['run']['kd_steps'] == 1                   # (the grid above asked for 2)


class Fake:
    "A teacher that costs $0.5 a call."
    calls = 0
    def generate(self, req, **kw):
        self.calls += 1
        return type('Reply', (), {'cached': False, 'cost_usd': 0.5})()


def test_one_provider_limit_actor(cluster):
    ray_grid = GridConfig(backend='ray', calls_per_minute=600, grid_budget_usd=1.0)
    assert provider_limit(ray_grid, llm=False) is None                       # no LLM: no limit
    assert provider_limit(GridConfig(backend='ray')) is None                 # no limit asked
    actor = provider_limit(ray_grid)
    a, b = Fake(), Fake()
    t = time.monotonic()
    LimitedTeacher(a, actor).generate('x')
    LimitedTeacher(b, actor).generate('y')                               # two workers' teachers, one limit
    assert time.monotonic() - t >= 0.1                                   # calls ≥ 60/600 s apart
    with pytest.raises(BudgetExceeded, match=r'grid budget \$1.00: \$1.0000 spent'): LimitedTeacher(a, actor).generate('z')
    assert (a.calls, b.calls) == (1, 1)


def test_bad_address_is_one_line():
    for address, err, msg in [('nowhere', ValueError, "--address 'nowhere': expected auto, HOST:PORT or ray://"),
                              ('127.0.0.1:1', RuntimeError, '--address 127.0.0.1:1: no Ray cluster answers there'),
                              ('ray://127.0.0.1:1', RuntimeError, '--address ray://127.0.0.1:1: no Ray cluster')]:
        t = time.time()
        with pytest.raises(err) as e: check_backend('ray', address)
        assert str(e.value).startswith(msg) and '\n' not in str(e.value) and time.time() - t < 6
    with pytest.raises(ValueError, match="unknown backend 'spark'"): reproduce(grid=GridConfig(backend='spark'))
    assert check_address('auto') is None
