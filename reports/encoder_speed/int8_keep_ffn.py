"Prototype (not the shipped path): int8 with the feed-forward output projections kept fp32, as fast.quantize_int8 does."
import json, sys, tempfile, time, shutil
from pathlib import Path
import numpy as np, onnx
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.shape_inference import quant_pre_process
from pgkd_nb.config import RunConfig, make_config
from pgkd_nb.data import load_task
from pgkd_nb.loop import run_pgkd
from pgkd_nb.records import hardware
from pgkd_nb.student import Student
from pgkd_nb.encoder import build_encoder
cache = Path(tempfile.mkdtemp(prefix='pgkd-enc3-'))
s = Student(['a'], make_config('cpu', cache_dir=str(cache), progress=False))
d = build_encoder(s.path, 128, cache)
src = d/'encoder.onnx'
ffn_out = [n.name for n in onnx.load(str(src)).graph.node
           if n.op_type == 'MatMul' and 'output/dense' in n.name and 'attention' not in n.name]
prep = cache/'prep.onnx'
quant_pre_process(str(src), str(prep), skip_symbolic_shape=True)
quantize_dynamic(str(prep), str(d/'encoder_int8.onnx'), weight_type=QuantType.QInt8, nodes_to_exclude=ffn_out)
res = {'hardware_start': hardware(), 'excluded': len(ffn_out), 'speed': {'torch': [], 'onnx-int8-keepffn': []}}
texts = [r['text'] for r in load_task('ag_news').test[:1020]]
warm, texts = texts[:20], texts[20:]
emb = {}
for i in range(2):
    for rt, key in (('torch', 'torch'), ('onnx-int8', 'onnx-int8-keepffn')):
        st = Student(['a'], make_config('cpu', encoder=rt, cache_dir=str(cache/f'sp-{rt}-{i}'), progress=False))
        st.embed(warm)
        t0 = time.perf_counter()
        emb[key] = st.embed(texts)
        res['speed'][key].append(len(texts)/(time.perf_counter() - t0))
        print(key, i, round(res['speed'][key][-1], 1), flush=True)
a, b = emb['onnx-int8-keepffn'], emb['torch']
cos = (a*b).sum(1)/np.linalg.norm(a, axis=1)/np.linalg.norm(b, axis=1)
res['cosine'] = {'min': float(cos.min()), 'mean': float(cos.mean())}
print(res['cosine'], flush=True)
res['accuracy'] = {}
for ds in ('banking77', 'ag_news'):
    cfg = RunConfig(dataset=ds, n_samples=1000, seed=0, kd_steps=0, test_max=2000,
                    student={'encoder': 'onnx-int8', 'cache_dir': str(cache)})
    summ = run_pgkd(cfg, cache/f'run-{ds}', progress=False)
    res['accuracy'][ds] = summ['baseline']
    print(ds, summ['baseline'], flush=True)
res['hardware_end'] = hardware()
Path(sys.argv[1]).write_text(json.dumps(res, indent=1))
