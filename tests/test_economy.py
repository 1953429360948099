"""The economy of a real teacher against a fake Anthropic server on 127.0.0.1, driven by the real `anthropic` SDK:
prompt-cache usage, the token-counting endpoint behind `plan`, Message Batches (create, retrieve, results as
JSON Lines, cancel; expired and errored requests; a killed process that re-attaches), and concurrent calls
with a 429 on the way. Nothing leaves loopback.
"""
import http.server, json, random, threading

import pytest

from test_teacher_servers import send
import pgkd_nb.batches as batches
from pgkd_nb.batches import cancel_batch
from pgkd_nb.config import GridConfig, RunConfig, TeacherConfig
from pgkd_nb.data import DEMO_TASK, load_task, stable_subsample
from pgkd_nb.plan import check_plan_budget, format_plan, plan_run, _usd
from pgkd_nb.prompt import zero_shot_prefix, zero_shot_prompt
from pgkd_nb.costs import BudgetExceeded
from pgkd_nb.teacher import make_teacher
from pgkd_nb.zeroshot import ZeroShotConfig, read_predictions, run_zero_shot

TASK = load_task(DEMO_TASK)
SMALL = type(TASK)(TASK.name, TASK.labels, TASK.train, TASK.test[:6])
BATCHED = ZeroShotConfig(DEMO_TASK, batch=True)        # the zero-shot run of the demo task, as one Message Batch
GOLD = {r['text']: r['label'] for r in TASK.test}


