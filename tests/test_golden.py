"""Behaviour unchanged: a small fixed run gives the summary recorded by the code before the "one house" refactor
(commit cc5ca21, made with tests/golden/tiny_run.py), except for fields that name time or machine; `baseline_fit`
and `warnings` (what stopped model_0's fit, issue 27) were added to it later from the same run."""
import json
from pathlib import Path

import pytest

from pgkd_nb.config import RunConfig, config_from_dict

GOLDEN = Path(__file__).parent/'golden'
MACHINE = ('finished', 'wall_seconds', 'hardware', 'source', 'labels')   # source: a path here; labels: added later


def comparable(s: dict, out: Path) -> dict:
    "The summary without time and machine fields, paths made relative to the run's folder."
    s = json.loads(json.dumps(s).replace(str(out), '<out>'))
    s = {k: v for k, v in s.items() if k not in MACHINE}
    s['steps'] = [{k: v for k, v in r.items() if k != 'seconds'} for r in s['steps']]
    s['config'] = config_from_dict(s['config'])          # older names and fields added since, as the loader reads them
    return s


def approx_equal(a, b, path='summary'):
    "Equal, with floats compared to 1e-6 relative (thread counts may change the last digits)."
    if isinstance(a, dict) and isinstance(b, dict):
        assert sorted(a) == sorted(b), (path, sorted(set(a) ^ set(b)))
        for k in a: approx_equal(a[k], b[k], f'{path}.{k}')
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)): approx_equal(x, y, f'{path}[{i}]')
    elif isinstance(a, float) or isinstance(b, float):
        tol = 1e-5 if path.endswith('val_loss_slope') else 1e-9   # a slope: a difference of near-equal losses
        assert a == pytest.approx(b, rel=1e-6, abs=tol), path
    else: assert a == b, path


def test_small_run_matches_the_golden_summary(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location('tiny_run', GOLDEN/'tiny_run.py')
    tiny_run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny_run)
    new = comparable(tiny_run.run(tmp_path), tmp_path)
    old = comparable(json.loads((GOLDEN/'summary-small.json').read_text()), Path('<out>'))
    assert isinstance(new['config'], RunConfig)
    approx_equal({**old, 'config': vars(old['config'])}, {**new, 'config': vars(new['config'])})
