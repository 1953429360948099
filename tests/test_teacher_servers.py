"""The LLM teachers against fake servers on 127.0.0.1, driven by the real `anthropic` and `openai` SDK clients.

Each test scripts the answers a server gives (status, JSON body, headers), runs a teacher against it and checks
what the teacher returns, what it sent, what it cached and what it counted as spent. Nothing leaves loopback.
"""
import http.server, json, threading, time

import pytest

from conftest import KEY          # the fake key the `env` fixture sets: it must never be written anywhere

from pgkd_nb.data import load_task, DEMO_TASK
from pgkd_nb.prompt import PGKDRequest, build_prompt
from pgkd_nb.reply import rows_to_reply
from pgkd_nb.costs import BudgetExceeded, TeacherError, prompt_token_bound
from pgkd_nb.teacher import CacheMiss, make_teacher

TASK = load_task(DEMO_TASK)
ROWS = TASK.train[100:132]                   # real labelled rows as the teacher's answer
REQ = PGKDRequest(task=TASK.name, labels=TASK.labels, few_shot=TASK.train[:16], n=32, seed=3)
FAST = dict(max_retries=2, timeout=10)


# ---- fake servers ----------------------------------------------------------------------------------------

def anthropic_ok(text, usage=(1200, 800), stop='end_turn', cache=None):
    "A Messages API answer; `cache` = (cache_creation_input_tokens, cache_read_input_tokens) adds prompt-cache usage."
    u = {'input_tokens': usage[0], 'output_tokens': usage[1]}
    if cache: u.update(cache_creation_input_tokens=cache[0], cache_read_input_tokens=cache[1])
    return 200, {'id': 'msg_test', 'type': 'message', 'role': 'assistant', 'model': 'claude-sonnet-5-5',
                 'content': [{'type': 'text', 'text': text}], 'stop_reason': stop, 'stop_sequence': None, 'usage': u}, {}

def sent_text(body) -> str:
    "The user turn's text of a Messages API request body, whether a string or text blocks."
    content = body['messages'][0]['content']
    return content if isinstance(content, str) else ''.join(b['text'] for b in content)

def openai_ok(text, usage=(900, 700)):
    body = {'id': 'chatcmpl-test', 'object': 'chat.completion', 'created': 0, 'model': 'qwen',
            'choices': [{'index': 0, 'finish_reason': 'stop', 'message': {'role': 'assistant', 'content': text}}]}
    if usage: body['usage'] = {'prompt_tokens': usage[0], 'completion_tokens': usage[1], 'total_tokens': sum(usage)}
    return 200, body, {}

def hang(seconds):
    "No answer for `seconds` (longer than the client's timeout), then the connection closes."
    return 'hang', seconds, {}

def error(status, kind='api_error'):
    "An error answer that asks for a 1 ms wait before the retry (keeps the SDK's backoff out of the tests)."
    return status, {'type': 'error', 'error': {'type': kind, 'message': f'scripted {status}'}}, {'retry-after-ms': '1'}


def send(handler, status, data: bytes, headers=None, kind='application/json'):
    "Answer the request `handler` serves with `status`, body `data` and `headers`."
    handler.send_response(status)
    for k, v in {'content-type': kind, 'content-length': str(len(data)), **(headers or {})}.items():
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(data)


class FakeServer:
    """A threaded HTTP server on a free loopback port that gives scripted answers and records the requests.

    An answer is (status, JSON body, headers), `hang(seconds)`, or a function of the request giving one."""
    def __init__(self, answers):
        self.answers, self.requests = list(answers), []
        server = self
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get('content-length', 0)))
                server.requests.append({'path': self.path, 'headers': {k.lower(): v for k, v in self.headers.items()}, 'body': json.loads(body or b'{}')})
                answer = server.answers.pop(0) if server.answers else error(500)
                status, payload, headers = answer(server.requests[-1]) if callable(answer) else answer
                if status == 'hang':
                    time.sleep(payload)
                    return
                send(self, status, json.dumps(payload).encode(), headers)
            def log_message(self, *a): pass
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.httpd.server_port}'
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)



