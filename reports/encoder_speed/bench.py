"Frozen-encoder runtimes on this CPU: texts/s (torch fp32 vs ONNX fp32 vs ONNX int8) and the cpu preset's test accuracy."
import json, sys, tempfile, time
from pathlib import Path
import numpy as np
from pgkd_nb.config import RunConfig, make_config
from pgkd_nb.data import load_task
from pgkd_nb.loop import run_pgkd
from pgkd_nb.records import hardware
from pgkd_nb.student import Student

RUNTIMES, ROUNDS, N = ('torch', 'onnx', 'onnx-int8'), 3, 1000
out = Path(sys.argv[1])
cache = Path(tempfile.mkdtemp(prefix='pgkd-enc-'))
texts = [r['text'] for r in load_task('ag_news').test[:N + 20]]
warm, texts = texts[:20], texts[20:]
res = {'hardware_start': hardware(), 'n_texts': len(texts), 'rounds': ROUNDS, 'speed': {r: [] for r in RUNTIMES}}
emb = {}
for i in range(ROUNDS):                      # interleaved rounds: a busy machine slows every runtime alike
    for rt in RUNTIMES:
        s = Student(['a', 'b'], make_config('cpu', encoder=rt, cache_dir=str(cache/f'speed-{rt}-{i}'), progress=False))
        s.embed(warm)                        # loads the model (and builds the ONNX graphs once) outside the timing
        t0 = time.perf_counter()
        emb[rt] = s.embed(texts)
        res['speed'][rt].append(len(texts)/(time.perf_counter() - t0))
        print(rt, i, round(res['speed'][rt][-1], 1), flush=True)
for rt in RUNTIMES[1:]:
    cos = (emb[rt]*emb['torch']).sum(1)/np.linalg.norm(emb[rt], axis=1)/np.linalg.norm(emb['torch'], axis=1)
    res[f'cosine_{rt}'] = {'min': float(cos.min()), 'mean': float(cos.mean()), 'max_abs_diff': float(abs(emb[rt] - emb['torch']).max())}
res['accuracy'] = {}
for ds in ('ag_news', 'banking77'):
    for rt in RUNTIMES:
        cfg = RunConfig(dataset=ds, n_samples=1000, seed=0, kd_steps=0, test_max=2000,
                        student={'encoder': rt, 'cache_dir': str(cache/'acc')})   # one cold cache, a namespace each
        t0 = time.perf_counter()
        summ = run_pgkd(cfg, cache/f'run-{ds}-{rt}', progress=False)
        res['accuracy'][f'{ds}/{rt}'] = {**summ['baseline'], 'n_test': summ['n_test'], 'seconds': time.perf_counter() - t0}
        print(ds, rt, res['accuracy'][f'{ds}/{rt}'], flush=True)
res['hardware_end'] = hardware()
out.write_text(json.dumps(res, indent=1))
