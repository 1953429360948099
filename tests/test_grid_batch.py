"""A reproduction grid with an LLM teacher, against a fake Anthropic server on 127.0.0.1 driven by the real SDK:
lock-step Message Batches (step i of every run in one batch, at half the price), a driver killed while a batch
is in flight that re-attaches instead of paying again, concurrent per-request calls (bounded, through a 429),
and one budget for the whole grid. Nothing leaves loopback.
"""
import hashlib, json, time

import pytest

import pgkd_nb.batches as batches
from test_economy import FakeAnthropic, fake_tokens, text_of, TASK
from pgkd_nb.data import DEMO_TASK
from pgkd_nb.config import GridConfig
from pgkd_nb.grid import GridError, RunSpec, run_missing
from pgkd_nb.reply import rows_to_reply
from pgkd_nb.costs import BudgetExceeded, call_cost

SMOKE = dict(preset='tiny', checkpoint='tiny', kd_steps=2, patience=5, gen_batch=8, n_mined=4, n_few_shot=4,
             test_max=200, pool_max=1000, student={'mode': 'head', 'epochs': 10, 'lr': 1e-2, 'patience': 2,
                                                   'progress': False})
MODEL = 'claude-sonnet-5-5'
SPECS = [RunSpec(DEMO_TASK, seed, 'pgkd', 120) for seed in (0, 1, 2)]
STEP_KEYS = ('step', 'n_accepted', 'n_rejected', 'val_loss', 'val_accuracy')


class FakePGKD(FakeAnthropic):
    "The fake Anthropic API answering PGKD prompts: eight new rows a request, the same rows for the same prompt."
    def __init__(self, delay=0.0, **kw):
        super().__init__(**kw)
        self.delay, self.active, self.most_active = delay, 0, 0

    def message(self, body):
        with self.lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        time.sleep(self.delay)
        try: return super().message(body)
        finally:
            with self.lock: self.active -= 1

    def reply(self, body) -> dict:
        text = text_of(body)
        h = hashlib.sha256(text.encode()).hexdigest()[:10]
        rows = [{'text': f'made-up story {h}-{k} about {lab.lower()} and more', 'label': lab}
                for k, lab in enumerate(TASK.labels[:8])]
        raw = rows_to_reply(rows)
        return {'id': 'msg_x', 'type': 'message', 'role': 'assistant', 'model': body.get('model', MODEL),
                'content': [{'type': 'text', 'text': raw}], 'stop_reason': 'end_turn', 'stop_sequence': None,
                'usage': {'input_tokens': fake_tokens(text), 'output_tokens': fake_tokens(raw)}}


def settings(srv, tmp_path, name):
    return {**SMOKE, 'teacher': 'anthropic', 'teacher_model': MODEL, 'base_url': srv.url, 'timeout': 10,
            'max_retries': 2, 'teacher_cache': str(tmp_path/name/'cache'), 'runs_dir': str(tmp_path/name/'runs')}


def steps(summary): return [{k: r[k] for k in STEP_KEYS} for r in summary['steps']]


@pytest.fixture
def fast_polls(monkeypatch):
    monkeypatch.setattr(batches, 'POLL_FIRST_S', 0.01)
    monkeypatch.setattr(batches, 'POLL_MOST_S', 0.02)


def test_lockstep_sends_step_i_of_every_run_as_one_batch(env, tmp_path, fast_polls):
    with FakePGKD() as srv:
        s = settings(srv, tmp_path, 'batch')
        got = run_missing(SPECS, s, GridConfig(batch=True), log=lambda m: None)
    creates = srv.paths('/v1/messages/batches')
    creates = [r for r in creates if r['body'] is not None and 'requests' in (r['body'] or {})]
    assert not srv.paths('/v1/messages/count') and not [r for r in srv.requests if r['path'] == '/v1/messages']
    assert [len(c['body']['requests']) for c in creates] == [3, 3]          # 2 KD steps × 3 runs: 2 batches
    assert [r['custom_id'] for r in creates[0]['body']['requests']] == [
        f'{DEMO_TASK}-n120-pgkd-seed{i}-s1' for i in (0, 1, 2)]
    for sp in SPECS:
        for i in (1, 2):
            rec = json.loads((sp.path(s['runs_dir'])/f'step-00{i}'/'step.json').read_text())
            assert rec['n_accepted'] == 8 and not rec['cached']
            assert rec['cost_usd'] == pytest.approx(call_cost(rec['usage'], MODEL)/2)   # the batch price
        assert got[sp]['teacher']['calls'] == 2 and not got[sp]['teacher']['simulated']
    assert not (tmp_path/'batch'/'runs'/'batches'/'batch.json').exists()               # consumed

    with FakePGKD(delay=0.2, fail_first=429) as srv2:                   # the same grid, per request, 2 at a time
        got2 = run_missing(SPECS, settings(srv2, tmp_path, 'calls'), GridConfig(concurrency=2), log=lambda m: None)
    assert len([r for r in srv2.requests if r['path'] == '/v1/messages']) == 7          # 6 calls and one 429
    assert 1 <= srv2.most_active <= 2                                                   # bounded
    for sp in SPECS:                                                  # same answers: the same runs, at list price
        assert steps(got2[sp]) == steps(got[sp]) and got2[sp]['pgkd'] == got[sp]['pgkd']
        assert got2[sp]['teacher']['cost_usd'] == pytest.approx(2*got[sp]['teacher']['cost_usd'])


