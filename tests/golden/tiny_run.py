"""The small fixed run behind tests/golden/summary-small.json (run with an older checkout on PYTHONPATH to make it).

`python tests/golden/tiny_run.py OUT_DIR` runs PGKD on the embedded HuffPost subset with the `cpu` preset
(all-MiniLM-L6-v2, frozen, softmax head), 200 annotated rows, 3 KD steps of 16 rows, the simulated teacher on a
400-row pool, 200 test rows, seed 0; it prints the summary's path.
"""
import sys
from pathlib import Path

SETTINGS = dict(preset='cpu', retrain='continue', n_samples=200, kd_steps=3, gen_batch=16, n_mined=4, n_few_shot=4, test_max=200,
                pool_max=400, seed=0)


def run(out: Path) -> dict:
    try: from pgkd_nb.config import RunConfig
    except ImportError: from pgkd_nb.loop import RunConfig       # checkouts before the config module
    from pgkd_nb.loop import run_pgkd
    cfg = RunConfig(student={'cache_dir': str(out/'cache')}, **SETTINGS)
    return run_pgkd(cfg, out/'run', progress=False)


if __name__ == '__main__':
    run(Path(sys.argv[1]))
    print(Path(sys.argv[1])/'run'/'summary.json')