def anthropic_teacher(srv, **kw): return make_teacher('anthropic', base_url=srv.url, **FAST, **kw)
def openai_teacher(srv, **kw): return make_teacher('openai', model='qwen', base_url=srv.url + '/v1', **FAST, **kw)


# ---- Anthropic Messages API ------------------------------------------------------------------------------

def test_anthropic_good_reply(env):
    with FakeServer([anthropic_ok(rows_to_reply(ROWS))]) as srv:
        t = anthropic_teacher(srv)
        r = t.generate(REQ)
    assert (r.rows, r.rejects, r.cached, r.teacher, r.model, r.simulated) == (ROWS, {}, False, 'anthropic', 'claude-sonnet-5-5', False)
    assert r.usage == {'input_tokens': 1200, 'output_tokens': 800}
    assert r.cost_usd == pytest.approx((1200*2.0 + 800*10.0)/1e6)          # usage → cost at the dated price table
    (sent,) = srv.requests
    assert sent['path'] == '/v1/messages'
    assert KEY in (sent['headers'].get('x-api-key'), sent['headers'].get('authorization', '').removeprefix('Bearer '))
    assert sent['body']['model'] == 'claude-sonnet-5-5' and sent['body']['max_tokens'] == 8192
    assert 'temperature' not in sent['body']                                # None = the model's default
    assert sent_text(sent['body']) == r.prompt                              # the reply holds what was sent
    first, rest = sent['body']['messages'][0]['content']                    # the run's fixed start, cached
    assert first == {'type': 'text', 'text': REQ.cache_prefix, 'cache_control': {'type': 'ephemeral'}}
    assert 'cache_control' not in rest and rest['text'].startswith('Here are labelled examples')
    assert '32 new training samples' in r.prompt
    assert (t.ledger.calls, t.ledger.failed, t.ledger.output_tokens) == (1, 0, 800)

def test_anthropic_temperature_is_sent(env):
    with FakeServer([anthropic_ok('[]')]) as srv: anthropic_teacher(srv, temperature=0.7).generate(REQ)
    assert srv.requests[0]['body']['temperature'] == 0.7

def test_prose_around_json(env):
    text = 'Sure! Here are 32 new samples for the student:\n```json\n' + rows_to_reply(ROWS) + '\n```\nGood luck [with training].'
    with FakeServer([anthropic_ok(text)]) as srv: r = anthropic_teacher(srv).generate(REQ)
    assert r.rows == ROWS and r.rejects == {} and r.raw == text

def test_truncated_json_keeps_complete_rows(env):
    full = rows_to_reply(ROWS)
    cut = full[:full.rindex('"label"')]                                     # the token limit hit the last row
    with FakeServer([anthropic_ok(cut, usage=(1200, 4096), stop='max_tokens')]) as srv: r = anthropic_teacher(srv).generate(REQ)
    assert r.rows == ROWS[:-1] and r.rejects == {'truncated': 1}

def test_unknown_labels_and_leaks_are_rejected(env):
    items = [dict(ROWS[0]), {'text': ROWS[1]['text'], 'category': ROWS[1]['label'].lower()},
             {'text': 'a brand new headline about stars', 'label': 'ASTROLOGY'},
             {'text': 'another new headline', 'label': 'world'},               # WORLD NEWS or WORLDPOST: ambiguous
             {'text': TASK.test[0]['text'].upper(), 'label': TASK.test[0]['label']},
             {'text': TASK.train[0]['text'], 'label': TASK.train[0]['label']}]
    with FakeServer([anthropic_ok(json.dumps(items))]) as srv:
        r = anthropic_teacher(srv).generate(REQ, history_texts=[TASK.train[0]['text']], blocked_texts=[x['text'] for x in TASK.test])
    assert r.rows == ROWS[:2]
    assert r.rejects == {'unknown_label': 2, 'blocked': 1, 'in_history': 1}
    assert [x['reason'] for x in r.rejected] == ['unknown_label', 'unknown_label', 'blocked', 'in_history']

def test_429_then_success(env):
    with FakeServer([error(429, 'rate_limit_error'), anthropic_ok(rows_to_reply(ROWS))]) as srv:
        t = anthropic_teacher(srv)
        r = t.generate(REQ)
    assert len(srv.requests) == 2 and r.rows == ROWS
    assert (t.ledger.calls, t.ledger.failed) == (1, 0)

