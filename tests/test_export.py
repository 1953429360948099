"""Your data in, a deployable student out: CSV → run → export (HF, ONNX, int8, card, rows) → predict, and the checks
that the export runs without pgkd_nb."""
import csv, inspect, json, random, subprocess, sys
import numpy as np
import onnx
import pytest
from pgkd_nb.config import RunConfig, make_config
from pgkd_nb.data import sample_d0
from pgkd_nb.files import load_data
from pgkd_nb.export import EXPORT_FILE, ONNX_FP32, ONNX_INT8, export_run, listing, push_to_hub
from pgkd_nb.predict import PredictOptions, Predictor, predict, predict_file
from pgkd_nb.loop import run_pgkd
from pgkd_nb.student import Student, tiny_checkpoint

WORDS = {'sport': 'goal match team coach league score player season',
         'money': 'bank market stock profit shares price trade fund',
         'science': 'cell space study research planet gene physics lab'}
FILLER = 'the a of in on today new report says after with'.split()


def toy_rows(n_per_class, seed):
    "Texts made of a class's words and filler words, so that even a tiny student learns something."
    rng, rows = random.Random(seed), []
    for label, words in WORDS.items():
        for i in range(n_per_class):
            text = ' '.join(rng.choice(words.split()) if rng.random() < 0.5 else rng.choice(FILLER) for _ in range(8))
            rows.append((f'{text} {seed}-{i}', label))
    rng.shuffle(rows)
    return rows


def write_csv(path, rows, header=('text', 'label')):
    with open(path, 'w', newline='', encoding='utf-8') as f: csv.writer(f).writerows([header, *rows])
    return path


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp('ck')/'tiny')


@pytest.fixture(scope='module')
def csv_run(tmp_path_factory, tiny):
    "A finished PGKD run on a CSV (`--data train.csv --test test.csv`), exported with ONNX and int8."
    d = tmp_path_factory.mktemp('csvrun')
    train, test = write_csv(d/'train.csv', toy_rows(40, 0)), write_csv(d/'test.csv', toy_rows(10, 1) + [(' ', 'sport')])
    cfg = RunConfig(dataset='toy', data=str(train), test_data=str(test), n_samples=60, kd_steps=1, gen_batch=8,
                    preset='tiny', checkpoint=tiny, student={'cache_dir': str(d/'cache'), 'epochs': 4})
    summary = run_pgkd(cfg, d/'run', progress=False)
    assert summary['dropped_at_load']['test_empty_text'] == 1 and summary['n_test'] == 30
    out = export_run(d/'run', d/'export', onnx=True, int8=True)
    return {'dir': d, 'run': d/'run', 'export': out, 'summary': summary, 'test': test, 'cache': d/'cache'}


def student_and_texts(r):
    s = Student.load(r['run']/'best_model', progress=False, cache_dir=str(r['cache']))
    return s, [row['text'] for row in load_data(r['dir']/'train.csv', test=r['test']).test]


def agree(p, q, tol=1e-4):
    "Argmax agreement 100% and max |Δp| ≤ tol."
    assert (p.argmax(1) == q.argmax(1)).all(), 'argmax differs'
    assert np.abs(p - q).max() <= tol, np.abs(p - q).max()


def test_export_layout_and_card(csv_run):
    out = csv_run['export']
    files = listing(out)
    for f in ('config.json', 'model.safetensors', 'tokenizer.json', 'README.md', EXPORT_FILE, ONNX_FP32, ONNX_INT8):
        assert f in files, f
    cfg = json.loads((out/'config.json').read_text())
    assert cfg['id2label'] == {'0': 'money', '1': 'science', '2': 'sport'} and cfg['label2id']['sport'] == 2
    card = (out/'README.md').read_text()
    for s in ('**SIMULATED**', 'pipeline_tag: text-classification', '| sport |', 'seed 0', 'preset `tiny`',
              'F1 PGKD', 'wall time', 'Intended use and limits', "$0.0000"):
        assert s in card, s


def test_hf_and_onnx_match_the_student(csv_run):
    s, texts = student_and_texts(csv_run)
    ref = s.predict_proba(texts)
    for runtime in ('torch', 'onnx'):
        agree(Predictor(csv_run['export'], runtime).proba(texts, batch_size=7), ref)
    int8 = Predictor(csv_run['export'], 'onnx-int8').proba(texts)
    assert np.abs(int8 - ref).max() < 0.01     # accuracy within 0.5 point is measured on MiniLM in the benchmark
    for f in ('onnx/model.onnx', 'onnx/model_int8.onnx'):   # the classifier's output keeps the name pipelines read
        assert [o.name for o in onnx.load(str(csv_run['export']/f)).graph.output] == ['probabilities']


