"""`pgkd report` in a real browser: the page of a tiny run opens in headless Chromium with no console message,
every inlined image decodes (in the browser and with PIL), nothing is fetched from elsewhere, and the screenshot
shows a page, not a blank. Needs Debian's `chromium` (.ci/run installs it); skipped, saying so, without it."""
import base64, io, re, shutil, subprocess

import numpy as np
import pytest
from PIL import Image

from pgkd_nb.config import RunConfig
from pgkd_nb.loop import run_pgkd
from pgkd_nb.report import write_index, write_report
from pgkd_nb.student import tiny_checkpoint

BROWSER = next((b for b in ('chromium', 'chromium-browser', 'google-chrome') if shutil.which(b)), None)
needs_browser = pytest.mark.skipif(BROWSER is None, reason='no headless Chromium: `apt-get install -y chromium` '
                                   '(.ci/run installs it) to check the report in a browser')
# counts, after the page has loaded, the images the browser decoded (added to a copy of the page, not to the report)
COUNT_DECODED = ("<script>addEventListener('load', () => document.body.dataset.decoded = [...document.images]"
                 ".filter(i => i.complete && i.naturalWidth > 0).length + '/' + document.images.length)</script>")


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    "A finished tiny run (tiny BERT, head mode, 120 annotated rows, simulated teacher): about 10 s."
    tmp = tmp_path_factory.mktemp('report')
    cfg = RunConfig(checkpoint=tiny_checkpoint(tmp/'tiny'), preset='tiny', n_samples=120, kd_steps=2, gen_batch=16,
                    n_mined=4, n_few_shot=4, test_max=200, patience=0,
                    student={'mode': 'head', 'epochs': 20, 'lr': 1e-2, 'patience': 3, 'cache_dir': str(tmp/'cache')})
    run_pgkd(cfg, tmp/'runs'/'tiny-seed0', progress=False)
    return tmp/'runs'/'tiny-seed0'


def chromium(page, *args):
    "Run headless Chromium on `page`; returns (stdout, the console lines it logged)."
    cmd = [BROWSER, '--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--enable-logging=stderr',
           '--v=0', '--window-size=1200,2400', *args, page.resolve().as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return r.stdout, [l for l in r.stderr.splitlines() if ':CONSOLE' in l]


@needs_browser
def test_console_lines_are_seen(tmp_path):
    "The harness itself: a page that logs an error is caught (so 'no console line' below means something)."
    page = tmp_path/'bad.html'
    page.write_text("<!doctype html><body><script>console.error('boom'); missing();</script></body>")
    _, console = chromium(page, '--dump-dom')
    assert any('boom' in l for l in console) and any('missing is not defined' in l for l in console)


@needs_browser
def test_report_in_a_browser(tiny_run, tmp_path):
    page = write_report(tiny_run, tmp_path/'report.html')
    html = page.read_text(encoding='utf-8')
    assert not re.search(r'(src|href)="(?!data:|#)', html)                      # nothing to fetch: all inlined

    probe = tmp_path/'probe.html'
    probe.write_text(html.replace('</body>', COUNT_DECODED + '</body>'), encoding='utf-8')
    dom, console = chromium(probe, '--dump-dom')
    assert console == [], console
    n_img = html.count('<img ')
    assert n_img == 3 and f'data-decoded="{n_img}/{n_img}"' in dom              # the browser decoded every image
    for uri in re.findall(r'src="data:image/png;base64,([^"]+)"', html):       # and so does PIL
        im = Image.open(io.BytesIO(base64.b64decode(uri)))
        im.load()
        assert im.width > 200 and im.height > 100

    shot = tmp_path/'shot.png'
    _, console = chromium(page, f'--screenshot={shot}')
    assert console == [], console
    px = np.asarray(Image.open(shot).convert('L'))
    assert px.shape == (2400, 1200)
    assert (px < 200).mean() > 0.02 and len(np.unique(px)) > 50                # text and figures, not a blank page


@needs_browser
def test_index_links_every_report(tiny_run, tmp_path):
    idx = write_index(tiny_run.parent, tmp_path/'site'/'index.html')
    hrefs = re.findall(r'<a href="([^"]+)"', idx.read_text(encoding='utf-8'))
    assert len(hrefs) == 1 and (idx.parent/hrefs[0]).resolve() == (tiny_run/'report.html').resolve()
    _, console = chromium(idx, '--dump-dom')
    assert console == [], console