def test_500_until_retries_run_out(env, tmp_path):
    with FakeServer([error(500)] * 5) as srv:
        t = anthropic_teacher(srv, cache_dir=tmp_path/'cache')
        with pytest.raises(TeacherError, match=r'anthropic teacher \(claude-sonnet-5-5\): the request failed: InternalServerError'):
            t.generate(REQ)
    assert len(srv.requests) == 3                                           # 1 try + max_retries=2
    assert not (tmp_path/'cache').exists() or not any((tmp_path/'cache').iterdir())   # nothing cached
    assert (t.ledger.calls, t.ledger.failed, t.ledger.cost_usd, t.ledger.output_tokens) == (0, 1, 0.0, 0)

def test_missing_key_is_one_clear_error(env, monkeypatch):
    monkeypatch.delenv('ANTHROPIC_API_KEY')
    with pytest.raises(TeacherError, match='ANTHROPIC_API_KEY is not set'): make_teacher('anthropic')


def test_prompt_cache_tokens_are_recorded_and_priced(env):
    answers = [anthropic_ok(rows_to_reply(ROWS), usage=(700, 800), cache=(3000, 0)),
               anthropic_ok(rows_to_reply(ROWS), usage=(650, 800), cache=(0, 3000))]
    with FakeServer(answers) as srv:
        t = anthropic_teacher(srv)
        r1 = t.generate(REQ)
        r2 = t.generate(PGKDRequest(TASK.name, TASK.labels, TASK.train[16:32], step=2))
    assert r1.usage == {'input_tokens': 700, 'output_tokens': 800, 'cache_creation_input_tokens': 3000,
                        'cache_read_input_tokens': 0}
    assert r1.cost_usd == pytest.approx((700*2.0 + 800*10.0 + 3000*2.5)/1e6)     # a cache write: 1.25 × input
    assert r2.cost_usd == pytest.approx((650*2.0 + 800*10.0 + 3000*0.2)/1e6)     # a cache read: 0.1 × input
    firsts = [s['body']['messages'][0]['content'][0] for s in srv.requests]
    assert firsts[0] == firsts[1] and firsts[0]['cache_control'] == {'type': 'ephemeral'}   # the same cached block
    assert t.ledger.totals() == {'calls': 2, 'cached_calls': 0, 'input_tokens': 1350, 'output_tokens': 1600,
                                 'cost_usd': round(r1.cost_usd + r2.cost_usd, 6), 'cache_write_tokens': 3000,
                                 'cache_read_tokens': 3000}

def test_paper_template_is_sent_with_its_own_cached_start(env):
    req = PGKDRequest(TASK.name, TASK.labels, TASK.train[:16], template='paper')
    with FakeServer([anthropic_ok(rows_to_reply(ROWS))]) as srv: r = anthropic_teacher(srv).generate(req)
    first = srv.requests[0]['body']['messages'][0]['content'][0]
    assert first['text'].startswith('You are a Teacher model for a Student LM') and r.prompt.startswith(first['text'])
    assert r.rows == ROWS

def test_no_prompt_cache_sends_one_string(env):
    with FakeServer([anthropic_ok('[]')]) as srv: anthropic_teacher(srv, prompt_cache=False).generate(REQ)
    assert isinstance(srv.requests[0]['body']['messages'][0]['content'], str)


# ---- cache, budget, replay -------------------------------------------------------------------------------

def test_rerun_from_cache_costs_nothing_and_key_is_never_saved(env, tmp_path):
    cache = tmp_path/'cache'
    with FakeServer([anthropic_ok(rows_to_reply(ROWS))]) as srv:
        r1 = anthropic_teacher(srv, cache_dir=cache).generate(REQ)
        t2 = anthropic_teacher(srv, cache_dir=cache)
        r2 = t2.generate(REQ)
    assert len(srv.requests) == 1                                           # the second run never called the server
    assert (r2.rows, r2.raw, r2.usage, r2.cached, r2.cost_usd) == (r1.rows, r1.raw, r1.usage, True, 0.0)
    assert r2.prompt == r1.prompt                                           # what would have been sent
    assert (t2.ledger.calls, t2.ledger.cached, t2.ledger.cost_usd) == (0, 1, 0.0)
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].suffix == '.json'
    rec = json.loads(files[0].read_text())
    assert rec['raw'] == r1.raw and rec['params'] == {'temperature': None, 'max_tokens': 8192, 'seed': 3}
    for f in tmp_path.rglob('*'):
        if f.is_file(): assert KEY not in f.read_text(errors='replace') and 'x-api-key' not in f.read_text(errors='replace')
    assert KEY not in repr(r1) + repr(r2)

