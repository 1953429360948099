"""Faults a user meets at the command line: your own --data named after its file everywhere and planned as the
file, one validation for `plan` and `run`, price flags for a model the table lacks, credentials in --base-url never
written, a broken response-cache entry asked again, and why validation loss (not accuracy) picks the kept step."""
import csv, json, random
from pathlib import Path

import pytest

from conftest import one_line_error
from test_teacher_servers import REQ, ROWS, FakeServer, openai_ok

from pgkd_nb.config import RunConfig
from pgkd_nb.prompt import build_prompt
from pgkd_nb.reply import rows_to_reply
from pgkd_nb.student import tiny_checkpoint
from pgkd_nb.teacher import make_teacher

N_CLASSES = 50
SECRET = 'hunter2-SECRET-9f1c'


def own_csv(path: Path, n_classes=N_CLASSES, per_class=8) -> Path:
    "A CSV of `n_classes` classes (`per_class` rows each), texts made of words that hint at the class."
    rng = random.Random(0)
    words = [f'w{i}' for i in range(400)]
    with open(path, 'w', newline='', encoding='utf-8') as f:
        w = csv.writer(f)
        w.writerow(['text', 'label'])
        for c in range(n_classes):
            for i in range(per_class):
                w.writerow([f"topic{c} {' '.join(rng.sample(words, 6))} item {i}", f'class_{c:02d}'])
    return path


def tiny_flags(tmp_path) -> list[str]:
    "A fast run: the tiny BERT in head mode, a few epochs, one KD step, quiet."
    return ['--preset', 'tiny', '--checkpoint', tiny_checkpoint(tmp_path/'tiny'), '--n-samples', '120',
            '--kd-steps', '1', '--gen-batch', '8', '--n-mined', '2', '--n-few-shot', '2', '--test-max', '40',
            '--student', f"cache_dir={tmp_path/'enc'}", 'mode=head', 'epochs=3', '--quiet']


# ---- 1. your own data is named after its file, and planned as the file ----------------------------------

def test_data_names_the_run_at_the_config_level():
    assert RunConfig(data='some/dir/own.csv').dataset == 'own'
    assert RunConfig(data='hf:org/news').dataset == 'org/news'
    assert RunConfig(data='own.jsonl.gz', name='news').dataset == 'news'
    assert RunConfig().dataset == 'huffpost_mini'


def test_plan_and_dry_run_price_the_file_not_the_demo(tmp_path, capsys):
    from pgkd_nb.cli import main
    data = own_csv(tmp_path/'own.csv')
    one_line_error(capsys, ['plan', '--data', data, '--kd-steps', '2'], 'more than the 320 training rows of own')
    flags = ['--data', str(data), '--n-samples', '200', '--kd-steps', '2']
    assert main(['plan', *flags, '--teacher', 'anthropic', '--local-count']) == 0
    out = capsys.readouterr().out
    assert f'plan: pgkd run --data {data} ({N_CLASSES} classes): 2 calls' in out, out
    assert 'huffpost_mini' not in out
    assert main(['run', *flags, '--dry-run']) == 0
    assert f'({N_CLASSES} classes)' in capsys.readouterr().out


def test_own_data_run_is_named_after_its_file(tmp_path, monkeypatch, capsys):
    from pgkd_nb.cli import main
    from pgkd_nb.report import write_report
    data = own_csv(tmp_path/'own.csv')
    monkeypatch.chdir(tmp_path)
    assert main(['run', '--data', str(data), *tiny_flags(tmp_path)]) == 0
    out = capsys.readouterr().out
    run = tmp_path/'runs'/'own-seed0'                                   # the default --out names the file
    s = json.loads((run/'summary.json').read_text())
    assert (s['dataset'], json.loads((run/'config.json').read_text())['dataset']) == ('own', 'own')
    assert len(s['labels']) == N_CLASSES and out.startswith('dataset own  seed 0')
    assert 'validation loss, not accuracy' in out                        # item 6: why the kept step is kept
    html = write_report(run).read_text(encoding='utf-8')
    assert 'huffpost_mini' not in html and 'own' in html


