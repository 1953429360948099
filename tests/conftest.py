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