def test_csv_round_trip_gives_the_runs_test_accuracy(csv_run):
    for model in (csv_run['export'], csv_run['run']):
        r = predict_file(model, csv_run['test'], out=csv_run['dir']/'preds.csv', progress=False, force=True)
        assert r['accuracy'] == csv_run['summary']['pgkd']['accuracy'], (model, r)
    rows = list(csv.DictReader(open(csv_run['dir']/'preds.csv', encoding='utf-8')))
    assert len(rows) == r['n'] == 30 and set(rows[0]) == {'text', 'label', 'probability', 'top_k'}
    assert len(json.loads(rows[0]['top_k'])) == 3 and r['texts_per_s'] > 0


def test_predict_top_k_and_txt(csv_run):
    p = predict(csv_run['export'], ['goal match team', 'bank stock price'], top_k=2)
    assert [len(x['top_k']) for x in p] == [2, 2] and p[0]['label'] == p[0]['top_k'][0]['label']
    txt = csv_run['dir']/'in.txt'
    txt.write_text('goal match\n\nbank stock\n', encoding='utf-8')
    assert predict_file(csv_run['export'], txt, out=csv_run['dir']/'t.csv', progress=False)['n'] == 2


def test_predict_file_takes_its_options_whole(csv_run):
    "The settings travel as one PredictOptions; keywords change single fields of it."
    txt = csv_run['dir']/'opts.txt'
    txt.write_text('goal match\nbank stock\n', encoding='utf-8')
    opts = PredictOptions(out=csv_run['dir']/'o.csv', top_k=1, progress=False)
    r = predict_file(csv_run['export'], txt, opts)
    rows = list(csv.DictReader(open(r['out'], encoding='utf-8')))
    assert r['n'] == 2 and [len(json.loads(x['top_k'])) for x in rows] == [1, 1]
    with pytest.raises(FileExistsError, match='pass --force'): predict_file(csv_run['export'], txt, opts)
    r = predict_file(csv_run['export'], txt, opts, force=True, top_k=2, runtime='onnx-int8')
    assert r['runtime'] == 'onnx-int8' and opts.top_k == 1 and not opts.force     # the caller's options untouched
    assert len(inspect.signature(predict_file).parameters) < 8


@pytest.mark.parametrize('mode', ['head', 'top'])
def test_head_and_top_students(tmp_path, tiny, mode):
    task = load_data(write_csv(tmp_path/'d.csv', toy_rows(20, 2)))
    kw = dict(checkpoint=tiny, cache_dir=str(tmp_path/'cache'), progress=False, epochs=3)
    s = Student(task.labels, make_config('cpu', **kw) if mode == 'head' else make_config('top', top_k=1, **kw))
    s.fit(task.train, task.test)
    out = export_run(s.save(tmp_path/'student'), tmp_path/'export')
    texts = [r['text'] for r in task.test]
    agree(Predictor(out, 'onnx' if mode == 'head' else 'torch').proba(texts), s.predict_proba(texts))
    assert (out/'config.json').exists() == (mode != 'head')    # head: ONNX only, no config a pipeline would misread
    assert ((out/ONNX_FP32).exists(), 'ONNX graph only' in (out/'README.md').read_text()) == (mode == 'head',) * 2


HIDE_PGKD = '''
import importlib.abc, sys
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'pgkd_nb': raise ImportError('pgkd_nb is hidden')
sys.meta_path.insert(0, Hide())
try:
    import pgkd_nb
    raise SystemExit('pgkd_nb is importable')
except ImportError: pass
'''

LOAD_EXPORT = '''
import json, sys, numpy as np, onnxruntime as ort
from transformers import AutoTokenizer, pipeline
out, texts = sys.argv[1], json.loads(sys.argv[2])
clf = pipeline('text-classification', model=out)
hf = [{d['label']: d['score'] for d in r} for r in clf(texts, truncation=True, top_k=None)]
tok = AutoTokenizer.from_pretrained(out)
x = tok(texts, truncation=True, padding=True, return_tensors='np')
sess = ort.InferenceSession(out + '/onnx/model.onnx', providers=['CPUExecutionProvider'])
p = sess.run(None, {'input_ids': x['input_ids'], 'attention_mask': x['attention_mask']})[0]
print(json.dumps({'hf': hf, 'onnx': p.tolist(), 'pgkd_nb': 'pgkd_nb' in sys.modules}))
'''


