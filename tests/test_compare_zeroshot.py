"""Issue 26: `pgkd compare`'s zero-shot arm, through the real openai SDK against a fake OpenAI-compatible server on
127.0.0.1 (test_teacher_servers.FakeServer) that answers each A.2 prompt with its text's gold class: the LLM
classifies the very test rows the students are scored on, once; its dollars for the test set and per 1,000
predictions sit beside the student's; `--dry-run` prices it; with the simulated teacher it is refused in one line."""
import json, os

import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')

from conftest import one_line_error  # noqa: E402
from test_teacher_servers import FakeServer, openai_ok  # noqa: E402
from pgkd_nb.cli import BESIDE_ARMS, main  # noqa: E402
from pgkd_nb.compare import BESIDE  # noqa: E402
from pgkd_nb.data import load_task, stable_subsample  # noqa: E402
from pgkd_nb.prompt import zero_shot_prompt  # noqa: E402
from pgkd_nb.student import tiny_checkpoint  # noqa: E402

TASK = load_task('huffpost_mini')
GOLD = {r['text']: r['label'] for r in TASK.train + TASK.test}
USAGE = (300, 10)                                   # tokens in, out of every answer
PRICE = (0.5, 1.5)                                  # $ per million tokens in, out


def gold_answer(request):
    "An A.2 prompt answered with its text's gold class, as a perfect LLM would."
    prompt = request['body']['messages'][0]['content']
    label = next(lab for text, lab in GOLD.items() if prompt.endswith(text))
    return openai_ok(json.dumps({'class_label': TASK.labels.index(label), 'class_names': label}), usage=USAGE)


def flags(tmp, url) -> list[str]:
    "A tiny comparison (tiny BERT in head mode, 1 KD step of 8 rows, 40 test rows) with the served LLM as teacher."
    return ['compare', '--preset', 'tiny', '--checkpoint', tiny_checkpoint(tmp/'tiny'), '--n-samples', '120',
            '--gen-batch', '8', '--kd-steps', '1', '--test-max', '40', '--student', 'mode=head', 'epochs=3',
            f"cache_dir={tmp/'enc'}", '--teacher', 'openai', '--teacher-model', 'qwen', '--base-url', url,
            '--teacher-cache', str(tmp/'tcache'), '--price-in', str(PRICE[0]), '--price-out', str(PRICE[1]),
            '--seeds', '1', '--quiet']


def test_zero_shot_arm_against_a_served_llm(tmp_path, env, capsys):
    test = stable_subsample(TASK.test, 40)
    with FakeServer([gold_answer]*200) as srv:
        argv = [*flags(tmp_path, srv.url + '/v1'), '--arms', 'label,zero-shot', '--out', str(tmp_path/'c')]
        assert main(argv) == 0
        n = len(srv.requests)
        srv.answers.clear()                                   # again: every answer is on disk, nothing is asked
        assert main(argv) == 0 and len(srv.requests) == n
    sent = [r['body']['messages'][0]['content'] for r in srv.requests]
    assert all(r['path'] == '/v1/chat/completions' and r['body']['model'] == 'qwen' for r in srv.requests)
    asked = [p for p in sent if any(p == zero_shot_prompt(TASK.labels, r['text']) for r in test)]
    assert len(asked) == 40 and len(sent) == 40 + 8            # every test row once; the label arm's 8 pool texts
    r = json.loads((tmp_path/'c'/'compare.json').read_text())
    z = r['zero_shot']
    assert (z['n_test'], z['accuracy'], z['macro_f1'], z['model']) == (r['n_test'], 1.0, 1.0, 'openai qwen')
    usd = 40*(USAGE[0]*PRICE[0] + USAGE[1]*PRICE[1])/1e6
    assert z['usd_test'] == pytest.approx(usd) and z['usd_per_1k'] == pytest.approx(1000*usd/40)
    c = z['student']
    assert (c['run'], c['n'], c['instance']) == ('label-seed0', 40, 'm5.4xlarge')
    assert 0 < c['usd_per_1k'] < z['usd_per_1k']                 # the student's predictions, timed and priced
    md = (tmp_path/'c'/'compare.md').read_text()
    assert '## The LLM itself as the classifier' in md and 'zero-shot: openai qwen (one pass, no seeds)' in md
    assert '$ per 1,000 predictions' in md and "label's kept student (1 seed)" in md and 'no seeds, no interval' in md
    assert '| zero-shot |' not in md.split('## The LLM')[0]        # not a seeded arm: no paired row, no verdict
    assert 'The LLM itself as the classifier' in (tmp_path/'c'/'compare.html').read_text()
    predictions = (tmp_path/'c'/'zero-shot'/'predictions.jsonl').read_text().splitlines()
    assert [json.loads(p)['text'] for p in predictions] == [r['text'] for r in test]   # the students' test rows


def test_zero_shot_dry_run_prices_one_pass(tmp_path, env, capsys):
    assert main([*flags(tmp_path, 'http://127.0.0.1:9/v1'), '--arms', 'label,zero-shot', '--seeds', '3',
                 '--dry-run']) == 0
    out = capsys.readouterr().out
    assert '| zero-shot | 1 | 40 |' in out and '| label | 3 | 24 |' in out      # one pass whatever the seeds
    assert 'zero-shot: one pass over the test rows' in out and 'computed, not billed' in out


def test_zero_shot_needs_an_llm_teacher(tmp_path, capsys):
    one_line_error(capsys, ['compare', '--arms', 'pgkd,zero-shot', '--out', tmp_path/'c'],
                   '--arms zero-shot', '--teacher simulated is no LLM', '--teacher anthropic', 'drop zero-shot')
    one_line_error(capsys, ['compare', '--arms', 'pgkd,zero-shot', '--dry-run'], '--arms zero-shot')
    assert not (tmp_path/'c').exists()                           # refused before anything ran


def test_cli_names_every_arm():
    assert BESIDE_ARMS == tuple(BESIDE)