def test_a_killed_grid_reattaches_to_the_batch_in_flight(env, tmp_path, fast_polls, monkeypatch):
    real_wait = batches.wait_for_batch

    def killed(client, batch_id, progress=True):
        client.messages.batches.retrieve(batch_id)
        raise ConnectionError('driver killed while polling')

    with FakePGKD(polls=3) as srv:
        s = settings(srv, tmp_path, 'g')
        monkeypatch.setattr(batches, 'wait_for_batch', killed)
        with pytest.raises(GridError, match='3 of 3 runs failed: .*driver killed while polling'):
            run_missing(SPECS, s, GridConfig(batch=True), log=lambda m: None)
        state = json.loads((tmp_path/'g'/'runs'/'batches'/'batch.json').read_text())
        assert state['id'] == 'msgbatch_001' and len(state['custom_ids']) == 3            # written before polling
        monkeypatch.setattr(batches, 'wait_for_batch', real_wait)
        got = run_missing(SPECS, s, GridConfig(batch=True), log=lambda m: None)                       # started again
    creates = [r for r in srv.requests if r['path'] == '/v1/messages/batches']
    assert len(creates) == 2                                    # step 1 re-attached to msgbatch_001, step 2 is new
    assert all(len(got[sp]['steps']) == 3 for sp in SPECS)


def test_one_budget_for_the_grid_refuses_before_any_request(env, tmp_path, fast_polls):
    with FakePGKD() as srv:
        s = settings(srv, tmp_path, 'b')
        with pytest.raises(BudgetExceeded, match=r"grid budget \$0.01: \$0.0000 spent.*3 runs have left"):
            run_missing(SPECS, s, GridConfig(batch=True, grid_budget_usd=0.01), log=lambda m: None)
        assert srv.requests == []
        run_missing(SPECS[:1], s, GridConfig(batch=True, grid_budget_usd=1.0), log=lambda m: None)    # one run fits and spends
        spent = json.loads((SPECS[0].path(s['runs_dir'])/'summary.json').read_text())['teacher']['cost_usd']
        assert spent > 0
        with pytest.raises(BudgetExceeded, match=rf"grid budget \$0.03: \${spent:.4f} spent"):
            run_missing(SPECS, s, GridConfig(batch=True, grid_budget_usd=0.03), log=lambda m: None)   # the spend is the grid's


def test_pgkd_reproduce_batch_with_an_llm_teacher(env, tmp_path):
    "The README's command: `pgkd reproduce --teacher anthropic --batch` (papermill, a kernel of its own)."
    from pgkd_nb.cli import main
    with FakePGKD(polls=0) as srv:
        rc = main(['reproduce', '--grid', 'smoke', '--only', 'table2', '--out', str(tmp_path/'reports'),
                   '--runs', str(tmp_path/'runs'), '--teacher', 'anthropic', '--teacher-model', MODEL,
                   '--base-url', srv.url, '--teacher-cache', str(tmp_path/'cache'), '--batch',
                   '--grid-budget-usd', '1'])
    assert rc == 0
    creates = [r for r in srv.requests if r['path'] == '/v1/messages/batches']
    assert [len(c["body"]["requests"]) for c in creates] == [2, 200]   # 2 seeds × 1 KD step; zero-shot on 200 rows
    md = (tmp_path/'reports'/'smoke'/'table2.md').read_text()
    assert f'teacher: anthropic ({MODEL}); prompt wording: paper' in md and 'SIMULATED' not in md
    prompt = (tmp_path/'runs'/DEMO_TASK/'n120'/'pgkd'/'seed0'/'step-001'/'prompt.txt').read_text()
    assert prompt.startswith('You are a Teacher model for a Student LM')                  # Appendix A.1's words


def test_dry_runs_price_before_anything_runs(env, tmp_path, capsys):
    "`pgkd run --dry-run` prints the plan and trains nothing; `pgkd reproduce --dry-run` prices the missing runs."
    from pgkd_nb.cli import main
    assert main(['run', '--dataset', DEMO_TASK, '--teacher', 'anthropic', '--base-url', 'http://127.0.0.1:9',
                 '--out', str(tmp_path/'run'), '--dry-run']) == 0
    out = capsys.readouterr().out
    assert out.startswith(f'plan: pgkd run --dataset {DEMO_TASK}') and not (tmp_path/'run').exists()
    assert main(['reproduce', '--grid', 'smoke', '--only', 'table2', '--runs', str(tmp_path/'runs'),
                 '--teacher', 'anthropic', '--dry-run']) == 0
    out = capsys.readouterr().out
    assert 'plan: pgkd reproduce --grid smoke (table2): 2 runs to go, teacher anthropic' in out
    assert "Table 2's zero-shot column" in out and 'with --batch' in out
    assert not list((tmp_path/'runs').glob(f'{DEMO_TASK}/**/config.json'))   # no run started (smoke's tiny BERT only)
