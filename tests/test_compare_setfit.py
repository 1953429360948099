"""Issue 26: `pgkd compare`'s setfit arm: SetFit (its own library, an optional extra) on the same D0 per seed from the
same checkpoint as the kit's student, scored on the same test rows, paired with the other arms; its training seconds
beside model_0's; read back, not retrained, on a re-run; refused in one line without the extra. Tiny settings: the
tiny BERT, 120 annotated rows, one SetFit iteration."""
import json, os, sys

import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')

from conftest import one_line_error  # noqa: E402
from pgkd_nb.cli import main  # noqa: E402
from pgkd_nb.arms import SetFitConfig, setfit_config  # noqa: E402
from pgkd_nb.data import load_task, sample_d0  # noqa: E402
from pgkd_nb.student import tiny_checkpoint  # noqa: E402


def flags(tmp) -> list[str]:
    return ['compare', '--preset', 'tiny', '--checkpoint', tiny_checkpoint(tmp/'tiny'), '--n-samples', '120',
            '--gen-batch', '16', '--kd-steps', '1', '--n-mined', '4', '--n-few-shot', '4', '--test-max', '40',
            '--student', 'mode=head', 'epochs=3', f"cache_dir={tmp/'enc'}", '--quiet', '--arms', 'pgkd,setfit',
            '--seeds', '2', '--setfit', 'num_iterations=1', '--out', str(tmp/'c')]


@pytest.fixture(scope='module')
def compared(tmp_path_factory):
    pytest.importorskip('setfit', reason="SetFit is not installed: pip install 'pgkd_nb[setfit]'")
    tmp = tmp_path_factory.mktemp('setfit')
    assert main(flags(tmp)) == 0
    return tmp, json.loads((tmp/'c'/'compare.json').read_text())


def test_setfit_arm_same_d0_checkpoint_and_test_rows(compared):
    tmp, r = compared
    task = load_task('huffpost_mini')
    for seed in (0, 1):
        s = json.loads((tmp/'c'/f'setfit-seed{seed}'/'summary.json').read_text())
        run = json.loads((tmp/'c'/f'pgkd-seed{seed}'/'summary.json').read_text())
        step0 = json.loads((tmp/'c'/f'pgkd-seed{seed}'/'step-000'/'step.json').read_text())
        assert s['n_train'] == len(sample_d0(task, 120, seed).train) == step0['n_history']          # the same D0
        assert s['checkpoint'] == run['student']['checkpoint'] == str(tmp/'tiny')                   # and checkpoint
        assert s['n_test'] == run['n_test'] == 40 and s['setfit']['num_iterations'] == 1 and s['train_seconds'] > 0
        assert 0 <= s['pgkd']['accuracy'] <= 1 and s['teacher']['cost_usd'] == 0
    st, b = r['arms']['setfit'], r['setfit']
    assert st['seeds'] == 2 and r['vs_reference']['setfit']['accuracy'][1] is not None      # paired with pgkd by seed
    assert b['ratio'] == pytest.approx(sum(b['seconds'])/sum(b['student_seconds']))
    assert b['student_seconds'] == [json.loads((tmp/'c'/f'pgkd-seed{s}'/'summary.json').read_text())['steps'][0]
                                    ['seconds'] for s in (0, 1)]
    md = (tmp/'c'/'compare.md').read_text()
    assert "## SetFit beside the kit's student" in md and '| setfit | 2 |' in md and '— (no LLM)' in md
    assert "× the kit's student" in md and '1 iteration(s)' in md


def test_setfit_read_back_not_retrained(compared):
    tmp, _ = compared
    before = {p: p.stat().st_mtime_ns for p in (tmp/'c').glob('*-seed*/summary.json')}
    assert main(flags(tmp)) == 0
    assert {p: p.stat().st_mtime_ns for p in (tmp/'c').glob('*-seed*/summary.json')} == before


def test_setfit_settings_travel_whole():
    assert setfit_config({'num_iterations': 1}) == SetFitConfig(num_iterations=1)
    with pytest.raises(ValueError, match='--setfit iterations: choose among num_iterations'):
        setfit_config({'iterations': 1})


def test_setfit_missing_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, 'setfit', None)              # as if the extra were not installed
    one_line_error(capsys, flags(tmp_path), '--arms setfit', "pip install 'pgkd_nb[setfit]'")
    assert not (tmp_path/'c').exists()                            # refused before any run
    one_line_error(capsys, [*flags(tmp_path), '--dry-run'], "pip install 'pgkd_nb[setfit]'")