def fake_tokens(text) -> int:
    "The fake server's tokenizer: one token per 3 UTF-8 bytes, rounded up (not the local estimate's 4 characters)."
    return -(-len(text.encode()) // 3)


class FakeAnthropic:
    """A stateful fake of the Anthropic API: messages (zero-shot answers with prompt-cache usage), count_tokens,
    and message batches. `fail_first` answers the first messages call with this status; `expire` and `error`
    are custom ids the batch does not answer; `polls` is how many retrieves see the batch in progress."""
    def __init__(self, fail_first=None, expire=(), error=(), polls=1, single_status=None):
        self.requests, self.batches, self.cached = [], {}, set()
        self.fail_first, self.expire, self.error, self.polls = fail_first, set(expire), set(error), polls
        self.single_status = single_status or {}
        self.lock = threading.Lock()
        fake = self
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get('content-length', 0))) or b'{}')
                self.answer(*fake.post(self.path, body))
            def do_GET(self): self.answer(*fake.get(self.path))
            def answer(self, status, payload, headers=None, jsonl=False):
                if jsonl: send(self, status, payload.encode(), headers, 'application/binary')
                else: send(self, status, json.dumps(payload).encode(), headers)
            def log_message(self, *a): pass
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.httpd.server_port}'

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- the endpoints --
    def post(self, path, body):
        with self.lock: self.requests.append({'path': path, 'body': body})
        if path == '/v1/messages/count_tokens': return 200, {'input_tokens': fake_tokens(text_of(body))}
        if path == '/v1/messages': return self.message(body)
        if path == '/v1/messages/batches': return self.create(body)
        if path.endswith('/cancel'):
            b = self.batches[path.split('/')[-2]]
            b['canceled'] = True
            return 200, self.batch_object(b['id'])
        return 404, {'type': 'error', 'error': {'type': 'not_found_error', 'message': path}}

    def get(self, path):
        with self.lock: self.requests.append({'path': path, 'body': None})
        parts = path.split('?')[0].split('/')
        if parts[-1] == 'results': return 200, self.results(parts[-2]), None, True
        self.batches[parts[-1]]['retrieved'] += 1
        return 200, self.batch_object(parts[-1])

    def message(self, body):
        with self.lock:
            first_call, self.fail_first = self.fail_first, None
        if first_call:
            return first_call, {'type': 'error', 'error': {'type': 'rate_limit_error', 'message': 'slow down'}}, \
                {'retry-after-ms': '1'}
        text = text_of(body)
        status = self.single_status.get(next((t for t in GOLD if text.endswith(t)), None))
        if status: return status, {'type': 'error', 'error': {'type': 'invalid_request_error', 'message': 'no'}}
        return 200, self.reply(body)

    def reply(self, body) -> dict:
        "The answer to one Messages request: the gold class of its text, with prompt-cache usage."
        content = body['messages'][0]['content']
        blocks = [{'text': content}] if isinstance(content, str) else content
        cached = [b['text'] for b in blocks if b.get('cache_control')]
        write = sum(fake_tokens(t) for t in cached if t not in self.cached)
        read = sum(fake_tokens(t) for t in cached if t in self.cached)
        self.cached.update(cached)
        text = ''.join(b['text'] for b in blocks)
        label = next((GOLD[t] for t in GOLD if text.endswith(t)), None)
        answer = json.dumps({'class_label': TASK.labels.index(label), 'class_names': label})
        usage = {'input_tokens': fake_tokens(text) - write - read, 'output_tokens': 12,
                 'cache_creation_input_tokens': write, 'cache_read_input_tokens': read}
        return {'id': 'msg_x', 'type': 'message', 'role': 'assistant', 'model': body.get('model', 'm'),
                'content': [{'type': 'text', 'text': answer}], 'stop_reason': 'end_turn', 'stop_sequence': None,
                'usage': usage}

    def create(self, body):
        bid = f'msgbatch_{len(self.batches) + 1:03d}'
        self.batches[bid] = {'id': bid, 'requests': body['requests'], 'retrieved': 0, 'canceled': False}
        return 200, self.batch_object(bid)

    def batch_object(self, bid) -> dict:
        b = self.batches[bid]
        ended = b['retrieved'] > self.polls or b['canceled']
        n = len(b['requests'])
        counts = {'processing': 0 if ended else n, 'succeeded': n - len(self.expire) - len(self.error) if ended else 0,
                  'errored': len(self.error) if ended else 0, 'canceled': 0, 'expired': len(self.expire) if ended else 0}
        return {'id': bid, 'type': 'message_batch', 'processing_status': 'ended' if ended else 'in_progress',
                'request_counts': counts, 'created_at': '2026-11-25T00:00:00Z', 'expires_at': '2026-11-26T00:00:00Z',
                'ended_at': '2026-11-25T00:10:00Z' if ended else None, 'archived_at': None,
                'cancel_initiated_at': None,
                'results_url': f'{self.url}/v1/messages/batches/{bid}/results' if ended else None}

    def results(self, bid) -> str:
        "The batch's results as JSON Lines, shuffled (results come in no fixed order)."
        lines = []
        for r in self.batches[bid]['requests']:
            cid = r['custom_id']
            if cid in self.expire: res = {'type': 'expired'}
            elif cid in self.error:
                res = {'type': 'errored', 'error': {'type': 'error', 'error': {'type': 'api_error', 'message': 'x'}}}
            else:
                with self.lock: res = {'type': 'succeeded', 'message': self.reply(r['params'])}
            lines.append(json.dumps({'custom_id': cid, 'result': res}))
        random.Random(0).shuffle(lines)
        return '\n'.join(lines) + '\n'

    def paths(self, prefix): return [r for r in self.requests if r['path'].startswith(prefix)]


def text_of(body) -> str:
    content = body['messages'][0]['content']
    return content if isinstance(content, str) else ''.join(b['text'] for b in content)


def teacher(srv, **kw): return make_teacher('anthropic', base_url=srv.url, timeout=10, max_retries=2, **kw)


@pytest.fixture
def fast_polls(monkeypatch):
    monkeypatch.setattr(batches, 'POLL_FIRST_S', 0.01)
    monkeypatch.setattr(batches, 'POLL_MOST_S', 0.02)


# ---- Message Batches -------------------------------------------------------------------------------------

