"""JupyterLab as a reader uses it: `jupyter lab` on 127.0.0.1, nbs/tutorial.ipynb opened in headless Chromium,
Run > Run All Cells from the menu, then, once the kernel is idle, no cell shows an error and the page is not blank.
Jupyter's config, data, runtime, settings and workspace folders live in a temporary folder. Skipped, saying why,
without Chromium, Playwright or JupyterLab (the dev extra installs them; CI installs Chromium).
PGKD_LAB_NOTEBOOK=nbs/<other>.ipynb opens another notebook; PGKD_LAB_SHOT=file.png keeps the screenshot."""
import json, os, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path

import pytest

from test_docs import ARGS, CHROMIUM, blank

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = os.environ.get('PGKD_LAB_NOTEBOOK', 'nbs/tutorial.ipynb')
RUN_LIMIT_S = 170                                        # the whole test stays under 3 minutes on a laptop


def _importable(name: str) -> bool:
    try: __import__(name)
    except ImportError: return False
    return True


pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason='no Chromium: `apt-get install -y chromium` (CI installs it)'),
    pytest.mark.skipif(not _importable('playwright'), reason='no Playwright: `pip install playwright` (dev extra)'),
    pytest.mark.skipif(not _importable('jupyterlab'), reason='no JupyterLab: `pip install jupyterlab` (dev extra)')]

# what the reader sees once the run is over, read from the notebook's model (cells off screen included)
CELL_STATE = """() => {
  const nb = window.jupyterapp.shell.currentWidget;
  const cells = [...nb.content.model.cells].filter(c => c.type === 'code').map(c => c.toJSON());
  return {
    kernel: nb.sessionContext.session && nb.sessionContext.session.kernel && nb.sessionContext.session.kernel.status,
    busy: document.querySelectorAll('.jp-InputPrompt').length === 0 ? true :
          [...document.querySelectorAll('.jp-InputPrompt')].some(p => p.textContent.includes('[*]')),
    cells: cells.length,
    unrun: cells.filter(c => c.execution_count === null && c.source.trim()).length,
    errors: cells.flatMap(c => c.outputs.filter(o => o.output_type === 'error'
      || (o.output_type === 'stream' && o.name === 'stderr' && /Error|Traceback|IProgress not found/.test(o.text)))
      .map(o => (o.ename ? o.ename + ': ' + o.evalue : o.text).slice(0, 300))),
  };
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    "JupyterLab on 127.0.0.1 (a free port, no token) serving a copy of nbs/, its state in `tmp_path`; yields its URL."
    port, home = free_port(), tmp_path/'jupyter'
    shutil.copytree(ROOT/'nbs', tmp_path/'work'/'nbs')         # a run never writes into the repository's notebooks
    for plugin, value in [('notebook-extension/tracker', {'windowingMode': 'none'}),    # every cell in the DOM
                          ('docmanager-extension/plugin', {'autosave': False}),
                          ('apputils-extension/notification', {'fetchNews': 'false', 'checkForUpdates': False})]:
        f = home/'settings'/'@jupyterlab'/f'{plugin}.jupyterlab-settings'
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(value))
    env = {**os.environ, 'JUPYTER_CONFIG_DIR': str(home/'config'), 'JUPYTER_DATA_DIR': str(home/'data'),
           'JUPYTER_RUNTIME_DIR': str(home/'runtime'), 'JUPYTERLAB_SETTINGS_DIR': str(home/'settings'),
           'JUPYTERLAB_WORKSPACES_DIR': str(home/'workspaces'), 'IPYTHONDIR': str(home/'ipython'),
           'HF_HUB_OFFLINE': '1', 'PATH': f'{Path(sys.executable).parent}{os.pathsep}{os.environ.get("PATH", "")}'}
    cmd = [sys.executable, '-m', 'jupyter', 'lab', '--no-browser', '--ip=127.0.0.1', f'--port={port}',
           '--ServerApp.token=', '--ServerApp.password=', f'--ServerApp.root_dir={tmp_path/"work"}',
           '--LabApp.expose_app_in_browser=True', '--LabApp.news_url=None', '--LabApp.check_for_updates_class='
           'jupyterlab.NeverCheckForUpdate'] + (['--allow-root'] if os.geteuid() == 0 else [])
    log = open(tmp_path/'lab.log', 'w')
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path/'work')
    url = f'http://127.0.0.1:{port}/'
    try:
        wait_until_up(url + 'api/status', proc, tmp_path/'lab.log')
        yield url
    finally:
        proc.terminate()
        try: proc.wait(timeout=20)
        except subprocess.TimeoutExpired: proc.kill()
        log.close()


def wait_until_up(url: str, proc, log: Path, timeout: float = 60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        assert proc.poll() is None, f'jupyter lab exited: {log.read_text()[-2000:]}'
        try:
            with urllib.request.urlopen(url, timeout=2): return
        except OSError: time.sleep(0.5)
    raise AssertionError(f'jupyter lab did not answer in {timeout} s: {log.read_text()[-2000:]}')


def start_the_kernel(page):
    "A notebook kept without kernel metadata (nbdev_clean) asks which kernel: the reader picks the default."
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget && "
                           "window.jupyterapp.shell.currentWidget.sessionContext", timeout=60_000)
    select = page.locator('.jp-Dialog button.jp-mod-accept', has_text='Select')
    try: select.wait_for(timeout=10_000)
    except Exception: pass                                    # the notebook named its kernel: no dialog
    else: select.click()
    page.wait_for_function("() => { const s = window.jupyterapp.shell.currentWidget.sessionContext.session; "
                           "return s && s.kernel && s.kernel.status === 'idle'; }", timeout=60_000)


def run_all_from_the_menu(page):
    "What a reader does: the Run menu, then Run All Cells."
    page.locator('.lm-MenuBar-itemLabel', has_text='Run').first.click()
    page.locator('.lm-Menu-itemLabel', has_text='Run All Cells').first.click()


def test_tutorial_runs_in_jupyterlab(lab, tmp_path):
    from playwright.sync_api import sync_playwright
    elsewhere, t0 = [], time.time()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        ctx = browser.new_context(viewport={'width': 1400, 'height': 1000})
        ctx.route('**/*', lambda r: r.continue_() if r.request.url.startswith(('http://127.0.0.1', 'data:', 'blob:'))
                  else (elsewhere.append(r.request.url), r.abort()))
        page = ctx.new_page()
        page.goto(lab + 'lab/tree/' + NOTEBOOK, timeout=60_000)
        start_the_kernel(page)
        run_all_from_the_menu(page)
        page.wait_for_function(f"() => {{ const s = ({CELL_STATE})(); return s.busy || s.unrun === 0; }}",
                               timeout=20_000)                                  # the run has started
        left = RUN_LIMIT_S - (time.time() - t0)
        page.wait_for_function(f"() => {{ const s = ({CELL_STATE})(); return s.kernel === 'idle' && !s.busy; }}",
                               timeout=max(left, 1) * 1000, polling=1000)
        state = page.evaluate(CELL_STATE)
        shot = Path(os.environ.get('PGKD_LAB_SHOT') or tmp_path/'lab.png')
        page.screenshot(path=str(shot))
        browser.close()
    print(f'{NOTEBOOK}: {state["cells"]} code cells ran in JupyterLab in {time.time() - t0:.0f} s')
    assert state['errors'] == [], state['errors']
    assert state['unrun'] == 0, state
    assert elsewhere == [], sorted(set(elsewhere))
    assert not blank(shot)
