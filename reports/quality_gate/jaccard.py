"""How many real, human-written rows does the MinHash near-copy check reject, at which Jaccard, against how many
light edits (`noise.near_copy`) of training rows it catches? For each set: D0 (n=1000, seed 0) train + validation +
test as references; 300 pool rows (real rows, not copies) and 300 near-copies of train rows. Writes jaccard.json."""
import json, os, sys
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import numpy as np
from pgkd_nb.data import load_task, sample_d0
from pgkd_nb.gate import MinHashIndex, minhashes
from pgkd_nb.noise import near_copy
from pgkd_nb.repro import git_commit
from pgkd_nb.records import hardware_line

CUTS = (0.5, 0.6, 0.7, 0.8)
out = {'commit': git_commit(), 'hardware': hardware_line(), 'cuts': CUTS, 'sets': {}}
for ds in ('banking77', 'huffpost', 'amazon_hierarchical'):
    d0 = sample_d0(load_task(ds), 1000, 0)
    idx = MinHashIndex([r['text'] for r in d0.train + d0.val + d0.test])
    real = np.array([idx.best(m)[0] for m in minhashes([r['text'] for r in d0.pool[:300]])])
    copies = np.array([idx.best(m)[0] for m in minhashes([near_copy(r['text'], rng=i) for i, r in enumerate(d0.train[:300])])])
    out['sets'][ds] = {'real_rows_rejected': [round(float((real >= c).mean()), 3) for c in CUTS],
                       'near_copies_caught': [round(float((copies >= c).mean()), 3) for c in CUTS]}
    print(ds, out['sets'][ds], file=sys.stderr)
Path(__file__).with_suffix('.json').write_text(json.dumps(out, indent=1) + '\n')
