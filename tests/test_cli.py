"""The `pgkd` command end to end for the teacher-economy sub-commands (plan, zero-shot flags)."""


def test_plan_command_prints_the_table(capsys):
    from pgkd_nb.cli import main
    assert main(['plan', '--dataset', 'huffpost_mini', '--teacher', 'anthropic', '--kd-steps', '3', '--local-count']) == 0
    out = capsys.readouterr().out
    assert 'plan: pgkd run --dataset huffpost_mini (41 classes): 3 calls' in out and '| list price |' in out
    assert 'prices: list prices of 2026-11' in out

def test_run_refuses_a_budget_below_the_plan(env, tmp_path, capsys):
    from pgkd_nb.cli import main
    code = main(['run', '--dataset', 'huffpost_mini', '--teacher', 'anthropic', '--budget-usd', '0.1',
                 '--out', str(tmp_path/'r'), '--quiet'])
    assert code == 2 and "the plan's upper bound" in capsys.readouterr().err


def test_zero_shot_plan_flag(capsys):
    from pgkd_nb.cli import main
    assert main(['zero-shot', '--dataset', 'huffpost_mini', '--test-max', '20', '--max-tokens', '64', '--plan']) == 0
    out = capsys.readouterr().out
    assert 'plan: pgkd zero-shot --dataset huffpost_mini (41 classes): 20 calls' in out and 'at most 64' in out

def test_zero_shot_concurrency_must_be_positive(env, capsys):
    from pgkd_nb.cli import main
    assert main(['zero-shot', '--dataset', 'huffpost_mini', '--concurrency', '0']) == 2
    assert '--concurrency 0: must be 1 or more' in capsys.readouterr().err
