"""Faults of `pgkd report` on a tiny run whose class names hold `$` (matplotlib would read them as mathtext), one
class has no test rows, and no KD step beat model_0 (the baseline was kept, no rows were added); and notebook
outputs that carry tqdm's `IProgress not found` warning."""
import json
from pathlib import Path

import pytest
from matplotlib.text import Text

import pgkd_nb.loop as loop
from pgkd_nb.config import RunConfig
from pgkd_nb.data import DEMO_TASK, load_task
from pgkd_nb.report import (added_figure, check_outputs, class_changes, execute_outputs, f1_figure, load_run,
                            output_problems, local_paths, png_uri, report_context, write_report)
from pgkd_nb.student import tiny_checkpoint

ROOT = Path(__file__).resolve().parents[1]
NAMES = {'TASTE': '$5 off', 'WEIRD NEWS': 'a$b$c', 'GREEN': 'x$^$y', 'CRIME': 'no test rows'}


class Mislabelling:
    "The run's own simulated teacher, every row it sends given the next class's name: no KD step can help."
    def __init__(self, teacher, labels): self.teacher, self.labels = teacher, labels
    def __getattr__(self, name): return getattr(self.teacher, name)

    def generate(self, req, **kw):
        reply = self.teacher.generate(req, **kw)
        for r in reply.rows: r['label'] = self.labels[(self.labels.index(r['label']) + 1) % len(self.labels)]
        return reply


@pytest.fixture(scope='module')
def kept_baseline(tmp_path_factory):
    "A finished tiny run on four renamed HuffPost classes (one absent from the test file) that kept model_0."
    tmp = tmp_path_factory.mktemp('faults_report')
    task = load_task(DEMO_TASK)
    def rows(split, names): return [{'text': r['text'], 'label': names[r['label']]} for r in split if r['label'] in names]
    for name, split, names in (('train', task.train, NAMES), ('test', task.test, {**NAMES, 'CRIME': None})):
        lines = [json.dumps(r) for r in rows(split, {k: v for k, v in names.items() if v})]
        (tmp/f'{name}.jsonl').write_text('\n'.join(lines) + '\n')
    cfg = RunConfig(data=str(tmp/'train.jsonl'), test_data=str(tmp/'test.jsonl'), checkpoint=tiny_checkpoint(tmp/'tiny'),
                    preset='tiny', n_samples=120, kd_steps=1, gen_batch=16, n_mined=4, n_few_shot=4, patience=0,
                    student={'mode': 'head', 'epochs': 20, 'lr': 1e-2, 'patience': 3, 'cache_dir': str(tmp/'cache')})
    real = loop.run_teacher
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop, 'run_teacher', lambda cfg, d0, *a, **kw: Mislabelling(real(cfg, d0, *a, **kw), d0.labels))
        summary = loop.run_pgkd(cfg, tmp/'run', progress=False)
    assert summary['best_step'] == 0 and summary['steps'][1]['n_accepted'] > 0, summary['steps']   # the premise
    return tmp/'run'


def texts(fig) -> list[Text]:
    return [t for t in fig.findobj(Text) if t.get_text()]


def test_class_names_with_dollars_are_plain_text(kept_baseline):
    run = load_run(kept_baseline)
    assert {'$5 off', 'a$b$c', 'x$^$y'} <= set(run['labels'])
    ch = class_changes(run['baseline'], run['pgkd'], run['labels'], {l: 3 for l in run['labels']})
    for fig in (f1_figure(ch), added_figure(ch)):
        named = [t for t in texts(fig) if '$' in t.get_text()]
        assert named and not [t.get_text() for t in named if t.get_parse_math()]   # no mathtext: `$` is a dollar
        assert png_uri(fig).startswith('data:image/png;base64,')                  # 'x$^$y' drew (no ParseException)
    page = write_report(kept_baseline).read_text(encoding='utf-8')
    assert 'a$b$c' in page and '$5 off' in page


