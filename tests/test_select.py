"""Issue 27: `--select loss|accuracy|macro_f1` picks the kept step (and counts patience) by that validation number;
a bad value is refused in one line."""
import pytest

from pgkd_nb.config import RunConfig, check_config
from pgkd_nb.loop import run_pgkd
from pgkd_nb.records import completed_steps
from conftest import tiny


@pytest.mark.parametrize('select', ['loss', 'accuracy', 'macro_f1'])
def test_the_kept_step_is_the_best_by_the_selected_number(tmp_path, select):
    s = run_pgkd(tiny(tmp_path, select=select, kd_steps=3), tmp_path/'run', progress=False)
    recs = completed_steps(tmp_path/'run')
    key = 'val_loss' if select == 'loss' else f'val_{select}'
    best = (min if select == 'loss' else max)(r[key] for r in recs)
    assert recs[s['best_step']][key] == best
    assert all(r[key] != best for r in recs[s['best_step'] + 1:])          # a tie keeps the later step
    assert s['config']['select'] == select


def test_a_bad_select_is_refused():
    with pytest.raises(ValueError, match='--select f1: choose loss, accuracy or macro_f1'):
        check_config(RunConfig(select='f1'))
