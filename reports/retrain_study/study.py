"""Retrain study (issue 18): `continue` vs `scratch` with the `cpu` preset, judged on validation only.

For each dataset and seed, two PGKD runs that differ only in `retrain`; we record the validation loss and
accuracy of the model each run selects (the best step by validation loss), plus test numbers for the record
(test is NOT used to choose). Usage: python reports/retrain_study/study.py DATASETS SEEDS [RUNS_DIR], e.g. ag_news,imdb 0,1,2; prints one JSON line per run."""
import json, sys, time
from pathlib import Path
from pgkd_nb.config import RunConfig
from pgkd_nb.loop import run_pgkd
from pgkd_nb.records import completed_steps

OUT = Path(sys.argv[3] if len(sys.argv) > 3 else 'runs/retrain_study')
datasets = sys.argv[1].split(',')
seeds = [int(s) for s in sys.argv[2].split(',')]
rows = []
for ds in datasets:
    for seed in seeds:
        for retrain in ('continue', 'scratch'):
            t = time.time()
            cfg = RunConfig(dataset=ds, seed=seed, preset='cpu', kd_steps=10, test_max=2000, pool_max=5000,
                            retrain=retrain, student={'progress': False})
            s = run_pgkd(cfg, OUT/f'{ds}-{retrain}-s{seed}', progress=False)
            recs = completed_steps(OUT/f'{ds}-{retrain}-s{seed}')
            best = recs[s['best_step']]
            rows.append({'dataset': ds, 'seed': seed, 'retrain': retrain, 'best_step': s['best_step'],
                         'steps': len(recs) - 1, 'val_loss': best['val_loss'], 'val_accuracy': best['val_accuracy'],
                         'val_macro_f1': best['val_macro_f1'], 'val_loss_0': recs[0]['val_loss'],
                         'test_accuracy': s['pgkd']['accuracy'], 'test_macro_f1': s['pgkd']['macro_f1'],
                         'baseline_accuracy': s['baseline']['accuracy'], 'seconds': round(time.time() - t, 1)})
            print(json.dumps(rows[-1]), flush=True)

