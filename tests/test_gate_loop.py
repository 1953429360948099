"""Issue 25 wired into the loop: a noisy simulated teacher (`--teacher-noise`, `--teacher-dupes`) whose mistakes are
marked in the step record, and the quality gate (`--gate`) on each step's rows before they join the training data."""
import json

import pytest

from pgkd_nb.config import RunConfig, TeacherConfig, config_from_dict
from pgkd_nb.loop import run_pgkd
from pgkd_nb.records import completed_steps, format_summary, read_json, step_path
from pgkd_nb.report import write_report
from pgkd_nb.student import tiny_checkpoint
from conftest import one_line_error


def tiny(tmp_path, gate='all', noise=0.3, dupes=0.2, **kw):
    "A tiny run (tiny BERT, head mode, huffpost_mini) with a noisy simulated teacher and the gate."
    kw = {'kd_steps': 3, 'patience': 5, **kw}
    return RunConfig(preset='tiny', checkpoint=tiny_checkpoint(tmp_path/'tiny'), n_samples=120, gen_batch=16,
                     n_mined=4, n_few_shot=4, test_max=40, gate=gate,
                     teacher=TeacherConfig(noise=noise, dupes=dupes, noise_mode='neighbour'),
                     student={'mode': 'head', 'epochs': 3, 'cache_dir': str(tmp_path/'enc')}, **kw)


class Kill(Exception): pass


def kill_after(step):
    def hook(i, rec):
        if i == step: raise Kill()
    return hook


def machine_free(s):
    return {k: v for k, v in s.items() if k not in ('finished', 'wall_seconds', 'hardware')} | {
        'steps': [{k: ({**v, 'seconds': 0} if k == 'gate' else v) for k, v in r.items() if k != 'seconds'}
                  for r in s['steps']],
        'gate': {k: v for k, v in s['gate'].items() if 'seconds' not in k}}


@pytest.fixture(scope='module')
def gated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('gated')
    return tmp, run_pgkd(tiny(tmp), tmp/'run', progress=False)


def test_marks_and_rejections_are_recorded(gated):
    tmp, s = gated
    kd = completed_steps(tmp/'run')[1:]
    assert kd and all('gate' in r and 'noise' in r and 'gate' in r['phases'] for r in kd)
    for r in kd:
        p = step_path(tmp/'run', r['step'])
        marks, rej = read_json(p/'marks.json'), read_json(p/'gate_rejected.json')
        assert r['noise']['marked'] == len(marks) > 0 and {m['kind'] for m in marks} <= {'label', 'dupe'}
        assert r['gate']['rejected'] == len(rej)
        assert all(x['check'] in ('dupes', 'label', 'ambiguity') and 'score' in x and x['reasons'] for x in rej)
        assert r['n_accepted'] == len(read_json(p/'accepted.json')) == r['gate']['kept']
        reply, prompt = (p/'reply.txt').read_text(), (p/'prompt.txt').read_text()
        assert 'true_label' not in reply + prompt and 'marks' not in reply      # the student never sees the marks
        assert 'precision' in r['gate'] and 'recall' in r['gate'] and r['gate']['marked'] == len(marks)
    assert 0 < sum(r['gate']['rejected'] for r in kd) == s['gate']['rejected']
    assert s['gate']['recall'] is not None and 0 <= s['gate']['recall'] <= 1
    assert s['noise']['marked'] == sum(r['noise']['marked'] for r in kd)
    assert config_from_dict(read_json(tmp/'run'/'config.json')).teacher.noise == 0.3
    assert read_json(tmp/'run'/'config.json')['gate'] == 'all'


def test_counts_in_summary_table_report(gated, capsys):
    tmp, s = gated
    text = format_summary(s)
    assert 'SIMULATED, noisy: 30% neighbour labels, 20% near-copies' in text
    assert 'gated' in text and 'gate (dupes, label, ambiguity): rejected' in text and 'gate precision' in text
    from pgkd_nb.cli import main
    assert main(['show', str(tmp/'run')]) == 0
    assert 'gate (dupes, label, ambiguity): rejected' in capsys.readouterr().out
    html = write_report(tmp/'run').read_text()
    assert 'noisy: 30% neighbour labels' in html and 'gate rejected' in html


def test_resume_after_a_kill_gives_the_same_summary(tmp_path):
    cfg = tiny(tmp_path)
    full = run_pgkd(cfg, tmp_path/'full', progress=False)
    with pytest.raises(Kill): run_pgkd(cfg, tmp_path/'killed', progress=False, on_step=kill_after(2))
    again = run_pgkd(cfg, tmp_path/'killed', progress=False)
    a, b = (json.loads(json.dumps(machine_free(x)).replace(str(d), '<out>'))
            for x, d in ((full, tmp_path/'full'), (again, tmp_path/'killed')))
    assert a == b


def test_without_the_gate_corrupted_rows_reach_training(tmp_path):
    s = run_pgkd(tiny(tmp_path, gate='', kd_steps=2), tmp_path/'run', progress=False)
    kd = completed_steps(tmp_path/'run')[1:]
    assert all('gate' not in r and 'noise' in r for r in kd) and 'gate' not in s
    assert s['noise']['kept'] == sum(r['noise']['kept'] for r in kd) > 0      # counted
    assert 'bad kept' in format_summary(s) and 'reached the training data' in format_summary(s)


def test_no_noise_no_gate_adds_nothing(tmp_path):
    s = run_pgkd(tiny(tmp_path, gate='', noise=0.0, dupes=0.0, kd_steps=1), tmp_path/'run', progress=False)
    assert not {'gate', 'noise'} & set(s) and not {'gate', 'noise'} & set(s['steps'][1])
    assert 'noisy' not in format_summary(s) and 'gated' not in format_summary(s)
    assert not (step_path(tmp_path/'run', 1)/'marks.json').exists()


def test_llm_teacher_with_noise_is_refused_in_one_line(tmp_path, capsys):
    one_line_error(capsys, ['run', '--teacher', 'openai', '--teacher-noise', '0.2', '--out', tmp_path/'r', '--quiet'],
                   '--teacher-noise 0.2', 'only the simulated teacher', '--teacher simulated')
    assert not (tmp_path/'r').exists()
    one_line_error(capsys, ['run', '--gate', 'dupes,lable', '--out', tmp_path/'g', '--quiet'],
                   '--gate dupes,lable', 'dupes, label, ambiguity')
    one_line_error(capsys, ['run', '--teacher-noise', '1.5', '--out', tmp_path/'n', '--quiet'], '--teacher-noise 1.5')
