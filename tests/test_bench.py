"""The quick benchmark runs end to end and writes Table 5 with the paper's rows beside ours; a quick run never replaces
a full report; the benchmarks' settings travel as dataclasses, passed whole."""
import inspect, json, re, time
from dataclasses import fields
from pathlib import Path
import pytest
from pgkd_nb import accuracy, bench, predict, speedups
from pgkd_nb.bench import BenchConfig, CPU_PLAN, GPU_PLAN, QUICK_PLAN, run_bench, bench_student, PAPER_TABLE5
from pgkd_nb.data import DEMO_TASK, load_task
from pgkd_nb.cli import main
from pgkd_nb.speedups import run_speedups

REPORTS = Path(__file__).resolve().parent.parent/'reports'
def squeeze(md): return re.sub(' +', ' ', md)   # tables are padded to their column widths

def test_quick_bench(tmp_path):
    t = time.time()
    r = run_bench(quick=True, out=tmp_path)
    assert time.time() - t < 60
    md = (tmp_path/'table5.md').read_text()
    assert md == r['markdown'] and md.startswith('# Table 5')
    md = squeeze(md)
    head = ('| Method | paper (m5.4xlarge / g5.4xlarge, BERT-base): latency s | paper: cost $ | '
            'this machine: latency s (median) |')
    assert head in md
    for method, (lat, cost) in PAPER_TABLE5.items():
        assert f'| {method} | {lat} | ${cost} |' in md
    assert '| Claude-3 zero-shot | 60.64 | $0.3867 | not measured |' in md and '(computed)' in md
    for section in ['## Every measurement (inference)', '## Training throughput', '## int8 accuracy check',
                    "## The student's modes"]:
        assert section in md
    for col in ['| model | params (M) | device | precision | max_len | batch | median s | p90 s | n (warm-up) | '
                'texts/s | peak MiB (process) | +MiB during batches | cost $/batch |',
                '| mode | max_len | batch | train texts/s | predict texts/s | cache warm-up s |']:
        assert col in md
    inf = [x for x in r['student'] if x['kind'] == 'inference']
    assert {(x['precision'], x['max_len']) for x in inf} == {('fp32', 128), ('fp32', 512), ('int8', 128), ('int8', 512)}
    assert all(x['n'] == 3 and 0 < x['median_s'] <= x['p90_s'] and x['peak_mib'] > 0 for x in inf)
    assert md.count('| pgkd_nb_tiny_bert | ') == 6
    for x in inf:
        assert f"| {x['median_s']:.3f} | {x['p90_s']:.3f} | {x['n']} ({x['warmup']}) |" in md
    raw = json.loads((tmp_path/'table5.json').read_text())
    assert raw['zero_shot']['n_rows'] == 64 and raw['int8']['n_test'] == 60
    assert [m['mode'] for m in raw['modes']] == ['full', 'top', 'head']
    assert raw['hardware']['cores'] >= 1 and raw['command'] == 'pgkd bench' and raw['quick'] is True

def test_quick_bench_default_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_bench(quick=True, device='cpu')
    assert (tmp_path/'runs'/'bench-quick'/'table5.md').exists() and not (tmp_path/'reports').exists()

@pytest.mark.parametrize('run, raw', [(run_bench, 'table5.json'), (run_speedups, 'speedups.json')])
def test_quick_run_never_replaces_a_full_report(tmp_path, run, raw):
    with pytest.raises(ValueError, match=f'{raw}.*pass another --out'):
        run(quick=True, out=REPORTS)   # the committed report
    (tmp_path/raw).write_text(json.dumps({'quick': False}))
    with pytest.raises(ValueError, match='full run'):
        run(quick=True, out=tmp_path)
    (tmp_path/raw).write_text(json.dumps({'title': 'written before the quick key'}))
    with pytest.raises(ValueError):
        run(quick=True, out=tmp_path)

def test_cli_bench(tmp_path, capsys):
    assert main(['bench', '--quick', '--out', str(tmp_path), '--cpu-price', '1.0']) == 0
    out = capsys.readouterr().out
    assert 'custom $1.0/h' in out and (tmp_path/'table5.md').exists()
    assert main(['bench', '--quick', '--out', str(REPORTS)]) == 2   # refused: one line on stderr, nothing written
    assert 'pass another --out' in capsys.readouterr().err


def test_settings_travel_whole():
    "No function of the benchmarks or of predict takes 8 or more parameters; the plans are BenchConfig objects."
    for mod in (bench, accuracy, speedups, predict):
        wide = [n for n, f in inspect.getmembers(mod, inspect.isfunction)
                if f.__module__ == mod.__name__ and len(inspect.signature(f).parameters) >= 8]
        assert not wide, (mod.__name__, wide)
    assert all(isinstance(p, BenchConfig) for p in CPU_PLAN + GPU_PLAN + QUICK_PLAN)
    assert {f.name for f in fields(BenchConfig)} >= {'checkpoint', 'max_lens', 'batch', 'n_batches', 'budget_s', 'onnx'}


def test_bench_student_takes_a_config(tmp_path):
    cfg = BenchConfig(max_lens=(32,), device='cpu', threads=1, precisions=('fp32',), quick=True)
    rows = bench_student(cfg, load_task(DEMO_TASK), train_steps=0)
    assert [(r['kind'], r['precision'], r['max_len'], r['batch'], r['n']) for r in rows] == [
        ('inference', 'fp32', 32, 8, 3), ('train', 'fp32', 32, 8, 2)]          # quick: batches of 8, 3 timed, 2 steps
    assert cfg.batch == 64 and cfg.train_steps == 3                          # the caller's config is untouched
