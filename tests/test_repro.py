"""End to end: `reproduce(preset='smoke')` executes the four reproduction notebooks with papermill.

Checks the STRUCTURE of the reports (files, columns, rows, provenance, the simulated teacher stated, no
machine's absolute path), not their values: the smoke preset trains a tiny random BERT on the embedded 41-class
HuffPost subset. Where a partial reproduction goes, and how a failed notebook is reported, are checked on
stub notebooks (a kernel start each, no training).
"""
import time
from pathlib import Path
import nbformat
import pandas as pd
import pytest
from pgkd_nb.data import DEMO_TASK
from pgkd_nb.repro import (REPRO_PRESETS, REPO_DIR, TABLES, VARIANTS, VARIANT_NAMES, PAPER_TABLE3, ReproError,
                           reproduce)
from pgkd_nb.cli import main as pgkd_main

SMOKE = REPRO_PRESETS['smoke']


@pytest.fixture(scope='module')
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('repro')
    t = time.time()
    common = dict(preset='smoke', out=tmp/'reports', runs=tmp/'runs')
    files = reproduce(only='table2', jobs=2, **common)                   # its 2 runs in 2 worker processes
    files += reproduce(only=['table3', 'table4', 'fig3'], **common)      # the rest in-process, reusing table2's runs
    return tmp, time.time() - t, files


def read(path): return pd.read_csv(path, comment='#')


def test_files_and_provenance(smoke):
    tmp, secs, files = smoke
    out = tmp/'reports'/'smoke'
    for name in ('table2', 'table3', 'table4', 'table6'):
        for f in (f'{name}.md', f'{name}.csv', f'{name}_runs.csv'): assert (out/f).stat().st_size > 0, f
        md = (out/f'{name}.md').read_text()
        assert md.startswith('# Table'), md[:80]
        for needed in ('git commit', 'reproduction preset `smoke`.', 'SIMULATED', 'no LLM', 'hardware:', 'wall time:',
                       'seeds: 0, 1', 'student:', 'run records: `runs`'):
            assert needed in md, (name, needed)
        assert (out/f'{name}.csv').read_text().startswith('# # Table')      # the CSV carries the header as comments
    for nb in TABLES: assert (out/f'{nb}.ipynb').exists()                     # executed notebooks
    assert (out/'fig3.png').read_bytes()[:4] == b'\x89PNG'
    assert sorted(files) == sorted(p for p in out.iterdir() if p.is_file())   # reproduce returns what it wrote
    print(f'smoke reproduction took {secs:.0f} s')


def test_reports_hold_no_absolute_path(smoke):
    tmp, _, _ = smoke
    machine = {str(tmp), str(Path.cwd()), str(REPO_DIR), '/tmp/'}
    for f in sorted(p for p in (tmp/'reports'/'smoke').iterdir() if p.suffix in ('.md', '.csv')):
        text = f.read_text()
        assert not [m for m in machine if m in text], (f.name, [m for m in machine if m in text])


def test_table2(smoke):
    t = read(smoke[0]/'reports'/'smoke'/'table2.csv')
    assert list(t.columns) == ['dataset', 'classes', 'n_samples', 'metric', 'seeds', 'baseline', '+PGKD', 'Δ',
                               'LLM zero-shot', 'paper: BERT-base', 'paper: BERT-base + PGKD',
                               'paper: Claude-3 zero-shot', 'paper: SOTA']
    assert t.metric.tolist() == ['accuracy', 'macro F1', 'weighted F1'] and set(t.dataset) == {DEMO_TASK}
    assert (t.seeds == len(SMOKE['seeds'])).all() and t.baseline.str.contains('±').all()
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
    assert len(read(out/'table4_runs.csv')) == len(VARIANTS)*len(SMOKE['seeds'])


def test_table6_long_form_and_reuse(smoke):
    tmp = smoke[0]
    t6 = read(tmp/'reports'/'smoke'/'table6.csv')
    assert list(t6.columns) == ['dataset', 'n_samples', 'metric', 'seeds', 'baseline', '+PGKD', 'Δ',
                                'paper: BERT-base', 'paper: BERT-base + PGKD']   # long form: 9 columns, not 15
    assert t6.n_samples.tolist() == [n for n in SMOKE['sizes'] for _ in range(3)]
    runs = sorted(p.parent.relative_to(tmp/'runs') for p in (tmp/'runs').glob('*/n*/*/seed*/summary.json'))
    assert len(runs) == 2*(1 + 3 + 1)            # table2 (shared by 3, 4, 6) + 3 more variants + 1 more size, 2 seeds each
    # a second invocation reads the finished runs back: no run is started again
    stamps = {p: (tmp/'runs'/p/'summary.json').stat().st_mtime for p in runs}
    files = reproduce('smoke', only='table3', out=tmp/'again', runs=tmp/'runs')
    assert stamps == {p: (tmp/'runs'/p/'summary.json').stat().st_mtime for p in runs}
    assert sorted(p.name for p in files) == ['table3.csv', 'table3.ipynb', 'table3.md', 'table3_runs.csv']
    assert (tmp/'again'/'smoke'/'table3.md').exists() and not (tmp/'again'/'smoke'/'table2.md').exists()


STUB = '''from pathlib import Path
if datasets == ['boom']: raise ValueError('boom,\\nover two lines')
Path(out_dir, 'table3.md').write_text(f'{repro_preset} {datasets}')'''


@pytest.fixture
def stubs(tmp_path):
    "A notebooks folder whose table3 notebook writes its parameters to table3.md, or fails on datasets ['boom']."
    params = nbformat.v4.new_code_cell("repro_preset, out_dir, runs_dir, jobs, datasets = 'smoke', '.', None, 1, None",
                                       metadata={'tags': ['parameters']})
    nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(STUB)])
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
    (tmp_path/'nbs').mkdir()
    nbformat.write(nb, tmp_path/'nbs'/'table3.ipynb')
    return tmp_path


def test_partial_never_overwrites_full(stubs):
    out = stubs/'out'
    full = out/'cpu'/'table3.md'
    full.parent.mkdir(parents=True)
    full.write_text('FULL')
    kw = dict(only='table3', out=out, runs=stubs/'runs', notebooks=stubs/'nbs')
    files = reproduce('cpu', datasets='ag_news', **kw)                      # not the preset's datasets: partial
    assert full.read_text() == 'FULL'
    assert (out/'cpu-partial'/'table3.md').read_text() == "cpu ['ag_news']"
    assert sorted(files) == [out.resolve()/'cpu-partial'/'table3.ipynb', out.resolve()/'cpu-partial'/'table3.md']
    reproduce('cpu', datasets=['imdb', 'inshorts'], **kw)                   # the preset's own: the full report
    assert full.read_text() == "cpu ['imdb', 'inshorts']"


def test_failed_notebook(stubs):
    with pytest.raises(ReproError) as e:
        reproduce('cpu', only='table3', datasets='boom', out=stubs/'out', notebooks=stubs/'nbs')
    executed = (stubs/'out').resolve()/'cpu-partial'/'table3.ipynb'
    assert str(e.value) == f"table3 failed: ValueError: boom, over two lines (executed notebook: {executed})"
    assert executed.exists()


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"unknown table\(s\) \['table5'\]"): reproduce(only='table5')
    with pytest.raises(ValueError, match='jobs 0: must be at least 1'): reproduce(jobs=0)
    with pytest.raises(ValueError, match="unknown reproduction preset 'huge'"): reproduce('huge')


def test_cli_delegates():
    assert pgkd_main(['reproduce', '--only', 'table5']) == 2           # one-line error from the library, exit code 2
