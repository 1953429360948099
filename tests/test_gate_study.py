"""End to end: the quality-gate study notebook (`nbs/repro/quality_gate.ipynb`) executed with papermill on a tiny
setting (a random tiny BERT, the embedded huffpost_mini, 2 seeds, noise 0 and 0.2, jobs 2): the report's structure,
its provenance (SIMULATED named, no machine path), resume from raw.csv. Values are not checked (a tiny model)."""
import csv, json
import papermill
from pgkd_nb.student import tiny_checkpoint
from pgkd_nb.repro import REPO_DIR

NB = REPO_DIR/'nbs'/'repro'/'quality_gate.ipynb'


def run(tmp, jobs=2):
    settings = {'datasets': ['huffpost_mini'], 'seeds': 2, 'noises': [0, 0.2], 'jobs': jobs,
                'runs_dir': str(tmp/'runs'), 'out_dir': str(tmp/'report'),
                'run': {'preset': 'tiny', 'checkpoint': tiny_checkpoint(tmp/'tiny'), 'n_samples': 120, 'gen_batch': 16,
                        'kd_steps': 2, 'n_mined': 4, 'n_few_shot': 4, 'test_max': 40,
                        'student': {'mode': 'head', 'epochs': 3, 'cache_dir': str(tmp/'enc')}}}
    papermill.execute_notebook(str(NB), str(tmp/'executed.ipynb'), parameters={'settings': settings},
                               kernel_name='python3', progress_bar=False, cwd=str(REPO_DIR))
    return tmp/'report'


def test_study_notebook_writes_the_report_and_resumes(tmp_path):
    out = run(tmp_path)
    rows = list(csv.DictReader(open(out/'raw.csv')))
    assert len(rows) == 8 and {r['gate'] for r in rows} == {'off', 'all'}
    assert all(int(r['marked']) > 0 for r in rows if r['noise'] == '0.2')
    assert all(r['gate_s_first'] != '' for r in rows if r['gate'] == 'all')
    page = (out/'README.md').read_text()
    for part in ('SIMULATED', '`neighbour` mode', '## Test accuracy', '## Test macro-F1', '## What the gate did',
                 '## Targets (issue 25)', 'commit '):
        assert part in page, part
    assert str(tmp_path) not in page and '/root' not in page
    before = (out/'raw.csv').read_text()
    run(tmp_path, jobs=1)                                   # every run read back: raw.csv unchanged
    assert (out/'raw.csv').read_text() == before
    cells = json.load(open(tmp_path/'executed.ipynb'))['cells']
    assert not any(o.get('output_type') == 'error' for c in cells for o in c.get('outputs', []))