# ---- 2. one validation for plan and run; plan says when run would refuse -----------------------------------

@pytest.mark.parametrize('cmd', [['plan', '--local-count'], ['run', '--dry-run']])
def test_negative_budget_is_refused_by_plan_as_by_run(cmd, capsys):
    one_line_error(capsys, [*cmd, '--budget-usd', '-5'], '--budget-usd -5.0: must be 0 or more')


def test_plan_says_run_would_refuse_its_budget(capsys):
    from pgkd_nb.cli import main
    assert main(['plan', '--teacher', 'anthropic', '--budget-usd', '0', '--kd-steps', '2', '--local-count']) == 0
    out = capsys.readouterr().out
    assert 'pgkd run would refuse to start: budget $0.00' in out and 'Raise --budget-usd' in out, out
    assert main(['plan', '--teacher', 'anthropic', '--budget-usd', '100', '--kd-steps', '2', '--local-count']) == 0
    assert 'would refuse' not in capsys.readouterr().out


def test_seed_below_zero_names_its_flag(capsys):
    one_line_error(capsys, ['run', '--seed', '-1', '--dry-run'], '--seed -1: must be 0 or more')


# ---- 3. a model missing from the price table: price flags, named in the message -------------------------------

def test_unpriced_model_with_a_budget_names_the_price_flags(env, tmp_path, capsys):
    from pgkd_nb.cli import main
    one_line_error(capsys, ['run', '--teacher', 'openai', '--model', 'my-llm', '--base-url', 'http://127.0.0.1:9/v1',
                            '--budget-usd', '1', '--out', tmp_path/'r', '--quiet'],
                   "'my-llm'", '--price-in', '--price-out')
    assert not (tmp_path/'r'/'step-000').exists()                          # refused before training step 0
    assert main(['plan', '--teacher', 'openai', '--model', 'my-llm', '--budget-usd', '1', '--local-count']) == 0
    assert 'pgkd run would refuse to start' in (out := capsys.readouterr().out) and '--price-in' in out
    with pytest.raises(ValueError, match='--price-in and --price-out'):
        make_teacher('openai', model='my-llm', base_url='http://127.0.0.1:9/v1', budget_usd=1.0)


def test_price_flags_price_the_plan(capsys):
    from pgkd_nb.cli import main
    flags = ['plan', '--teacher', 'openai', '--model', 'my-llm', '--kd-steps', '2', '--local-count', '--json']
    assert main([*flags, '--price-in', '1', '--price-out', '5', '--budget-usd', '100']) == 0
    d = json.loads(capsys.readouterr().out)
    assert d['usd_list'] == pytest.approx(2*(d['prompt_tokens']*1 + d['reply_tokens']*5)/1e6) and not d['refused']
    one_line_error(capsys, [*flags, '--price-in', '1'], '--price-in 1.0 needs --price-out')
    one_line_error(capsys, [*flags, '--price-in', '-1', '--price-out', '5'], '--price-in -1.0: must be 0 or more')


def test_price_flags_price_a_run(env, tmp_path):
    "The run's teacher prices its calls with --price-in/--price-out (needs loop.build_teacher to pass them)."
    from pgkd_nb.cli import main
    with FakeServer([openai_ok(rows_to_reply(ROWS[:8]), usage=(1000, 2000))]) as srv:
        code = main(['run', '--teacher', 'openai', '--model', 'my-llm', '--base-url', srv.url + '/v1',
                     '--teacher-cache', str(tmp_path/'replies'), '--price-in', '1', '--price-out', '5',
                     '--budget-usd', '5', '--out', str(tmp_path/'r'), *tiny_flags(tmp_path)])
        assert code == 0 and len(srv.requests) == 1
    s = json.loads((tmp_path/'r'/'summary.json').read_text())
    assert s['teacher']['cost_usd'] == pytest.approx((1000*1 + 2000*5)/1e6)


