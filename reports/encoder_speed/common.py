"""Shared pieces of the per-channel / sensitivity measurements (issue 18): int8 variants of the pooled encoder
built with `quantize_dynamic`, their embedding cosine to the fp32 graph (which equals torch's), interleaved speed
through `Student.embed`, and the cpu preset's baseline test accuracy with a variant in place of `encoder_int8.onnx`."""
import shutil, tempfile, time
from pathlib import Path
import numpy as np
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.shape_inference import quant_pre_process
from pgkd_nb.config import RunConfig, make_config
from pgkd_nb.data import load_task
from pgkd_nb.encoder import OnnxEncoder, build_encoder, encoder_dir
from pgkd_nb.onnx_io import onnx_session
from pgkd_nb.loop import run_pgkd
from pgkd_nb.student import Student

FFN_OUT = '/encoder/encoder/layer.{}/output/dense/MatMul'     # the ONNX twin of fast.ffn_output


def setup(cache):
    "The checkpoint path, its ONNX fp32 folder and the quant_pre_process'd graph (as export.quantize_onnx makes)."
    cache = Path(cache)
    s = Student(['a'], make_config('cpu', cache_dir=str(cache), progress=False))
    d = build_encoder(s.path, 128, cache)
    prep = cache/'prep.onnx'
    if not prep.exists(): quant_pre_process(str(d/'encoder.onnx'), str(prep), skip_symbolic_shape=True)
    return s.path, d, prep


def quantize(prep, dst, **kw):
    "`quantize_dynamic` of the prepared graph to `dst` (QInt8 weights), built once."
    if not Path(dst).exists(): quantize_dynamic(str(prep), str(dst), weight_type=QuantType.QInt8, **kw)
    return Path(dst)


def embed_with(path, cache, graph, texts):
    "Embeddings of `texts` through the ONNX graph file `graph` (OnnxEncoder's tokenizer and batching)."
    enc = OnnxEncoder(path, 128, 'onnx', cache)
    enc.session = onnx_session(graph, enc.session.get_session_options().intra_op_num_threads)
    return enc.embed(texts, batch_size=128)


def cosine(a, b):
    c = (a*b).sum(1)/np.linalg.norm(a, axis=1)/np.linalg.norm(b, axis=1)
    return {'min': float(c.min()), 'mean': float(c.mean())}


def cache_with(path, graph, root):
    "A fresh cache folder whose ONNX encoder folder holds `graph` as encoder_int8.onnx (so encoder='onnx-int8' runs it)."
    c = Path(tempfile.mkdtemp(dir=root, prefix='c-'))
    d = encoder_dir(path, 128, c)
    d.mkdir(parents=True)
    shutil.copy(graph, d/'encoder_int8.onnx')
    return c


def timed_embed(path, encoder, graph, root, warm, texts):
    "Texts/s of `Student.embed` (cpu preset) on `texts`, a fresh embedding cache, model loaded outside the timing."
    c = cache_with(path, graph, root) if graph else Path(tempfile.mkdtemp(dir=root, prefix='t-'))
    s = Student(['a'], make_config('cpu', encoder=encoder, cache_dir=str(c), progress=False))
    s.embed(warm)
    t0 = time.perf_counter()
    emb = s.embed(texts)
    return len(texts)/(time.perf_counter() - t0), emb


def speed_rounds(path, graphs, root, rounds=3, n=1000, log=print):
    "Interleaved rounds: torch, then each graph (name → file), per round; texts/s lists and the last embeddings."
    texts = [r['text'] for r in load_task('ag_news').test[:n + 20]]
    warm, texts = texts[:20], texts[20:]
    speed, emb = {k: [] for k in ['torch', *graphs]}, {}
    for i in range(rounds):
        for k in speed:
            v, emb[k] = timed_embed(path, 'torch' if k == 'torch' else 'onnx-int8', graphs.get(k), root, warm, texts)
            speed[k].append(v)
        log(i, {k: round(v[-1], 1) for k, v in speed.items()})
    return speed, emb


def accuracy(path, encoder, graph, root, ds):
    "The cpu preset's baseline (model 0) test metrics on `ds` (1,000 rows, seed 0, 2,000 test rows)."
    c = cache_with(path, graph, root) if graph else Path(tempfile.mkdtemp(dir=root, prefix='a-'))
    cfg = RunConfig(dataset=ds, n_samples=1000, seed=0, kd_steps=0, test_max=2000,
                    student={'encoder': encoder, 'cache_dir': str(c)})
    return run_pgkd(cfg, Path(tempfile.mkdtemp(dir=root, prefix='run-'))/ds, progress=False)['baseline']