def test_classes_with_no_test_rows_are_left_out_of_the_f1_plot(kept_baseline):
    run = load_run(kept_baseline)
    ch = class_changes(run['baseline'], run['pgkd'], run['labels'])
    assert [r['support'] for r in ch if r['label'] == 'no test rows'] == [0]
    labels = [t.get_text() for t in texts(f1_figure(ch))]
    assert not [t for t in labels if t.startswith('no test rows')]
    assert any('(1 class with no test rows left out)' in t for t in labels)


def test_a_kept_baseline_says_so(kept_baseline):
    ctx = report_context(load_run(kept_baseline))
    assert ctx['best'] == 0
    assert ctx['classes_note'].startswith('The baseline (model_0) was kept: no KD step lowered the validation loss')
    assert 'KD steps 1 to 0' not in ctx['classes_note']
    assert 'model_0 (step 0, the baseline) has the lowest validation loss and is kept' in ctx['curve_note']
    ch = ctx['classes']
    assert not any(r['added'] for r in ch)
    shown = [t.get_text() for t in texts(added_figure(ch))]
    assert shown == ["No rows were added: the kept model's training set has no teacher rows."]   # not an empty plot


def test_the_page_of_a_kept_baseline_never_says_steps_1_to_0(kept_baseline):
    "Needs the template to print `classes_note` (pgkd_nb/templates/report.html.j2, line 70-71)."
    page = write_report(kept_baseline).read_text(encoding='utf-8')
    assert 'KD steps 1 to 0' not in page and 'The baseline (model_0) was kept' in page


WARNING = ('/usr/lib/python3/site-packages/tqdm/auto.py:21: TqdmWarning: IProgress not found. Please update jupyter '
           'and ipywidgets. See https://ipywidgets.readthedocs.io/en/stable/user_install.html\n')


def test_a_tqdm_warning_in_outputs_is_a_problem(tmp_path):
    cell = {'cell_type': 'code', 'outputs': [{'output_type': 'stream', 'name': 'stderr', 'text': [WARNING]}]}
    assert output_problems({'cells': [cell]}, local_paths()) == ['code cell 0: a TqdmWarning (pip install ipywidgets)']


def test_refreshed_outputs_hold_no_tqdm_warning(tmp_path, monkeypatch):
    "`make outputs` re-runs a notebook that shows tqdm bars; what it keeps has no warning (and the tutorial none)."
    nb = {'cells': [{'cell_type': 'code', 'execution_count': None, 'id': 'a1', 'metadata': {}, 'outputs': [],
                     'source': ['from tqdm.auto import tqdm\n', "print(sum(tqdm(range(3))), 'rows')"]}],
          'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}
    p = tmp_path/'bars.ipynb'
    p.write_text(json.dumps(nb))
    monkeypatch.chdir(ROOT)                                   # nbdev's settings.ini
    execute_outputs([p], ROOT)
    outs = json.loads(p.read_text())['cells'][0]['outputs']
    assert 'TqdmWarning' not in json.dumps(outs) and '3 rows' in json.dumps(outs)
    assert not [m for m in check_outputs([ROOT/'nbs'/'tutorial.ipynb'], ROOT) if 'Tqdm' in m]


def test_refreshed_outputs_keep_no_stale_output(tmp_path, monkeypatch):
    "A cell that printed once and prints nothing now loses its old output when `make outputs` re-runs it."
    nb = {'cells': [{'cell_type': 'code', 'execution_count': 1, 'id': 'a1', 'metadata': {},
                     'outputs': [{'output_type': 'stream', 'name': 'stdout', 'text': ['an old line\n']}],
                     'source': ['x = 1']}],
          'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}
    p = tmp_path/'stale.ipynb'
    p.write_text(json.dumps(nb))
    monkeypatch.chdir(ROOT)
    execute_outputs([p], ROOT)
    assert json.loads(p.read_text())['cells'][0]['outputs'] == []