def test_zero_shot_batch_matches_by_custom_id_at_half_price(env, tmp_path, fast_polls, capsys):
    with FakeAnthropic(polls=2) as srv:
        t = teacher(srv, cache_dir=tmp_path/'cache', max_tokens=50)
        s = run_zero_shot(t, BATCHED, tmp_path/'run', task=SMALL)
    (create,) = srv.paths('/v1/messages/batches')[:1]
    sent = create['body']['requests']
    assert [r['custom_id'] for r in sent] == [f'text-{i}' for i in range(6)]
    first = sent[0]['params']['messages'][0]['content'][0]
    assert first == {'type': 'text', 'text': zero_shot_prefix(TASK.labels), 'cache_control': {'type': 'ephemeral'}}
    preds = read_predictions(tmp_path/'run'/'predictions.jsonl')
    assert [p['pred'] for p in preds] == [r['label'] for r in SMALL.test]      # shuffled results, matched by id
    assert [p['i'] for p in preds] == list(range(6)) and s['zero_shot']['accuracy'] == 1.0
    prefix, n = fake_tokens(zero_shot_prefix(TASK.labels)), 6
    texts = [zero_shot_prompt(TASK.labels, r['text']) for r in SMALL.test]
    full = sum((fake_tokens(x) - prefix)*2.0 + 12*10.0 for x in texts) + prefix*2.5 + (n - 1)*prefix*0.2
    assert s['teacher']['cost_usd'] == pytest.approx(full/2e6, abs=1e-6)      # batch: half of list, cache included
    assert s['teacher']['cache_write_tokens'] == prefix and s['teacher']['cache_read_tokens'] == (n - 1)*prefix
    assert not (tmp_path/'run'/'batch.json').exists()                         # consumed
    err = capsys.readouterr().err
    assert 'batch msgbatch_001: in_progress; 0 succeeded' in err and 'batch msgbatch_001: ended; 6 succeeded' in err
    # the same command again: every answer from the response cache, nothing sent
    before = len(srv.requests)
    t2 = teacher(srv, cache_dir=tmp_path/'cache', max_tokens=50)
    run_zero_shot(t2, BATCHED, tmp_path/'again', task=SMALL, progress=False)
    assert len(srv.requests) == before and t2.ledger.cached == 6 and t2.ledger.cost_usd == 0.0


def test_expired_and_errored_requests_are_retried_once_then_reported(env, tmp_path, fast_polls):
    bad = SMALL.test[4]['text']
    with FakeAnthropic(expire={'text-1', 'text-4'}, error={'text-2'}, single_status={bad: 400}) as srv:
        t = teacher(srv, max_tokens=50)
        s = run_zero_shot(t, BATCHED, tmp_path/'run', task=SMALL, progress=False)
    singles = srv.paths('/v1/messages')
    singles = [r for r in singles if r['path'] == '/v1/messages']
    assert sorted(text_of(r['body'])[-20:] for r in singles) == sorted(SMALL.test[i]['text'][-20:] for i in (1, 2, 4))
    preds = read_predictions(tmp_path/'run'/'predictions.jsonl')
    assert [p['pred'] for p in preds] == [r['label'] for r in SMALL.test[:4]] + [None, SMALL.test[5]['label']]
    assert preds[4]['error'].startswith('batch: expired; single call: anthropic teacher') and s['errors'] == 1
    assert s['unparsed'] == 1 and s['teacher']['calls'] == 5


def test_a_killed_run_reattaches_instead_of_paying_again(env, tmp_path, fast_polls, monkeypatch):
    real_wait = batches.wait_for_batch
    def killed(client, batch_id, progress=True):
        client.messages.batches.retrieve(batch_id)
        raise KeyboardInterrupt                                               # the process dies while polling
    with FakeAnthropic(polls=3) as srv:
        monkeypatch.setattr(batches, 'wait_for_batch', killed)
        with pytest.raises(KeyboardInterrupt):
            run_zero_shot(teacher(srv, max_tokens=50), BATCHED, tmp_path/'run', task=SMALL)
        state = json.loads((tmp_path/'run'/'batch.json').read_text())
        assert state['id'] == 'msgbatch_001' and len(state['custom_ids']) == 6   # written before polling
        monkeypatch.setattr(batches, 'wait_for_batch', real_wait)
        s = run_zero_shot(teacher(srv, max_tokens=50), BATCHED, tmp_path/'run', task=SMALL,
                          progress=False)
    assert len(srv.paths('/v1/messages/batches')) - len(srv.paths('/v1/messages/batches/')) == 1   # one create
    assert s['n_test'] == 6 and s['zero_shot']['accuracy'] == 1.0


def test_a_batch_is_submitted_only_if_its_worst_case_fits(env, tmp_path, fast_polls):
    with FakeAnthropic() as srv:
        t = teacher(srv, max_tokens=2000, budget_usd=0.02)        # 6 × 2000 output tokens at half price ≈ $0.06
        with pytest.raises(BudgetExceeded, match=r'a batch of 6 claude-sonnet-5-5 requests could cost up to'):
            run_zero_shot(t, BATCHED, tmp_path/'run', task=SMALL)
    assert srv.requests == [] and not (tmp_path/'run'/'batch.json').exists()


