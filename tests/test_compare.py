"""Issue 26: the loop's strategy setting (`--strategy pgkd|unguided|label|random`, `active`) and `pgkd compare`
(`compare`): each strategy runs and records itself, `label` never offers a text twice and, with the simulated teacher,
its rows carry the gold labels; the comparison's pages, its resume, and its one-line refusals."""
import json

import pytest

from pgkd_nb.compare import ARMS, compare, compare_result, page_text, to_markdown
from pgkd_nb.config import TeacherConfig
from pgkd_nb.data import load_task, same_text_key, sample_d0
from pgkd_nb.loop import run_pgkd
from pgkd_nb.records import completed_steps, read_json, step_path
from pgkd_nb.report import write_report
from pgkd_nb.student import tiny_checkpoint
from conftest import one_line_error, tiny


@pytest.fixture(scope='module')
def compared(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('compare')
    return tmp, compare(tiny(tmp), tmp/'cmp', seeds=2, progress=False)


def test_each_strategy_runs_and_records_itself(compared):
    tmp, r = compared
    for arm in ARMS:
        for seed in (0, 1):
            out = tmp/'cmp'/f'{arm}-seed{seed}'
            s = read_json(out/'summary.json')
            assert s['config']['strategy'] == arm and s['seed'] == seed
            assert s.get('strategy', 'pgkd') == arm                  # named in the summary (pgkd: as before)
            kd = completed_steps(out)[1:]
            assert len(kd) == 2 and all(x['n_accepted'] == 16 for x in kd) and s['n_added'] == 32
            assert s['teacher']['simulated'] and s['teacher']['calls'] == 2 and s['teacher']['cost_usd'] == 0
            asked = 'offered.json' if arm == 'label' else 'mined.json'
            assert all((step_path(out, x['step'])/asked).exists() for x in kd)
    prompt = (tmp/'cmp'/'unguided-seed0'/'step-001'/'prompt.txt').read_text()
    assert 'classification report' not in prompt and 'hard negatives' not in prompt
    assert 'classification report' in (tmp/'cmp'/'pgkd-seed0'/'step-001'/'prompt.txt').read_text()


def test_label_offers_each_text_once_and_the_simulated_teacher_gives_gold(compared):
    tmp, _ = compared
    d0 = sample_d0(load_task('huffpost_mini'), 120, seed=0)
    gold = {same_text_key(r['text']): r['label'] for r in d0.pool}
    out, seen = tmp/'cmp'/'label-seed0', set()
    for x in completed_steps(out)[1:]:
        p = step_path(out, x['step'])
        offered = {same_text_key(o['text']) for o in read_json(p/'offered.json')}
        assert len(offered) == 16 and not offered & seen             # never offered twice
        seen |= offered
        rows = read_json(p/'accepted.json')
        assert rows and all(r['label'] == gold[same_text_key(r['text'])] for r in rows)
        assert 'class_label' in (p/'reply.txt').read_text() and 'categories' in (p/'prompt.txt').read_text()
    assert not seen & {same_text_key(r['text']) for r in d0.train + d0.val + d0.test}
    assert all(set(x['phases']) >= {'mine_prompt', 'teacher'} for x in completed_steps(out)[1:])
    assert '--strategy label' in write_report(out).read_text()     # the run's page names its strategy


def test_label_resume_does_not_offer_again(tmp_path):
    class Kill(Exception): pass
    def kill(i, rec):
        if i == 1: raise Kill()
    cfg = tiny(tmp_path, strategy='label')
    with pytest.raises(Kill): run_pgkd(cfg, tmp_path/'run', progress=False, on_step=kill)
    run_pgkd(cfg, tmp_path/'run', progress=False)
    a, b = (read_json(step_path(tmp_path/'run', i)/'offered.json') for i in (1, 2))
    assert not {o['text'] for o in a} & {o['text'] for o in b}


def test_label_from_a_file_with_noise(tmp_path):
    d0 = sample_d0(load_task('huffpost_mini'), 120, seed=0)
    lines = [json.dumps({'body': r['text'], 'topic': r['label']}) for r in d0.pool[:40] + d0.test[:5]]
    (tmp_path/'u.jsonl').write_text('\n'.join(lines) + '\n')
    cfg = tiny(tmp_path, strategy='label', unlabelled=str(tmp_path/'u.jsonl'), text_col='body', label_col='topic',
               kd_steps=1, teacher=TeacherConfig(noise=0.25, noise_mode='uniform'))
    s = run_pgkd(cfg, tmp_path/'run', progress=False)
    p = step_path(tmp_path/'run', 1)
    offered = {o['text'] for o in read_json(p/'offered.json')}
    assert len(offered) == 16 and offered <= {r['text'] for r in d0.pool[:40]}      # test texts are never offered
    marks, gold = read_json(p/'marks.json'), {r['text']: r['label'] for r in d0.pool}
    wrong = [r for r in read_json(p/'accepted.json') if r['label'] != gold[r['text']]]
    assert len(wrong) == len(marks) == 4 == s['noise']['label']


def test_compare_pages_and_resume(compared):
    tmp, r = compared
    md, page = (tmp/'cmp'/'compare.md').read_text(), (tmp/'cmp'/'compare.html').read_text()
    for arm in ARMS: assert f'| {arm} |' in md and f'<td>{arm}</td>' in page
    assert 'SIMULATED' in md and 'SIMULATED' in page and '<script' not in page and 'http' not in page
    assert 'vs pgkd' in md and '$ per point' in md and '<table>' in page
    for v in r['verdicts']:                                       # a winner only where its interval excludes 0
        assert (v['winner'] is not None) == (v['half'] is not None and v['diff'] - v['half'] > 0)
    before = {p: p.stat().st_mtime_ns for p in (tmp/'cmp').glob('*/summary.json')}
    compare(tiny(tmp), tmp/'cmp', seeds=2, progress=False)
    assert {p: p.stat().st_mtime_ns for p in (tmp/'cmp').glob('*/summary.json')} == before


def summary(acc, f1, base=0.5, usd=0.0):
    return {'pgkd': {'accuracy': acc, 'macro_f1': f1}, 'baseline': {'accuracy': base, 'macro_f1': base},
            'teacher': {'name': 'simulated', 'simulated': True, 'cost_usd': usd, 'input_tokens': 0,
                        'output_tokens': 0}, 'n_added': 32, 'n_test': 100}


def test_no_winner_when_the_intervals_overlap():
    runs = {('pgkd', 0): summary(.60, .40), ('pgkd', 1): summary(.62, .45), ('pgkd', 2): summary(.58, .41),
            ('label', 0): summary(.63, .46), ('label', 1): summary(.59, .40), ('label', 2): summary(.61, .43)}
    r = compare_result(runs, ['pgkd', 'label'], [0, 1, 2], 'toy')
    assert [v['winner'] for v in r['verdicts']] == [None, None]
    md = to_markdown(page_text(r))
    assert md.count('no winner') == 2 and 'wins' not in md
    runs.update({('label', s): summary(.70 + s/100, .50) for s in range(3)})
    r = compare_result(runs, ['pgkd', 'label'], [0, 1, 2], 'toy')
    assert r['verdicts'][0]['winner'] == 'label' and '**label wins**' in to_markdown(page_text(r))


def test_one_line_errors(tmp_path, capsys, env):
    one_line_error(capsys, ['run', '--strategy', 'random', '--teacher', 'anthropic', '--out', tmp_path/'r'],
                   '--strategy random', '--teacher simulated', '--strategy unguided')
    assert not (tmp_path/'r').exists()
    missing = tmp_path/'missing.csv'
    one_line_error(capsys, ['run', '--strategy', 'label', '--unlabelled', missing, '--out', tmp_path/'r'],
                   '--unlabelled', 'missing.csv', 'no such file')
    one_line_error(capsys, ['compare', '--arms', 'pgkd,random', '--teacher', 'anthropic', '--out', tmp_path/'c'],
                   '--strategy random')
    one_line_error(capsys, ['compare', '--arms', 'pgkd,svm', '--out', tmp_path/'c'], '--arms svm', 'label', 'zero-shot')
    (tmp_path/'u.csv').write_text('text\nsome text without a label\n')
    one_line_error(capsys, ['run', '--strategy', 'label', '--unlabelled', tmp_path/'u.csv', '--out', tmp_path/'r2'],
                   "--label-col column 'label'", 'LLM teacher')


def test_compare_dry_run(capsys):
    from pgkd_nb.cli import main
    assert main(['compare', '--dry-run', '--seeds', '2', '--kd-steps', '2']) == 0
    out = capsys.readouterr().out
    assert all(f'| {a} |' in out for a in ARMS) and 'computed, not billed' in out and '$0' in out
    assert main(['plan', '--strategy', 'label', '--kd-steps', '2', '--gen-batch', '8']) == 0
    out = capsys.readouterr().out
    assert '--strategy label' in out and '16 calls' in out and "stand in for the student's picks" in out


def test_jobs_run_the_arms_in_processes_with_the_same_results(compared, tmp_path):
    "`--jobs 2`: the loop runs in two spawned processes, each logging to its run.log; the same numbers as one by one."
    tmp, r = compared
    r2 = compare(tiny(tmp), tmp_path/'cmp', arms='pgkd,random', seeds=2, progress=False, jobs=2)
    for arm in ('pgkd', 'random'):
        for seed in (0, 1):
            assert (tmp_path/'cmp'/f'{arm}-seed{seed}'/'run.log').exists()
            assert not (tmp/'cmp'/f'{arm}-seed{seed}'/'run.log').exists()          # one by one: no log file
            a, b = (read_json(p/f'{arm}-seed{seed}'/'summary.json') for p in (tmp/'cmp', tmp_path/'cmp'))
            assert a['best_step'] == b['best_step'] and a['n_added'] == b['n_added']
            assert b['pgkd']['accuracy'] == pytest.approx(a['pgkd']['accuracy'], abs=0.051)   # ≤ 2 of 40 rows
    assert r2['arms']['pgkd']['seeds'] == 2 and set(r2['arms']) == {'pgkd', 'random'}


def test_a_failed_process_run_fails_the_comparison_in_one_line(capsys, tmp_path):
    "A run that fails in its process (here its folder is a file) fails `pgkd compare --jobs 2` in one line naming it; "
    "the other run still finishes."
    (tmp_path/'cmp').mkdir()
    (tmp_path/'cmp'/'random-seed0').write_text('not a folder')
    argv = ['compare', '--preset', 'tiny', '--checkpoint', tiny_checkpoint(tmp_path/'tiny'), '--n-samples', '120',
            '--gen-batch', '16', '--kd-steps', '1', '--n-mined', '4', '--n-few-shot', '4', '--test-max', '40',
            '--student', 'mode=head', 'epochs=3', f"cache_dir={tmp_path/'enc'}", '--quiet', '--arms', 'pgkd,random',
            '--seeds', '1', '--jobs', '2', '--out', str(tmp_path/'cmp')]
    one_line_error(capsys, argv, '1 of 2 runs failed', 'random-seed0', 'resumes')
    assert (tmp_path/'cmp'/'pgkd-seed0'/'summary.json').exists()
    assert (tmp_path/'cmp'/'random-seed0').read_text() == 'not a folder'                  # nothing overwritten
