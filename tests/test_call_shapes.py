"""Issue 23: the wide functions take their settings as one object (`CallShape`, `ZeroShotConfig`, `GridConfig`),
with the same numbers and records as before."""
import inspect, json

import pytest

from pgkd_nb.config import GridConfig
from pgkd_nb.data import DEMO_TASK, load_task
from pgkd_nb.grid import ray_ends
from pgkd_nb.plan import CallShape, price_calls
from pgkd_nb.spend import grid_costs
from pgkd_nb.teacher import Teacher
from pgkd_nb.zeroshot import ZeroShotConfig, run_zero_shot

TASK = load_task(DEMO_TASK)
SMALL = type(TASK)(TASK.name, TASK.labels, TASK.train, TASK.test[:4])


@pytest.mark.parametrize('fn', [run_zero_shot, grid_costs, ray_ends, price_calls])
def test_fewer_than_eight_parameters(fn):
    assert len(inspect.signature(fn).parameters) < 8, fn.__name__


def test_price_calls_of_a_call_shape():
    d = price_calls('claude-sonnet-5-5', runs=2, calls=10, shape=CallShape(prompt=5000, prefix=3000, reply=1000))
    assert d['usd_list'] == pytest.approx(20*(5000*2.0 + 1000*10.0)/1e6)
    assert d['usd_cache'] == pytest.approx(2*(10*(2000*2.0 + 1000*10.0) + 3000*2.5 + 9*3000*0.2)/1e6)
    assert (d['usd_batch'], d['usd_both']) == pytest.approx((d['usd_list']/2, d['usd_cache']/2))


class FirstLabel(Teacher):
    "Answers every zero-shot prompt with the task's first class."
    name, default_model = 'first', 'first-1'
    def complete(self, prompt, req):
        return json.dumps({'class_label': 0, 'class_names': TASK.labels[0]}), {'input_tokens': 10, 'output_tokens': 5}


def test_run_zero_shot_records_the_run_not_how_its_calls_go(tmp_path):
    s = run_zero_shot(FirstLabel(), ZeroShotConfig(DEMO_TASK, seed=3), tmp_path/'run', task=SMALL, progress=False)
    assert s['n_test'] == 4
    assert json.loads((tmp_path/'run'/'config.json').read_text()) == {
        'dataset': DEMO_TASK, 'teacher': 'first', 'model': 'first-1', 'endpoint': None, 'test_max': None, 'seed': 3,
        'template': 'kit'}
    again = ZeroShotConfig(DEMO_TASK, seed=3, concurrency=2)            # another way of sending: the same run
    assert run_zero_shot(FirstLabel(), again, tmp_path/'run', task=SMALL, progress=False)['n_test'] == 4
    with pytest.raises(ValueError, match=r'other settings \(seed\)'):
        run_zero_shot(FirstLabel(), ZeroShotConfig(DEMO_TASK, seed=4), tmp_path/'run', task=SMALL, progress=False)


def test_grid_costs_reads_the_grid_config(tmp_path):
    (tmp_path/'wide'/'n1000'/'pgkd').mkdir(parents=True)
    g = grid_costs(GridConfig(runs_dir=tmp_path, seeds=[0]), zero_shot=False)        # n_samples None: 1,000
    assert (g['missing'], g['runs_dir']) == (['wide seed 0'], str(tmp_path))
    assert grid_costs(GridConfig(runs_dir=tmp_path, seeds=[0], n_samples=500))['missing'] == []
    with pytest.raises(ValueError, match=r"^grid_costs: GridConfig.runs_dir is None; set it to the reproduction's"):
        grid_costs(GridConfig())
