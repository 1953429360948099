"""Fixtures shared by the test files."""
import pytest

KEY = 'sk-ant-test-SENTINEL-7f3a9c'          # a fake key that must never be written anywhere


@pytest.fixture
def env(monkeypatch):
    "Fake credentials and no endpoint overrides from the environment: every teacher talks to a test server only."
    monkeypatch.setenv('ANTHROPIC_API_KEY', KEY)
    for var in ('ANTHROPIC_BASE_URL', 'OPENAI_BASE_URL', 'OPENAI_API_KEY', 'AWS_PROFILE'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('AWS_ACCESS_KEY_ID', 'AKIDTESTONLY')
    monkeypatch.setenv('AWS_SECRET_ACCESS_KEY', 'secret-test-only')
    monkeypatch.setenv('AWS_REGION', 'us-east-1')
    monkeypatch.setenv('AWS_EC2_METADATA_DISABLED', 'true')


def one_line_error(capsys, argv, *needles):
    """Run `pgkd argv` and check the README's promise: exit status 2 and exactly one line on stderr,
    `pgkd <command>: error: …`, that contains every one of `needles` (the file, the flag, the fix). Returns the line."""
    from pgkd_nb.cli import main
    capsys.readouterr()
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.strip()]
    assert code == 2, f"exit {code}, stderr: {err!r}"
    assert len(lines) == 1 and lines[0].startswith(f'pgkd {argv[0]}: error: '), f"not one error line: {err!r}"
    for n in needles: assert n in lines[0], f"{n!r} not in {lines[0]!r}"
    return lines[0]


def tiny(tmp, **kw):
    "A tiny run's settings (tiny BERT, head mode, huffpost_mini, 2 KD steps of 16 rows); `kw` overrides them."
    from pgkd_nb.config import RunConfig
    from pgkd_nb.student import tiny_checkpoint
    return RunConfig(**{'preset': 'tiny', 'checkpoint': tiny_checkpoint(tmp/'tiny'), 'n_samples': 120, 'gen_batch': 16,
                        'kd_steps': 2, 'patience': 5, 'n_mined': 4, 'n_few_shot': 4, 'test_max': 40,
                        'student': {'mode': 'head', 'epochs': 3, 'cache_dir': str(tmp/'enc')}, **kw})
