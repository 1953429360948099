"""Same-run speed of torch fp32, ONNX fp32, ONNX int8 (shipped: quantize_onnx) and two int8 prototypes that keep
feed-forward output projections fp32; accuracy of the prototypes on ag_news and banking77 (cpu preset, kd_steps 0)."""
import json, sys, tempfile, time, shutil
from pathlib import Path
import numpy as np, onnx, onnxruntime as ort, torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.shape_inference import quant_pre_process
from pgkd_nb.config import RunConfig, make_config
from pgkd_nb.data import load_task
from pgkd_nb.encoder import OnnxEncoder, build_encoder
from pgkd_nb.loop import run_pgkd
from pgkd_nb.records import hardware
from pgkd_nb.student import Student
cache = Path(tempfile.mkdtemp(prefix='pgkd-enc5-'))
s = Student(['a'], make_config('cpu', cache_dir=str(cache), progress=False))
d = build_encoder(s.path, 128, cache)
prep = cache/'prep.onnx'
quant_pre_process(str(d/'encoder.onnx'), str(prep), skip_symbolic_shape=True)
ffn = lambda layers: [f'/encoder/encoder/layer.{i}/output/dense/MatMul' for i in layers]
graphs = {'onnx': d/'encoder.onnx', 'onnx-int8': d/'encoder_int8.onnx'}
for name, layers in (('int8-keep-ffn-all', range(6)), ('int8-keep-ffn-0', [0])):
    graphs[name] = cache/f'{name}.onnx'
    quantize_dynamic(str(prep), str(graphs[name]), weight_type=QuantType.QInt8, nodes_to_exclude=ffn(layers))
enc = OnnxEncoder(s.path, 128, 'onnx', cache)
sessions = {k: ort.InferenceSession(str(f), enc.session.get_session_options(), providers=['CPUExecutionProvider'])
            for k, f in graphs.items()}
texts = [r['text'] for r in load_task('ag_news').test[:1020]]
warm, texts = texts[:20], texts[20:]
res = {'hardware_start': hardware(), 'ort_threads': enc.session.get_session_options().intra_op_num_threads,
       'speed': {k: [] for k in ['torch', *graphs]}, 'cosine': {}, 'accuracy': {}}
emb = {}
for i in range(3):
    st = Student(['a'], make_config('cpu', cache_dir=str(cache/f'torch-{i}'), progress=False))
    st.embed(warm)
    t0 = time.perf_counter()
    emb['torch'] = st.embed(texts)
    res['speed']['torch'].append(len(texts)/(time.perf_counter() - t0))
    for k, sess in sessions.items():
        enc.session = sess
        enc.embed(warm)
        t0 = time.perf_counter()
        emb[k] = enc.embed(texts, batch_size=128)
        res['speed'][k].append(len(texts)/(time.perf_counter() - t0))
    print(i, {k: round(v[-1], 1) for k, v in res['speed'].items()}, flush=True)
for k in graphs:
    c = (emb[k]*emb['torch']).sum(1)/np.linalg.norm(emb[k], axis=1)/np.linalg.norm(emb['torch'], axis=1)
    res['cosine'][k] = {'min': float(c.min()), 'mean': float(c.mean())}
print(res['cosine'], flush=True)
for k in ('int8-keep-ffn-0',):
    for ds in ('banking77', 'ag_news'):
        c2 = cache/f'acc-{k}'
        shutil.copy(graphs[k], build_encoder(s.path, 128, c2)/'encoder_int8.onnx')
        cfg = RunConfig(dataset=ds, n_samples=1000, seed=0, kd_steps=0, test_max=2000,
                        student={'encoder': 'onnx-int8', 'cache_dir': str(c2)})
        res['accuracy'][f'{ds}/{k}'] = run_pgkd(cfg, cache/f'run-{ds}-{k}', progress=False)['baseline']
        print(ds, k, res['accuracy'][f'{ds}/{k}'], flush=True)
res['hardware_end'] = hardware()
Path(sys.argv[1]).write_text(json.dumps(res, indent=1))