def test_budget_stops_before_the_call(env):
    with FakeServer([anthropic_ok(rows_to_reply(ROWS))]) as srv:
        t = anthropic_teacher(srv, budget_usd=0.05)                          # 8192 output tokens alone may cost $0.082
        with pytest.raises(BudgetExceeded, match=r'budget \$0.05'): t.generate(REQ)
        assert srv.requests == []
        t = anthropic_teacher(srv, budget_usd=0.03, max_tokens=2000)
        t.generate(REQ)                                                     # fits (at most ~$0.026); $0.0104 spent
        with pytest.raises(BudgetExceeded, match=r'\$0.0104 spent'):
            t.generate(PGKDRequest(TASK.name, TASK.labels, TASK.train[16:32]))
    assert len(srv.requests) == 1

def test_replay_answers_from_the_recording_only(env, tmp_path):
    with FakeServer([anthropic_ok(rows_to_reply(ROWS))]) as srv: anthropic_teacher(srv, cache_dir=tmp_path).generate(REQ)
    with pytest.raises(CacheMiss, match="endpoint 'https://api.anthropic.com'"):
        make_teacher('replay', cache_dir=tmp_path).generate(REQ)              # recorded at another server
    rp = make_teacher('replay', cache_dir=tmp_path, base_url=srv.url)          # teacher='anthropic', its default model
    r = rp.generate(REQ)
    assert (r.rows, r.cached, r.teacher) == (ROWS, True, 'anthropic')
    with pytest.raises(CacheMiss, match='no recorded reply [0-9a-f]{64}'):
        rp.generate(PGKDRequest(TASK.name, TASK.labels, TASK.train[16:32]))


def max_usage(request):
    "An answer that reports the most the teacher's bound allows: every prompt byte a token, all of max_tokens used."
    prompt = sent_text(request['body'])
    return anthropic_ok('[]', usage=(0, request['body']['max_tokens']), cache=(prompt_token_bound(prompt), 0))

def test_budget_counts_what_a_resumed_run_spent(env):
    with FakeServer([anthropic_ok(rows_to_reply(ROWS))]) as srv:
        t = anthropic_teacher(srv, budget_usd=3.0, spent_usd=2.95)         # 8192 output tokens alone may cost $0.082
        with pytest.raises(BudgetExceeded, match=r'budget \$3.00: \$2.9500 spent'): t.generate(REQ)
    assert srv.requests == [] and (t.ledger.calls, t.ledger.cost_usd) == (0, 2.95)

def test_budget_holds_when_every_call_costs_its_most(env):
    one_call = (prompt_token_bound(build_prompt(REQ))*2.5 + 2000*10.0)/1e6  # all of it a cache write, max_tokens=2000
    budget = 3.95*one_call                                                  # room for 3 such calls, not 4
    with FakeServer([max_usage]*10) as srv:
        t = anthropic_teacher(srv, budget_usd=budget, max_tokens=2000)
        with pytest.raises(BudgetExceeded):
            for seed in range(10): t.generate(PGKDRequest(TASK.name, TASK.labels, TASK.train[:16], seed=seed))
    assert len(srv.requests) == t.ledger.calls == 3
    assert t.ledger.cost_usd == pytest.approx(3*one_call) and t.ledger.cost_usd <= budget


# ---- the server is part of the cache key -----------------------------------------------------------------