def test_export_loads_where_pgkd_nb_is_not_importable(csv_run, tmp_path):
    s, texts = student_and_texts(csv_run)
    texts = texts[:12]
    script = tmp_path/'load.py'
    script.write_text(HIDE_PGKD + LOAD_EXPORT)
    r = subprocess.run([sys.executable, '-I', str(script), str(csv_run['export']), json.dumps(texts)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert not got['pgkd_nb']
    ref = s.predict_proba(texts)
    agree(np.array([[d[l] for l in s.labels] for d in got['hf']]), ref)
    agree(np.array(got['onnx']), ref)


def test_data_only_export(csv_run, tmp_path):
    from datasets import load_from_disk
    import pyarrow.parquet as pq
    out = export_run(csv_run['run'], tmp_path/'rows', data_only=True)
    ds = load_from_disk(str(out/'dataset'))
    assert len(ds) == csv_run['summary']['n_added'] == pq.read_table(out/'data.parquet').num_rows
    assert set(ds.column_names) == {'text', 'label', 'step', 'teacher', 'teacher_model', 'simulated', 'prompt_sha1'}
    assert ds[0]['step'] == 1 and ds[0]['simulated'] and len(ds[0]['prompt_sha1']) == 40
    assert '**SIMULATED** teacher' in (out/'README.md').read_text()


class FakeApi:
    "Records what push_to_hub asks of `huggingface_hub.HfApi` (no network)."
    def __init__(self): self.calls = []
    def create_repo(self, **kw):
        self.calls.append(('create_repo', kw))
        return f"https://huggingface.co/{kw['repo_id']}"
    def upload_folder(self, **kw): self.calls.append(('upload_folder', kw))


def test_push_to_hub_with_a_mocked_client(csv_run, tmp_path):
    api = FakeApi()
    assert push_to_hub(csv_run['export'], 'me/toy', api=api) == 'https://huggingface.co/me/toy'
    assert [c[0] for c in api.calls] == ['create_repo', 'upload_folder']
    assert api.calls[1][1]['repo_type'] == 'model' and api.calls[1][1]['folder_path'] == str(csv_run['export'])
    rows = export_run(csv_run['run'], tmp_path/'rows', data_only=True)
    push_to_hub(rows, 'me/toy-rows', api=api)
    assert api.calls[-1][1]['repo_type'] == 'dataset'
    with pytest.raises(FileNotFoundError, match='not a pgkd export'): push_to_hub(tmp_path, 'me/x', api=api)


def bad_inputs(d):
    "(call, message) for each bad input the issue lists."
    rows = toy_rows(10, 3)
    ok = write_csv(d/'ok.csv', rows)
    latin = d/'latin.csv'
    latin.write_bytes('text,label\ncaf\xe9 au lait,money\n'.encode('latin1'))
    return [
        (lambda: load_data(ok, text_col='body'), "no column 'body'; columns found: 'text', 'label'"),
        (lambda: load_data(write_csv(d/'one.csv', [(t, 'sport') for t, _ in rows])), "every row has the label 'sport'"),
        (lambda: load_data(write_csv(d/'rare.csv', rows + [('lonely text', 'rare')])),
         "class(es) {'rare': 1} have fewer than 2 rows, too few for a stratified held-out test split"),
        (lambda: sample_d0(load_data(ok), n=1000), 'n=1000 is more than the 24 training rows of ok'),
        (lambda: load_data(latin), 'latin.csv:2: not UTF-8 (byte 0xe9); save the file as UTF-8'),
        (lambda: load_data(ok, test=write_csv(d/'t.csv', [('x y', 'sport'), ('z', 'weather')])),
         "t.csv:3: label 'weather' is not in the training data"),
        (lambda: load_data(ok, labels='sport,money'), "label 'science' is not in --labels (money, sport)"),
        (lambda: export_run(d, d/'e'), 'no best_model/ and no pgkd_student.json'),
        (lambda: predict(d, ['x'], runtime='onnx'), 'no onnx/model.onnx for runtime'),
    ]


def test_each_bad_input_has_its_message(tmp_path):
    for call, message in bad_inputs(tmp_path):
        with pytest.raises((ValueError, FileNotFoundError)) as e: call()
        assert message in str(e.value), (message, str(e.value))


def test_export_refuses_a_folder_that_is_not_an_export(csv_run, tmp_path):
    (tmp_path/'notes.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='is not a pgkd export'): export_run(csv_run['run'], tmp_path)
    assert (tmp_path/'notes.txt').exists()
