"""Whole PGKD runs with an LLM teacher on fake 127.0.0.1 servers (real `openai` SDK client): the budget holds
across a resume, and the response cache never hands one server's replies to a run against another."""
import pytest

from pgkd_nb.config import RunConfig, TeacherConfig
from pgkd_nb.loop import run_pgkd
from pgkd_nb.loop import spent
from pgkd_nb.records import completed_steps, format_summary
from pgkd_nb.reply import rows_to_reply
from pgkd_nb.student import tiny_checkpoint
from pgkd_nb.costs import BudgetExceeded

from test_teacher_servers import ROWS, FakeServer, openai_ok

MODEL = 'claude-haiku-4-5'          # a priced model id ($1 / $5 per million tokens), served by the fake server


def tiny_run(tmp_path, url, budget_usd=None, **kw):
    "A tiny run (tiny BERT, head mode, 80 annotated rows) whose teacher is the OpenAI-compatible server at `url`."
    teacher = TeacherConfig('openai', model=MODEL, base_url=url + '/v1', cache=str(tmp_path/'replies'), max_retries=0,
                            timeout=10, budget_usd=budget_usd)
    return RunConfig(preset='tiny', checkpoint=tiny_checkpoint(tmp_path/'tiny'), n_samples=80, gen_batch=8, n_mined=2,
                     n_few_shot=2, test_max=40, teacher=teacher,
                     student={'mode': 'head', 'epochs': 5, 'cache_dir': str(tmp_path/'enc')}, **kw)


class Kill(Exception): pass


def kill_after(step):
    def hook(i, rec):
        if i == step: raise Kill()
    return hook


def test_budget_holds_across_a_resume(env, tmp_path):
    answers = [openai_ok(rows_to_reply(ROWS), usage=(1500, 4000))]*10     # $0.0215 a call; worst case ≈ $0.024
    with FakeServer(answers) as srv:
        cfg = tiny_run(tmp_path, srv.url, kd_steps=10, patience=10, budget_usd=0.3)
        with pytest.raises(Kill):
            run_pgkd(cfg, tmp_path/'run', progress=False, on_step=kill_after(4))   # killed after 4 paid steps
        assert len(srv.requests) == 4
        cost = spent(completed_steps(tmp_path/'run')).cost_usd
        assert cost == pytest.approx(0.086)
        cfg.teacher.budget_usd = 0.2     # a runtime setting: may change on resume; 6 more steps could cost up to ~$0.14
        with pytest.raises(BudgetExceeded, match=r'\$0\.0860 spent'):
            run_pgkd(cfg, tmp_path/'run', progress=False)
        assert len(srv.requests) == 4                                           # refused before any request


def test_cache_is_keyed_by_server(env, tmp_path):
    with FakeServer([openai_ok(rows_to_reply(ROWS))]) as one, FakeServer([openai_ok(rows_to_reply(ROWS[:4]))]) as two:
        a = run_pgkd(tiny_run(tmp_path, one.url, kd_steps=1), tmp_path/'a', progress=False)
        b = run_pgkd(tiny_run(tmp_path, two.url, kd_steps=1), tmp_path/'b', progress=False)
        assert (len(one.requests), len(two.requests)) == (1, 1)                 # the second server was asked
        assert a['teacher']['cached_calls'] == b['teacher']['cached_calls'] == 0
        c = run_pgkd(tiny_run(tmp_path, one.url, kd_steps=1), tmp_path/'c', progress=False)
        assert len(one.requests) == 1                                           # same server, same prompt: replayed
    assert c['teacher']['cached_calls'] == 1 and c['teacher']['cost_usd'] == 0
    assert (c['teacher']['input_tokens'], a['teacher']['input_tokens']) == (0, 900)
    assert '1 replies (1 from the response cache, not billed now)' in format_summary(c)