def test_cancel_stops_the_batch_in_flight(env, tmp_path):
    with FakeAnthropic(polls=100) as srv:
        t = teacher(srv)
        bid = batches.submit_or_attach(t, [batches.batch_request(t, 'text-0', 'hi', None)], tmp_path/'b.json', ['hi'])
        assert cancel_batch(t, tmp_path/'b.json') == bid and srv.batches[bid]['canceled']
        assert t.client.messages.batches.retrieve(bid).processing_status == 'ended'
    assert cancel_batch(t, tmp_path/'none.json') is None


# ---- concurrency -----------------------------------------------------------------------------------------

def test_concurrent_zero_shot_survives_a_429_and_writes_in_order(env, tmp_path):
    rows = type(TASK)(TASK.name, TASK.labels, TASK.train, TASK.test[:12])
    with FakeAnthropic(fail_first=429) as srv:
        t = teacher(srv, max_tokens=50)
        s = run_zero_shot(t, ZeroShotConfig(DEMO_TASK, concurrency=4), tmp_path/'run', task=rows, progress=False)
    preds = read_predictions(tmp_path/'run'/'predictions.jsonl')
    assert [p['i'] for p in preds] == list(range(12)) and [p['pred'] for p in preds] == [r['label'] for r in rows.test]
    assert len(srv.requests) == 13 and t.ledger.calls == 12 and t.ledger.failed == 0   # one 429, retried once
    assert s['teacher']['calls'] == 12


# ---- plan ------------------------------------------------------------------------------------------------

def test_plan_counts_with_the_count_tokens_endpoint_and_prints_its_numbers(env, tmp_path):
    with FakeAnthropic() as srv:
        cfg = RunConfig(dataset=DEMO_TASK, teacher=TeacherConfig('anthropic', base_url=srv.url), kd_steps=7)
        d = plan_run(cfg)
    counted = [text_of(r['body']) for r in srv.paths('/v1/messages/count_tokens')]
    assert len(counted) == 2 and counted[0].startswith(counted[1])          # the prompt, then its fixed start
    assert (d['prompt_tokens'], d['prefix_tokens']) == (fake_tokens(counted[0]), fake_tokens(counted[1]))
    assert d['counted_by'] == f'anthropic count_tokens endpoint ({srv.url})'
    assert d['input_tokens'] == 7*d['prompt_tokens'] and d['output_tokens'] == 7*d['reply_tokens']
    assert d['usd_list'] == pytest.approx(7*(d['prompt_tokens']*2.0 + d['reply_tokens']*10.0)/1e6)
    assert d['usd_batch'] == pytest.approx(d['usd_list']/2)
    txt = format_plan(d)
    for what, key in [('list price', 'usd_list'), ('with prompt caching', 'usd_cache'), ('caching + batches', 'usd_both')]:
        assert f"| {what} | {d['input_tokens']:,} | {d['output_tokens']:,} | {_usd(d[key])} |" in txt
    assert f"prompt ≈ {d['prompt_tokens']:,} tokens a call, its first {d['prefix_tokens']:,}" in txt


def test_plan_falls_back_to_the_local_estimate_when_the_endpoint_fails(env):
    cfg = RunConfig(dataset=DEMO_TASK, teacher=TeacherConfig('anthropic', base_url='http://127.0.0.1:9', timeout=1), kd_steps=2)
    d = plan_run(cfg)
    assert d['counted_by'].startswith('local estimate (') and 'count_tokens endpoint failed: APIConnectionError' in d['counted_by']


def test_budget_refuses_a_run_whose_plan_does_not_fit(env):
    cfg = RunConfig(dataset=DEMO_TASK, teacher=TeacherConfig('anthropic', budget_usd=0.25), kd_steps=10)
    with pytest.raises(BudgetExceeded, match=r"budget \$0.25: \$0.0000 spent, and the plan's upper bound for 10 more"):
        check_plan_budget(cfg)
    assert check_plan_budget(RunConfig(**{**cfg.__dict__, 'kd_steps': 2}))['calls'] == 2


