"""The ONNX frozen encoder: the same embeddings as torch (fp32), close ones (int8), its own cache, a working student;
its output named for what it is; the ONNX writer below the student (no import circle, no lazy upward import)."""
import ast, graphlib, hashlib, json
from pathlib import Path
import numpy as np
import onnx
import pytest
from pgkd_nb.config import make_config
from pgkd_nb.data import DEMO_TASK, load_task
from pgkd_nb import encoder
from pgkd_nb.encoder import OnnxEncoder, build_encoder, encoder_dir
from pgkd_nb.onnx_io import quantize_onnx
from pgkd_nb.student import Student, tiny_checkpoint


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp('ck')/'tiny')


@pytest.fixture(scope='module')
def rows():
    return load_task(DEMO_TASK).train[:240]          # real headlines, 41 classes


def student(tiny, cache, encoder='torch', **kw):
    cfg = make_config('cpu', checkpoint=tiny, encoder=encoder, cache_dir=str(cache), progress=False, **kw)
    return Student(sorted({r['label'] for r in load_task(DEMO_TASK).train}), cfg)


def cosine(a, b): return (a*b).sum(1)/np.linalg.norm(a, axis=1)/np.linalg.norm(b, axis=1)


def test_onnx_matches_torch(tiny, rows, tmp_path):
    texts = [r['text'] for r in rows[:64]]
    ref = student(tiny, tmp_path).embed(texts)
    fp32 = OnnxEncoder(tiny, 128, 'onnx', tmp_path).embed(texts, batch_size=16)
    int8 = OnnxEncoder(tiny, 128, 'onnx-int8', tmp_path).embed(texts, batch_size=16)
    assert fp32.dtype == np.float32 and fp32.shape == ref.shape
    np.testing.assert_allclose(fp32, ref, atol=1e-4)
    assert cosine(int8, ref).min() > 0.99
    np.testing.assert_allclose(student(tiny, tmp_path, 'onnx').embed(texts[:5]), fp32[:5], atol=1e-6)


def test_graphs_built_once(tiny, tmp_path):
    d = build_encoder(tiny, 128, tmp_path)
    stamp = (d/'encoder.onnx').stat().st_mtime_ns
    assert build_encoder(tiny, 128, tmp_path) == d and (d/'encoder.onnx').stat().st_mtime_ns == stamp
    assert sorted(p.name for p in d.iterdir()) == ['encoder.onnx', 'encoder_int8.onnx']
    assert encoder_dir(tiny, 64, tmp_path) != d


def int8_zero_points(path):
    "Each MatMulInteger's weight zero-point shape: (n_columns,) per channel, () or (1,) per tensor."
    g = onnx.load(str(path)).graph
    dims = {i.name: tuple(i.dims) for i in g.initializer}
    return {n.name: dims[n.input[3]] for n in g.node if n.op_type == 'MatMulInteger'}


def test_int8_graph_is_per_channel(tiny, tmp_path, monkeypatch):
    d = build_encoder(tiny, 128, tmp_path)
    zp = int8_zero_points(d/'encoder_int8.onnx')
    assert '/encoder/encoder/layer.0/output/dense/MatMul_quant' in zp                  # FFN output quantized too
    assert all(len(s) == 1 and s[0] > 1 for s in zp.values()), zp                       # one scale per column
    per_tensor = int8_zero_points(quantize_onnx(d/'encoder.onnx', tmp_path/'pt.onnx'))  # export's default
    assert per_tensor.keys() == zp.keys() and all(int(np.prod(s)) == 1 for s in per_tensor.values())
    monkeypatch.setattr(encoder, 'INT8_RECIPE', {})
    assert encoder_dir(tiny, 128, tmp_path) != d                   # graphs of another recipe are never reused