def test_two_servers_never_share_replies(env, tmp_path):
    with FakeServer([openai_ok(rows_to_reply(ROWS[:16]))]) as a, FakeServer([openai_ok(rows_to_reply(ROWS[16:]))]) as b:
        ra = openai_teacher(a, cache_dir=tmp_path).generate(REQ)
        rb = openai_teacher(b, cache_dir=tmp_path).generate(REQ)            # same model, prompt and parameters
        again = openai_teacher(a, cache_dir=tmp_path).generate(REQ)
    assert len(a.requests) == 1 and len(b.requests) == 1                    # b was asked, not answered from a's reply
    assert (ra.rows, rb.rows, rb.cached, again.rows, again.cached) == (ROWS[:16], ROWS[16:], False, ROWS[:16], True)
    recorded = sorted(json.loads(f.read_text())['endpoint'] for f in tmp_path.glob('*.json'))
    assert recorded == sorted([a.url + '/v1', b.url + '/v1'])

def test_replay_of_an_openai_server_needs_its_base_url(env, tmp_path):
    with FakeServer([openai_ok(rows_to_reply(ROWS))]) as srv: openai_teacher(srv, cache_dir=tmp_path).generate(REQ)
    rp = make_teacher('replay', cache_dir=tmp_path, teacher='openai', model='qwen', base_url=srv.url + '/v1/')
    assert rp.generate(REQ).rows == ROWS
    with pytest.raises(CacheMiss, match="endpoint 'https://api.openai.com/v1'"):
        make_teacher('replay', cache_dir=tmp_path, teacher='openai', model='qwen').generate(REQ)

def test_default_endpoints_are_what_a_replay_computes(env, tmp_path, monkeypatch):
    monkeypatch.setenv('OPENAI_API_KEY', 'sk-test-only')
    for name, kw, url in [('anthropic', {}, 'https://api.anthropic.com'), ('openai', {'model': 'qwen'}, 'https://api.openai.com/v1'),
                          ('bedrock', {}, 'https://bedrock-runtime.us-east-1.amazonaws.com'),
                          ('bedrock', {'region': 'eu-west-1'}, 'https://bedrock-runtime.eu-west-1.amazonaws.com')]:
        live, replay = make_teacher(name, **kw), make_teacher('replay', cache_dir=tmp_path, teacher=name, **kw)
        assert live.endpoint == replay.endpoint == url


# ---- timeouts and retries --------------------------------------------------------------------------------

def test_defaults_are_two_minutes_and_three_attempts(env):
    t = make_teacher('openai', model='qwen', base_url='http://127.0.0.1:9/v1')
    assert (t.timeout, t.max_retries, t.client.timeout, t.client.max_retries) == (120.0, 2, 120.0, 0)
    a = make_teacher('anthropic')
    assert (a.timeout, a.max_retries, a.client.timeout, a.client.max_retries) == (120.0, 2, 120.0, 0)

def test_hung_server_fails_after_the_configured_attempts(env, capsys):
    with FakeServer([hang(3)]*3) as srv:
        t = make_teacher('openai', model='qwen', base_url=srv.url + '/v1', timeout=1, max_retries=2)
        t0 = time.perf_counter()
        with pytest.raises(TeacherError, match=r'openai teacher \(qwen\): the request failed: APITimeoutError: .*\(3 attempts\)$') as e:
            t.generate(REQ)
        took = time.perf_counter() - t0
    assert '\n' not in str(e.value) and len(srv.requests) == 3 and took < 10   # 3 × 1 s, then 0.5 s + 1 s of waits
    lines = capsys.readouterr().err.splitlines()
    assert [l.split(' after ')[0] for l in lines] == ['openai teacher (qwen): attempt 2/3', 'openai teacher (qwen): attempt 3/3']
    assert all(' after APITimeoutError: ' in l for l in lines)
    assert (t.ledger.calls, t.ledger.failed, t.ledger.cost_usd) == (0, 1, 0.0)

def test_500_then_success_prints_one_retry_line(env, capsys):
    with FakeServer([error(500), anthropic_ok(rows_to_reply(ROWS))]) as srv: r = anthropic_teacher(srv).generate(REQ)
    assert r.rows == ROWS and len(srv.requests) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith('anthropic teacher (claude-sonnet-5-5): attempt 2/3 after InternalServerError: ')

