"""Issue 27: choose the `top` preset's epochs / learning rates so that model_0 converges, on validation only.

For one dataset and seed, fit model_0 (the D0 training rows, n = 1,000) under each candidate setting and print
one JSON line per fit: what stopped it (early stopping or the epoch cap), its best epoch, the validation loss,
accuracy and macro F1 of the kept weights, the seconds. Test rows are not read.
Usage: python reports/retrain_study_finetune/tune_model0.py DATASET SEED THREADS"""
import json, sys, time
import torch
from pgkd_nb.data import load_task, sample_d0
from pgkd_nb.config import make_config
from pgkd_nb.student import Student

dataset, seed, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
CANDIDATES = [dict(lr=1e-4), dict(lr=1e-4, head_lr=3e-3), dict(lr=3e-4, head_lr=3e-3), dict(lr=1e-3, head_lr=3e-3)]
d0 = sample_d0(load_task(dataset), 1000, seed)
for c in CANDIDATES:
    cfg = make_config('top', epochs=40, patience=3, seed=seed, progress=False, **c)
    t = time.time()
    s = Student(d0.labels, cfg)
    fit = s.fit(d0.train, d0.val, restart=True, seed=seed*1000)
    v = s.evaluate(d0.val)
    print(json.dumps({'dataset': dataset, 'seed': seed, **c, 'epochs_cap': 40, 'patience': 3,
                      'stopped': fit['stopped'], 'fit_epochs': len(fit['epochs']), 'best_epoch': fit['best_epoch'],
                      'val_loss': v['loss'], 'val_accuracy': v['accuracy'], 'val_macro_f1': v['macro_f1'],
                      'val_losses': [round(h['val_loss'], 4) for h in fit['epochs']],
                      'seconds': round(time.time() - t, 1), 'threads': threads}), flush=True)
