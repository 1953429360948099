"""End to end: `pgkd reproduce --preset smoke` executes the four reproduction notebooks with papermill.

Checks the STRUCTURE of the reports (files, columns, rows, provenance, the simulated teacher stated), not
their values: the smoke preset trains a tiny random BERT on the embedded 41-class HuffPost subset.
"""
import json, time
from pathlib import Path
import pandas as pd
import pytest
from pgkd_nb.data import DEMO_TASK
from pgkd_nb.repro import PRESETS, VARIANTS, VARIANT_NAMES, PAPER_TABLE3, reproduce_main
from pgkd_nb.cli import main as pgkd_main


@pytest.fixture(scope='module')
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('repro')
    t = time.time()
    common = ['--preset', 'smoke', '--out', str(tmp/'reports'), '--runs', str(tmp/'runs')]
    assert reproduce_main(common + ['--only', 'table2', '--jobs', '2']) == 0           # its 2 runs in 2 worker processes
    assert reproduce_main(common + ['--only', 'table3,table4,fig3']) == 0               # the rest in-process, reusing table2's runs
    return tmp, time.time() - t


def read(path): return pd.read_csv(path, comment='#')


def test_files_and_provenance(smoke):
    tmp, secs = smoke
    out = tmp/'reports'/'smoke'
    for name in ('table2', 'table3', 'table4', 'table6'):
        for f in (f'{name}.md', f'{name}.csv', f'{name}_runs.csv'): assert (out/f).stat().st_size > 0, f
        md = (out/f'{name}.md').read_text()
        assert md.startswith('# Table'), md[:80]
        for needed in ('git commit', 'reproduction preset `smoke`', 'SIMULATED', 'no LLM', 'hardware:', 'wall time:', 'seeds: 0, 1', 'student:'):
            assert needed in md, (name, needed)
        assert (out/f'{name}.csv').read_text().startswith('# # Table')      # the CSV carries the header as comments
    for nb in ('table2', 'table3', 'table4', 'table6_fig3'): assert (out/f'{nb}.ipynb').exists()   # executed notebooks
    assert (out/'fig3.png').read_bytes()[:4] == b'\x89PNG'
    print(f'smoke reproduction took {secs:.0f} s')


def test_table2(smoke):
    t = read(smoke[0]/'reports'/'smoke'/'table2.csv')
    assert list(t.columns) == ['dataset', 'classes', 'n_samples', 'metric', 'seeds', 'baseline', '+PGKD', 'Δ', 'LLM zero-shot',
                               'paper: BERT-base', 'paper: BERT-base + PGKD', 'paper: Claude-3 zero-shot', 'paper: SOTA']
    assert t.metric.tolist() == ['accuracy', 'macro F1', 'weighted F1'] and set(t.dataset) == {DEMO_TASK}
    assert (t.seeds == len(PRESETS['smoke']['seeds'])).all() and t.baseline.str.contains('±').all()
    assert (t['LLM zero-shot'] == 'not run').all()                        # simulated teacher: never a made-up value
    runs = read(smoke[0]/'reports'/'smoke'/'table2_runs.csv')
    assert len(runs) == 2 and runs.simulated.all()


def test_table3_and_4(smoke):
    out = smoke[0]/'reports'/'smoke'
    t3 = read(out/'table3.csv')
    assert list(t3.columns) == ['method', 'source', DEMO_TASK] and len(t3) == 2 + len(PAPER_TABLE3)
    assert (t3.source == 'quoted from Liu et al. 2024 via the paper').sum() == 8
    t4 = read(out/'table4.csv')
    assert t4.method.tolist() == ['baseline (model_0, no KD)'] + [VARIANT_NAMES[v] for v in VARIANTS]
    assert list(t4.columns) == ['method', DEMO_TASK, f'paper: {DEMO_TASK}']
    assert len(read(out/'table4_runs.csv')) == len(VARIANTS)*len(PRESETS['smoke']['seeds'])


def test_table6_and_reuse(smoke):
    tmp = smoke[0]
    t6 = read(tmp/'reports'/'smoke'/'table6.csv')
    assert t6.n_samples.tolist() == PRESETS['smoke']['sizes'] and t6.shape[1] == 15
    runs = sorted(p.parent.relative_to(tmp/'runs') for p in (tmp/'runs').glob('*/n*/*/seed*/summary.json'))
    assert len(runs) == 2*(1 + 3 + 1)            # table2 (shared by 3, 4, 6) + 3 more variants + 1 more size, 2 seeds each
    # a second invocation reads the finished runs back: no run is started again
    stamps = {p: (tmp/'runs'/p/'summary.json').stat().st_mtime for p in runs}
    assert pgkd_main(['reproduce', '--preset', 'smoke', '--only', 'table3', '--out', str(tmp/'again'), '--runs', str(tmp/'runs')]) == 0
    assert stamps == {p: (tmp/'runs'/p/'summary.json').stat().st_mtime for p in runs}
    assert (tmp/'again'/'smoke'/'table3.md').exists() and not (tmp/'again'/'smoke'/'table2.md').exists()


def test_bad_only():
    with pytest.raises(ValueError, match=r"unknown table\(s\) \['table5'\]"): reproduce_main(['--only', 'table5'])


def test_cli_delegates():
    assert pgkd_main(['reproduce', '--only', 'table5']) == 2           # one-line error from the library, exit code 2