def test_cache_namespaces_differ(tiny, tmp_path):
    ns = {e: student(tiny, tmp_path, e).cache('embed').namespace for e in ('torch', 'onnx', 'onnx-int8')}
    assert len(set(ns.values())) == 3
    assert 'encoder' not in json.loads(ns['torch'])                 # torch caches keep their old key
    assert json.loads(ns['onnx-int8'])['encoder'] == 'onnx-int8'
    assert json.loads(ns['onnx-int8'])['int8'] == {'per_channel': True}   # vectors of another int8 recipe not reused
    top = student(tiny, tmp_path, 'onnx', mode='top', top_k=1)
    assert 'encoder' not in json.loads(top.cache('layer1').namespace)   # hidden states stay with torch
    with pytest.raises(ValueError, match="encoder 'openvino'"): make_config('cpu', encoder='openvino')


def test_onnx_student_fits_and_predicts(tiny, rows, tmp_path):
    s = student(tiny, tmp_path, 'onnx', epochs=5)
    s.fit(rows[:200], rows[200:])
    p = s.predict_proba([r['text'] for r in rows[:6]])
    assert p.shape == (6, len(s.labels)) and np.allclose(p.sum(1), 1, atol=1e-5)
    s2 = Student.load(s.save(tmp_path/'model'), progress=False)
    assert s2.cfg.encoder == 'onnx'
    np.testing.assert_allclose(s2.predict_proba([r['text'] for r in rows[:6]]), p, atol=1e-6)


def test_encoder_output_is_named_embeddings(tiny, tmp_path):
    d = build_encoder(tiny, 128, tmp_path)
    for f in ('encoder.onnx', 'encoder_int8.onnx'):
        assert [o.name for o in onnx.load(str(d/f)).graph.output] == ['embeddings']
    e = OnnxEncoder(tiny, 128, 'onnx', tmp_path)
    assert [o.name for o in e.session.get_outputs()] == ['embeddings']


def test_graphs_cached_with_the_old_output_name_are_rebuilt(tiny, tmp_path):
    "A cache folder made when the output was 'probabilities' (the key without 'output') is not reused."
    old_key = json.dumps({'checkpoint': str(tiny), 'max_len': 128, 'int8': encoder.INT8_RECIPE})
    old = tmp_path/'onnx-encoder'/hashlib.sha1(old_key.encode()).hexdigest()[:16]
    old.mkdir(parents=True)
    (old/'encoder.onnx').write_bytes(b'an old graph, output named probabilities')
    d = build_encoder(tiny, 128, tmp_path)
    assert d != old and (old/'encoder.onnx').read_bytes().startswith(b'an old graph')
    assert [o.name for o in onnx.load(str(d/'encoder.onnx')).graph.output] == ['embeddings']


PKG = Path(encoder.__file__).parent


def package_imports():
    "Module → the package modules it imports, and the imports made inside functions (lazy ones)."
    graph, lazy = {}, {}
    for p in PKG.glob('*.py'):
        tree = ast.parse(p.read_text())
        deps, inner = set(), set()
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner |= {n.module.split('.')[-1] for n in ast.walk(fn) if isinstance(n, ast.ImportFrom) and n.module
                          and (n.level == 1 or n.module.startswith('pgkd_nb.'))}
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom) and n.module and (n.level == 1 or n.module.startswith('pgkd_nb.')):
                deps.add(n.module.split('.')[-1])
        graph[p.stem], lazy[p.stem] = deps, inner
    return graph, lazy


def test_no_import_circle_and_the_onnx_writer_sits_below_the_student():
    graph, lazy = package_imports()
    list(graphlib.TopologicalSorter(graph).static_order())          # raises CycleError on a circle
    for m in ('onnx_io', 'encoder', 'student', 'export', 'predict', 'bench', 'accuracy', 'speedups'):
        assert not lazy[m], (m, lazy[m])                             # no import hidden inside a function
    assert graph['onnx_io'] <= {'fast'} and 'student' not in graph['encoder'] and 'export' not in graph['encoder']
    assert {'encoder', 'onnx_io'} <= graph['export'] and 'onnx_io' in graph['encoder']
    assert len((PKG/'student.py').read_text().splitlines()) <= 400