# ---- 4. credentials in --base-url are used, never written ------------------------------------------------------

def test_redact_url():
    from pgkd_nb.config import redact_url
    assert redact_url(f'http://user:{SECRET}@127.0.0.1:8080/v1') == 'http://***@127.0.0.1:8080/v1'
    assert redact_url('https://api.openai.com/v1') == 'https://api.openai.com/v1'
    assert redact_url(None) is None


def test_credentials_in_base_url_are_never_written(env, tmp_path):
    from pgkd_nb.cli import main
    from pgkd_nb.report import write_report
    with FakeServer([openai_ok(rows_to_reply(ROWS[:8]))]) as srv:
        url = srv.url.replace('http://', f'http://user:{SECRET}@') + '/v1'
        code = main(['run', '--teacher', 'openai', '--model', 'qwen', '--base-url', url, '--out', str(tmp_path/'r'),
                     '--teacher-cache', str(tmp_path/'replies'), *tiny_flags(tmp_path)])
        assert code == 0 and len(srv.requests) == 1                       # the real URL was used for the request
    write_report(tmp_path/'r')
    written = [p for d in ('r', 'replies') for p in (tmp_path/d).rglob('*') if p.is_file()]
    assert any(p.name == 'config.json' for p in written) and any(p.parent.name == 'replies' for p in written)
    leaks = [str(p) for p in written if SECRET.encode() in p.read_bytes()]
    assert not leaks, leaks
    assert json.loads((tmp_path/'r'/'config.json').read_text())['teacher']['base_url'].startswith('http://***@127.0.0.1:')


# ---- 5. a broken response-cache entry is a miss: asked again, set aside, one notice -----------------------------

@pytest.mark.parametrize('bad', ['', '{"raw": "[]", "usa', '{"raw": "[]"}', '[1, 2]'],
                         ids=['empty', 'truncated', 'no-usage', 'not-an-object'])
def test_broken_cache_entry_is_asked_again(env, tmp_path, capsys, bad):
    with FakeServer([openai_ok(rows_to_reply(ROWS))]) as srv:
        t = make_teacher('openai', model='qwen', base_url=srv.url + '/v1', cache_dir=tmp_path/'c', max_retries=0)
        key, _ = t.cache_key(build_prompt(REQ), REQ)
        t.cache.path(key).parent.mkdir(parents=True)
        t.cache.path(key).write_text(bad, encoding='utf-8')
        capsys.readouterr()
        r = t.generate(REQ)
        assert (r.cached, r.rows, len(srv.requests)) == (False, ROWS, 1)
    err = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
    assert len(err) == 1 and 'set aside' in err[0] and key in err[0], err
    aside = list((tmp_path/'c').glob(f'{key}.json.bad*'))
    assert len(aside) == 1 and aside[0].read_text(encoding='utf-8') == bad          # kept, not deleted
    assert t.generate(REQ).cached and len(t.cache) == 1                             # the new answer is cached


# ---- 6. why validation loss, not accuracy, picks the kept step --------------------------------------------------

def test_demo_epilogue_says_why_loss_picks_the_step():
    from pgkd_nb.cli import demo_epilogue
    s = {'baseline': {'accuracy': 0.40}, 'pgkd': {'accuracy': 0.41}, 'n_test': 500, 'best_step': 2,
         'steps': [{'step': 0, 'val_loss': 2.0, 'val_accuracy': 0.45}, {'step': 1, 'val_loss': 1.9, 'val_accuracy': 0.44},
                   {'step': 2, 'val_loss': 1.8, 'val_accuracy': 0.43}]}
    e = demo_epilogue(s, 'runs/demo')
    assert 'validation loss, not accuracy' in e and "Algorithm 1" in e, e
    assert "validation accuracy 0.4300 is below step 0's 0.4500" in e, e
