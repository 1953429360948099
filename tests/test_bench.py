"The quick benchmark runs end to end and writes Table 5 with the paper's rows beside ours."
import json, time
from pgkd_nb.bench import run_bench, bench_main, PAPER_TABLE5

def test_quick_bench(tmp_path):
    t = time.time()
    r = run_bench(quick=True, out=tmp_path)
    assert time.time() - t < 60
    md = (tmp_path/'table5.md').read_text()
    assert md == r['markdown'] and md.startswith('# Table 5')
    head = '| Method | paper (m5.4xlarge / g5.4xlarge, BERT-base): latency s | paper: cost $ | this machine: latency s (median) |'
    assert head in md
    for method, (lat, cost) in PAPER_TABLE5.items(): assert f'| {method} | {lat} | ${cost} |' in md
    assert '| Claude-3 zero-shot | 60.64 | $0.3867 | not measured |' in md and '(computed)' in md
    for section in ['## Every measurement (inference)', '## Training throughput', '## int8 accuracy check', "## The student's modes"]:
        assert section in md
    for col in ['| model | params (M) | device | precision | max_len | batch | median s | p90 s | n (warm-up) | texts/s | peak MiB (process) | +MiB during batches | cost $/batch |',
                '| mode | max_len | batch | train texts/s | predict texts/s | cache warm-up s |']:
        assert col in md
    inf = [x for x in r['student'] if x['kind'] == 'inference']
    assert {(x['precision'], x['max_len']) for x in inf} == {('fp32', 128), ('fp32', 512), ('int8', 128), ('int8', 512)}
    assert all(x['n'] == 3 and 0 < x['median_s'] <= x['p90_s'] and x['peak_mib'] > 0 for x in inf)
    assert sum(f"| {x['model']} | " in md for x in inf) and md.count('| pgkd_nb_tiny_bert | ') == 6
    raw = json.loads((tmp_path/'table5.json').read_text())
    assert raw['zero_shot']['n_rows'] == 64 and raw['int8']['n_test'] == 60 and [m['mode'] for m in raw['modes']] == ['full', 'top', 'head']
    assert raw['hardware']['cores'] >= 1 and raw['command'].startswith('pgkd bench --quick')

def test_bench_main(tmp_path, capsys):
    assert bench_main(['--quick', '--out', str(tmp_path), '--cpu-price', '1.0']) == 0
    out = capsys.readouterr().out
    assert 'custom $1.0/h' in out and (tmp_path/'table5.md').exists()
