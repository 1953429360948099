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
from pgkd_nb.grid import VARIANTS, VARIANT_NAMES
from pgkd_nb.config import GridConfig
from pgkd_nb.repro import REPRO_PRESETS, REPO_DIR, TABLES, ReproError, reproduce
from pgkd_nb.tables import PAPER_TABLE3, PAPER_TABLE4, INTERVAL_NOTE, delta_cells, paired_t
from pgkd_nb.cli import main as pgkd_main

SMOKE = REPRO_PRESETS['smoke']
ARMS = ['seeds', 'baseline', '+PGKD', 'Δ', 'Δ 95% CI', 'PGKD − random rows', 'PGKD − random rows 95% CI']


@pytest.fixture(scope='module')
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('repro')
    t = time.time()
    common = dict(preset='smoke', out=tmp/'reports')
    files = reproduce(only='table2', grid=GridConfig(jobs=2, runs_dir=tmp/'runs'), **common)   # 2 runs in 2 processes
    files += reproduce(only=['table3', 'table4', 'fig3'], grid=GridConfig(runs_dir=tmp/'runs'), **common)   # table4 first
    return tmp, time.time() - t, files


def read(path): return pd.read_csv(path, comment='#')


INTERVAL = r'\[[+-]\d\.\d{3}, [+-]\d\.\d{3}\]'


def test_paired_t_interval_by_hand():
    m, h = paired_t([0.01, 0.03])                     # mean 0.02, sd 0.01414, t(0.975, 1) = 12.706
    assert m == pytest.approx(0.02) and h == pytest.approx(12.706*0.014142/2**0.5, abs=1e-4)
    assert delta_cells([0.01, 0.03]) == {'Δ': '+0.020', 'Δ 95% CI': '[-0.107, +0.147]'}
    assert paired_t([0.05, 0.01, 0.03])[1] == pytest.approx(4.303*0.02/3**0.5, abs=1e-4)   # t(0.975, 2) = 4.303


def test_one_seed_has_no_interval():
    assert paired_t([0.02]) == (0.02, None)
    assert delta_cells([0.02], 'PGKD − random rows') == {'PGKD − random rows': '+0.020',
                                                         'PGKD − random rows 95% CI': '(n=1: no interval)'}


def test_files_and_provenance(smoke):
    tmp, secs, files = smoke
    out = tmp/'reports'/'smoke'
    for name in ('table2', 'table3', 'table4', 'table6'):
        for f in (f'{name}.md', f'{name}.csv', f'{name}_runs.csv'): assert (out/f).stat().st_size > 0, f
        md = (out/f'{name}.md').read_text()
        assert md.startswith('# Table'), md[:80]
        for needed in ('git commit', 'reproduction preset `smoke`.', 'SIMULATED', 'no LLM', 'hardware:', 'wall time:',
                       'seeds: 0, 1', 'student:', 'run records: `runs`', INTERVAL_NOTE):
            assert needed in md, (name, needed)
        assert (out/f'{name}.csv').read_text().startswith('# # Table')      # the CSV carries the header as comments
    for nb in TABLES: assert (out/f'{nb}.ipynb').exists()                     # executed notebooks
    assert (out/'fig3.png').read_bytes()[:4] == b'\x89PNG'
    assert sorted(set(files)) == sorted(p for p in out.iterdir() if p.is_file())   # reproduce returns what it wrote
    assert (out/'index.html').read_text().count('report.html') >= 2            # every run's page, linked
    print(f'smoke reproduction took {secs:.0f} s')


def test_reports_hold_no_absolute_path(smoke):
    tmp, _, _ = smoke
    machine = {str(tmp), str(Path.cwd()), str(REPO_DIR), '/tmp/'}
    for f in sorted(p for p in (tmp/'reports'/'smoke').iterdir() if p.suffix in ('.md', '.csv')):
        text = f.read_text()
        assert not [m for m in machine if m in text], (f.name, [m for m in machine if m in text])


def test_table2(smoke):
    t = read(smoke[0]/'reports'/'smoke'/'table2.csv')
    assert list(t.columns) == ['dataset', 'classes', 'n_samples', 'metric', *ARMS, 'LLM zero-shot', 'paper: BERT-base',
                               'paper: BERT-base + PGKD', 'paper: Claude-3 zero-shot', 'paper: SOTA']
    assert t.metric.tolist() == ['accuracy', 'macro F1', 'weighted F1'] and set(t.dataset) == {DEMO_TASK}
    assert (t.seeds == len(SMOKE['seeds'])).all() and t.baseline.str.contains('±').all()
    assert t['Δ 95% CI'].str.fullmatch(INTERVAL).all()                  # 2 seeds: a paired interval for every Δ
    assert (t['PGKD − random rows'] == 'not run').all()                 # Table 2 ran before Table 4's control runs
    assert (t['LLM zero-shot'] == 'not run').all()                        # simulated teacher: never a made-up value
    runs = read(smoke[0]/'reports'/'smoke'/'table2_runs.csv')
    assert len(runs) == 2 and runs.simulated.all()