def test_zero_shot_test_subsample_is_what_the_batch_sends(env, tmp_path, fast_polls):
    with FakeAnthropic() as srv:
        run_zero_shot(teacher(srv, max_tokens=50), ZeroShotConfig(DEMO_TASK, test_max=5, batch=True), tmp_path/'run',
                      progress=False)
    sent = srv.paths('/v1/messages/batches')[0]['body']['requests']
    assert [text_of(r['params']) for r in sent] == [zero_shot_prompt(TASK.labels, r['text'])
                                                    for r in stable_subsample(TASK.test, 5)]


def write_wide_run(root, seed, n_steps, labels):
    "A Table 2 run record as the loop writes it: config, step 0 (no prompt) and `n_steps` KD steps' prompt and reply."
    from pgkd_nb.prompt import PGKDRequest, build_prompt
    from pgkd_nb.records import write_json
    from pgkd_nb.reply import rows_to_reply
    out = root/'wide'/'n1000'/'pgkd'/f'seed{seed}'
    (out/'step-000').mkdir(parents=True)
    write_json(out/'config.json', {'dataset': 'wide', 'seed': seed, 'prompt': 'kit'})
    rows = [{'text': f'review {i} of seed {seed}', 'label': labels[i]} for i in range(32)]
    steps = []
    for i in range(1, n_steps + 1):
        prompt = build_prompt(PGKDRequest(task='wide', labels=labels, few_shot=rows[:i*4], step=i))
        reply = rows_to_reply(rows[:10*i])
        (out/f'step-{i:03d}').mkdir()
        (out/f'step-{i:03d}'/'prompt.txt').write_text(prompt, encoding='utf-8')
        (out/f'step-{i:03d}'/'reply.txt').write_text(reply, encoding='utf-8')
        steps.append((prompt, reply))
    return steps


def test_grid_costs_price_the_recorded_prompts_and_cache_a_long_label_list(tmp_path):
    from pgkd_nb.spend import format_costs, grid_costs
    from pgkd_nb.prompt import PGKDRequest, count_tokens
    from pgkd_nb.costs import call_cost
    labels = [f'category {i} of a long product taxonomy, with a descriptive name' for i in range(400)]
    runs = {0: write_wide_run(tmp_path, 0, 3, labels), 1: write_wide_run(tmp_path, 1, 2, labels)}
    g = grid_costs(GridConfig(datasets=['wide'], seeds=[0, 1, 2], runs_dir=tmp_path), zero_shot=False)
    assert g['missing'] == ['wide seed 2'] and [r['steps'] for r in g['runs']] == [3, 2]
    prefix = count_tokens(PGKDRequest(task='wide', labels=labels, few_shot=[]).cache_prefix)
    assert prefix > 1024 and g['grid']['anthropic']['wide']['prefix_tokens'] == prefix
    cost = lambda **u: call_cost(u, 'claude-sonnet-5-5')
    calls = [(count_tokens(p), count_tokens(r)) for steps in runs.values() for p, r in steps]
    rest = sum(cost(input_tokens=p - prefix, output_tokens=o) for p, o in calls)
    write, read = cost(cache_creation_input_tokens=prefix), cost(cache_read_input_tokens=prefix)
    row = g['grid']['anthropic']['wide']
    assert row['calls'] == 5 and row['input_tokens'] == sum(p for p, _ in calls)
    assert row['usd_list'] == pytest.approx(sum(cost(input_tokens=p, output_tokens=o) for p, o in calls))
    assert row['usd_cache'] == pytest.approx(rest + 2*write + 3*read)          # each run: one write, then reads
    assert row['usd_both'] == pytest.approx(0.5*(rest + 2*write + 3*read))
    alone = cost(input_tokens=prefix)                                           # a lone call is cheaper uncached
    assert row['usd_lockstep'] == pytest.approx(0.5*(rest + 2*write + 2*read + alone))  # batches of 2, 2 and 1 calls
    bedrock = g['grid']['bedrock']['total']
    assert bedrock['usd_cache'] == bedrock['usd_list'] and bedrock['share_lockstep'] == pytest.approx(0.5)
    assert 'total 50.0% — met' in format_costs(g) and 'no cache rates' in format_costs(g)
