"""Issue 18, route 1: per-channel weight scales (± reduce_range, ± layer 0's FFN output kept fp32) against the
shipped per-tensor int8. Cosine to fp32 on 300 banking77 texts, speed (3 interleaved rounds with torch fp32,
1,000 ag_news texts) and the cpu preset's baseline test accuracy on ag_news and banking77.
Usage: python3 per_channel.py OUT.json SCRATCH_DIR [--cosine-only | --speed-only] [variant ...]"""
import json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from common import FFN_OUT, accuracy, cosine, embed_with, quantize, setup, speed_rounds  # noqa: E402
from pgkd_nb.data import load_task  # noqa: E402
from pgkd_nb.records import hardware  # noqa: E402

VARIANTS = {'int8-shipped': {}, 'pc': {'per_channel': True}, 'pc-rr': {'per_channel': True, 'reduce_range': True},
            'pc-keep0': {'per_channel': True, 'nodes_to_exclude': [FFN_OUT.format(0)]},
            'pc-rr-keep0': {'per_channel': True, 'reduce_range': True, 'nodes_to_exclude': [FFN_OUT.format(0)]}}
out, root = Path(sys.argv[1]), Path(sys.argv[2])
flags = {a for a in sys.argv[3:] if a.startswith('--')}
names = [a for a in sys.argv[3:] if a not in flags] or list(VARIANTS)
root.mkdir(parents=True, exist_ok=True)
res = {'hardware_start': hardware(), 'variants': {k: VARIANTS[k] for k in names}, 'cosine': {}, 'accuracy': {}}
path, d, prep = setup(root/'base')
graphs = {k: quantize(prep, root/f'{k}.onnx', **VARIANTS[k]) for k in names}
texts = [r['text'] for r in load_task('banking77').train[:300]]
ref = embed_with(path, root/'base', d/'encoder.onnx', texts)
for k, g in graphs.items():
    res['cosine'][k] = cosine(embed_with(path, root/'base', g, texts), ref)
    print('cosine', k, res['cosine'][k], flush=True)
if '--cosine-only' in flags:
    out.write_text(json.dumps(res, indent=1))
    sys.exit()
res['speed'], emb = speed_rounds(path, graphs, root, log=lambda *a: print(*a, flush=True))
res['speed_median'] = {k: sorted(v)[1] for k, v in res['speed'].items()}
res['ratio_median'] = {k: sorted(a/t for a, t in zip(res['speed'][k], res['speed']['torch']))[1] for k in graphs}
res['cosine_ag_news_vs_torch'] = {k: cosine(emb[k], emb['torch']) for k in graphs}
print(res['speed_median'], flush=True)
for ds in () if '--speed-only' in flags else ('banking77', 'ag_news'):
    for k in ['torch', *graphs]:
        enc = 'torch' if k == 'torch' else 'onnx-int8'
        res['accuracy'][f'{ds}/{k}'] = accuracy(path, enc, graphs.get(k), root, ds)
        print(ds, k, res['accuracy'][f'{ds}/{k}'], flush=True)
        out.write_text(json.dumps(res, indent=1))
res['hardware_end'] = hardware()
out.write_text(json.dumps(res, indent=1))