def test_table3_and_4(smoke):
    out = smoke[0]/'reports'/'smoke'
    t3 = read(out/'table3.csv')
    assert list(t3.columns) == ['method', 'source', DEMO_TASK] and len(t3) == 4 + len(PAPER_TABLE3)
    assert (t3.source == 'quoted from Liu et al. 2024 via the paper').sum() == 8
    assert t3[DEMO_TASK][2].startswith(('+', '-')) and pd.Series(t3[DEMO_TASK][2]).str.contains(INTERVAL).all()
    assert pd.Series(t3[DEMO_TASK][3]).str.contains(INTERVAL).all()     # Table 4 (the control runs) ran first
    t4 = read(out/'table4.csv')
    assert list(t4.columns) == ['dataset', 'classes', 'n_samples', 'metric', *ARMS,
                                *[VARIANT_NAMES[v] for v in VARIANTS if v != 'pgkd'],
                                *[f'paper: {VARIANT_NAMES[v]}' for v in PAPER_TABLE4]]
    assert t4.metric.tolist() == ['accuracy', 'macro F1']
    for col in ('Δ 95% CI', 'PGKD − random rows 95% CI'): assert t4[col].str.fullmatch(INTERVAL).all(), col
    assert len(read(out/'table4_runs.csv')) == len(VARIANTS)*len(SMOKE['seeds'])


def test_table6_long_form_and_reuse(smoke):
    tmp = smoke[0]
    t6 = read(tmp/'reports'/'smoke'/'table6.csv')
    assert list(t6.columns) == ['dataset', 'classes', 'n_samples', 'metric', *ARMS,
                                'paper: BERT-base', 'paper: BERT-base + PGKD']   # long form
    assert t6.n_samples.tolist() == [n for n in SMOKE['sizes'] for _ in range(3)]
    assert t6['Δ 95% CI'].str.fullmatch(INTERVAL).all()
    control = t6['PGKD − random rows 95% CI'].tolist()                   # Table 4's control ran at the first size only
    assert pd.Series(control[:3]).str.fullmatch(INTERVAL).all() and control[3:] == ['-']*3
    runs = sorted(p.parent.relative_to(tmp/'runs') for p in (tmp/'runs').glob('*/n*/*/seed*/summary.json'))
    assert len(runs) == 2*(1 + 3 + 1)     # table2's (shared by 3, 4, 6) + 3 more variants + 1 more size, 2 seeds each
    assert all((tmp/'runs'/p/'run.log').exists() for p in runs)          # each run keeps its log
    # a second invocation reads the finished runs back: no run is started again
    stamps = {p: (tmp/'runs'/p/'summary.json').stat().st_mtime for p in runs}
    files = reproduce('smoke', only='table2,table3', out=tmp/'again', grid=GridConfig(runs_dir=tmp/'runs'))
    assert stamps == {p: (tmp/'runs'/p/'summary.json').stat().st_mtime for p in runs}
    assert sorted(p.name for p in files) == sorted(['index.html'] + [f'{t}{x}' for t in ('table2', 'table3')
                                                                     for x in ('.csv', '.ipynb', '.md', '_runs.csv')])
    assert not (tmp/'again'/'smoke'/'table4.md').exists()
    # now the control runs exist: Tables 2 and 3 read them back and fill PGKD − random rows, paired over seeds
    t2 = read(tmp/'again'/'smoke'/'table2.csv')
    assert t2['PGKD − random rows 95% CI'].str.fullmatch(INTERVAL).all()
    assert pd.Series(read(tmp/'again'/'smoke'/'table3.csv')[DEMO_TASK][3]).str.contains(INTERVAL).all()


STUB = '''from pathlib import Path
datasets = settings['grid']['datasets']
if datasets == ['boom']: raise ValueError('boom,\\nover two lines')
Path(settings['out_dir'], 'table3.md').write_text(f"{settings['repro_preset']} {datasets}")'''


@pytest.fixture
def stubs(tmp_path):
    "A notebooks folder whose table3 notebook writes its settings to table3.md, or fails on datasets ['boom']."
    params = nbformat.v4.new_code_cell("settings = {}",
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
    kw = dict(only='table3', out=out, notebooks=stubs/'nbs')
    files = reproduce('cpu', grid=GridConfig(datasets='ag_news', runs_dir=stubs/'runs'), **kw)     # not the preset's datasets: partial
    assert full.read_text() == 'FULL'
    assert (out/'cpu-partial'/'table3.md').read_text() == "cpu ['ag_news']"
    assert sorted(files) == [out.resolve()/'cpu-partial'/f for f in ('index.html', 'table3.ipynb', 'table3.md')]
    reproduce('cpu', grid=GridConfig(datasets=['imdb', 'inshorts'], runs_dir=stubs/'runs'), **kw)   # the preset's own: the full report
    assert full.read_text() == "cpu ['imdb', 'inshorts']"


def test_failed_notebook(stubs):
    with pytest.raises(ReproError) as e:
        reproduce('cpu', only='table3', grid=GridConfig(datasets='boom'), out=stubs/'out', notebooks=stubs/'nbs')
    executed = (stubs/'out').resolve()/'cpu-partial'/'table3.ipynb'
    assert str(e.value) == f"table3 failed: ValueError: boom, over two lines (executed notebook: {executed})"
    assert executed.exists()


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"unknown table\(s\) \['table5'\]"): reproduce(only='table5')
    with pytest.raises(ValueError, match='jobs 0: must be at least 1'): reproduce(grid=GridConfig(jobs=0))
    with pytest.raises(ValueError, match="unknown reproduction preset 'huge'"): reproduce('huge')


def test_cli_delegates():
    assert pgkd_main(['reproduce', '--only', 'table5']) == 2           # one-line error from the library, exit code 2
