"""The exported package stays readable: ruff finds nothing (ruff.toml), and no line is over 120 columns except in
the `__all__` list that nbdev writes (it wraps that list at 120 *after* the 10-column `__all__ = ` prefix)."""
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 120


def long_lines(path: Path) -> list[str]:
    "`file:line (width)` for each line over WIDTH outside the generated `__all__` block."
    out, in_all = [], False
    for i, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1):
        if line.startswith('__all__ = ['): in_all = True
        if not in_all and len(line) > WIDTH: out.append(f"{path.relative_to(ROOT)}:{i} ({len(line)})")
        if in_all and line.rstrip().endswith(']'): in_all = False
    return out


def test_long_lines_are_found():
    sample = ROOT/'tests'/'_style_sample.py'
    sample.write_text("__all__ = ['" + 'a'*130 + "']\nx = '" + 'b'*130 + "'\n")
    try: assert long_lines(sample) == ['tests/_style_sample.py:2 (136)']
    finally: sample.unlink()


def test_package_lines_fit_120_columns():
    found = [l for p in sorted((ROOT/'pgkd_nb').glob('*.py')) if p.name != '_modidx.py' for l in long_lines(p)]
    assert not found, 'lines over 120 columns (edit the notebooks, then nbdev_export):\n' + '\n'.join(found)


def test_ruff_is_clean():
    r = subprocess.run([sys.executable, '-m', 'ruff', 'check', 'pgkd_nb', 'tests'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
