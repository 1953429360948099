"""Issue 26: `pgkd compare --tracking`: the comparison logged to a real MLflow SQLite store in a temporary folder (no
mocks) as one parent run with every arm's run nested, the pages as its artifacts, also when an arm fails; the default
arms are `compare.ARMS`, not every strategy there is."""
import os, sys

import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')
mlflow = pytest.importorskip('mlflow', reason="MLflow is not installed: pip install 'pgkd_nb[track]' (the full "
                             "mlflow package) to run the tracking tests")

from mlflow import MlflowClient  # noqa: E402
from pgkd_nb.cli import COMPARE_ARMS, main, parser  # noqa: E402
from pgkd_nb.compare import ARMS, compare, parse_arms  # noqa: E402
from pgkd_nb.config import RunConfig  # noqa: E402
from pgkd_nb.records import read_json  # noqa: E402
from pgkd_nb.student import tiny_checkpoint  # noqa: E402
from conftest import one_line_error  # noqa: E402


def tiny_flags(tmp) -> list[str]:
    "`pgkd compare` flags of a tiny comparison: tiny BERT in head mode, huffpost_mini, 1 KD step of 16 rows."
    return ['--preset', 'tiny', '--checkpoint', tiny_checkpoint(tmp/'tiny'), '--n-samples', '120', '--gen-batch', '16',
            '--kd-steps', '1', '--n-mined', '4', '--n-few-shot', '4', '--test-max', '40',
            '--student', 'mode=head', 'epochs=3', f"cache_dir={tmp/'enc'}", '--quiet']


def sqlite(tmp) -> str: return f"sqlite:///{tmp/'store'/'mlflow.db'}"


def children(c, parent) -> list:
    exp = c.get_run(parent).info.experiment_id
    return c.search_runs([exp], filter_string=f"tags.mlflow.parentRunId = '{parent}'")


def test_default_arms_are_compare_arms():
    assert COMPARE_ARMS == ','.join(ARMS) and parse_arms(None) == list(ARMS)
    sub = parser()._subparsers._group_actions[0].choices['compare']
    arms = next(a for a in sub._actions if a.dest == 'arms')
    assert arms.default is None and f'(default: {COMPARE_ARMS})' in arms.help
    assert 'more' not in ARMS                     # a strategy added later is not run unless asked for


def test_compare_tracking_one_parent_n_children(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)                   # nothing may land in the working folder (./mlruns)
    out, uri = tmp_path/'cmp', sqlite(tmp_path)
    argv = ['compare', *tiny_flags(tmp_path), '--arms', 'pgkd,random', '--seeds', '2', '--out', str(out),
            '--tracking', uri]
    assert main(argv) == 0
    assert f'MLflow: one parent run, the arms\' runs nested, in {uri}' in capsys.readouterr().out
    c, parent = MlflowClient(uri), read_json(out/'tracking.json')['runs'][uri]
    kids = children(c, parent)
    assert sorted((k.data.params['strategy'], k.data.params['seed'], k.info.status) for k in kids) == [
        ('pgkd', '0', 'FINISHED'), ('pgkd', '1', 'FINISHED'), ('random', '0', 'FINISHED'), ('random', '1', 'FINISHED')]
    for k in kids:                                # each child is its arm's folder, its own steps and test metrics
        run_dir = out/f"{k.data.params['strategy']}-seed{k.data.params['seed']}"
        assert read_json(run_dir/'tracking.json')['runs'][uri] == k.info.run_id
        assert k.data.metrics['test_pgkd_accuracy'] == read_json(run_dir/'summary.json')['pgkd']['accuracy']
    assert c.get_run(parent).info.status == 'FINISHED'
    assert {a.path for a in c.list_artifacts(parent)} == {'compare.md', 'compare.html', 'compare.json'}
    assert len(c.search_runs([c.get_run(parent).info.experiment_id])) == 5      # one parent + 4 runs, nothing else
    assert not (tmp_path/'mlruns').exists()
    assert main(argv) == 0                            # again: resumed, the same runs, nothing logged twice
    assert len(c.search_runs([c.get_run(parent).info.experiment_id])) == 5
    assert len(c.get_metric_history(kids[0].info.run_id, 'val_loss')) == 2     # step 0 and the KD step, once each


def test_tracked_when_an_arm_fails(tmp_path):
    (tmp_path/'u.csv').write_text('text\nsome text without a label\n')   # the label arm cannot run on it offline
    cfg = RunConfig(preset='tiny', checkpoint=tiny_checkpoint(tmp_path/'tiny'), n_samples=120, gen_batch=16,
                    kd_steps=1, n_mined=4, n_few_shot=4, test_max=40, unlabelled=str(tmp_path/'u.csv'),
                    student={'mode': 'head', 'epochs': 3, 'cache_dir': str(tmp_path/'enc')})
    out, uri = tmp_path/'cmp', sqlite(tmp_path)
    with pytest.raises(ValueError, match='--label-col'):
        compare(cfg, out, 'pgkd,label', seeds=1, progress=False, tracking=uri)
    c, parent = MlflowClient(uri), read_json(out/'tracking.json')['runs'][uri]
    got = {k.data.params['strategy']: k.info.status for k in children(c, parent)}
    assert got['pgkd'] == 'FINISHED' and set(got) <= {'pgkd', 'label'}        # what did run is logged
    assert c.get_run(parent).info.status == 'KILLED'                          # not all finished: it can resume
    assert not (out/'compare.md').exists()


def test_missing_mlflow_refused_before_any_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, 'mlflow', None)            # as if it were not installed
    one_line_error(capsys, ['compare', *tiny_flags(tmp_path), '--arms', 'pgkd', '--seeds', '1',
                            '--out', tmp_path/'cmp', '--tracking', sqlite(tmp_path)], "pip install 'pgkd_nb[track]'")
    assert not list(tmp_path.glob('cmp/*-seed*'))