def test_400_is_not_retried(env, capsys):
    with FakeServer([error(400, 'invalid_request_error'), anthropic_ok('[]')]) as srv:
        with pytest.raises(TeacherError, match=r'BadRequestError: .*\(1 attempt\)$'): anthropic_teacher(srv).generate(REQ)
    assert len(srv.requests) == 1 and capsys.readouterr().err == ''


# ---- Amazon Bedrock (same SDK, SigV4-signed, /model/{id}/invoke) -----------------------------------------

def test_bedrock_good_reply(env):
    with FakeServer([error(429, 'ThrottlingException'), anthropic_ok(rows_to_reply(ROWS), usage=(1000, 1000))]) as srv:
        t = make_teacher('bedrock', base_url=srv.url, **FAST)
        r = t.generate(REQ)
    assert r.rows == ROWS and (r.teacher, r.model) == ('bedrock', 'anthropic.claude-3-sonnet-20240229-v1:0')
    assert r.cost_usd == pytest.approx((1000*3.0 + 1000*15.0)/1e6)
    sent = srv.requests[-1]
    assert sent['path'] == '/model/anthropic.claude-3-sonnet-20240229-v1:0/invoke'
    assert sent['body']['anthropic_version'] and 'model' not in sent['body'] and sent['body']['max_tokens'] == 4096
    assert sent['body']['messages'][0]['content'] == r.prompt             # Claude 3 on Bedrock: no prompt caching
    assert sent['headers']['authorization'].startswith('AWS4-HMAC-SHA256') and len(srv.requests) == 2


# ---- OpenAI-compatible servers (vLLM, llama.cpp, Ollama) -------------------------------------------------

def test_openai_good_reply_and_cost(env):
    with FakeServer([openai_ok('```json\n' + rows_to_reply(ROWS) + '\n```')]) as srv:
        t = openai_teacher(srv, prices={'qwen': (0.5, 1.5)}, temperature=0.2)
        r = t.generate(REQ)
    assert (r.rows, r.teacher, r.model) == (ROWS, 'openai', 'qwen')
    assert r.usage == {'input_tokens': 900, 'output_tokens': 700}
    assert r.cost_usd == pytest.approx((900*0.5 + 700*1.5)/1e6)
    (sent,) = srv.requests
    assert sent['path'] == '/v1/chat/completions'
    assert sent['body']['messages'] == [{'role': 'user', 'content': r.prompt}]
    assert {k: sent['body'][k] for k in ('model', 'max_tokens', 'seed', 'temperature')} == {'model': 'qwen', 'max_tokens': 4096, 'seed': 3, 'temperature': 0.2}

def test_openai_unpriced_model_costs_nothing_and_missing_usage_is_estimated(env):
    with FakeServer([openai_ok(rows_to_reply(ROWS), usage=None)]) as srv: r = openai_teacher(srv).generate(REQ)
    assert r.rows == ROWS and r.cost_usd == 0.0
    assert r.usage['estimated'] and r.usage['input_tokens'] > 100 and r.usage['output_tokens'] > 100

def test_openai_429_then_success_and_500_exhausted(env, tmp_path):
    with FakeServer([error(429), openai_ok(rows_to_reply(ROWS)), *[error(503)] * 3]) as srv:
        t = openai_teacher(srv, cache_dir=tmp_path)
        assert t.generate(REQ).rows == ROWS
        with pytest.raises(TeacherError, match=r'openai teacher \(qwen\): the request failed'):
            t.generate(PGKDRequest(TASK.name, TASK.labels, TASK.train[16:32]))
    assert len(srv.requests) == 5 and len(list(tmp_path.iterdir())) == 1   # only the success was cached
    assert (t.ledger.calls, t.ledger.failed) == (1, 1)

def test_openai_empty_choices_is_one_clear_error(env):
    with FakeServer([(200, {**openai_ok('[]')[1], 'choices': []}, {})]) as srv:
        t = openai_teacher(srv)
        with pytest.raises(TeacherError, match=r'openai teacher \(qwen\): the server at http://127.0.0.1:\d+/v1 answered with no choices') as e:
            t.generate(REQ)
    assert '\n' not in str(e.value) and len(srv.requests) == 1 and (t.ledger.calls, t.ledger.failed) == (0, 1)
