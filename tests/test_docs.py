"""The documentation site (`make docs`, tools/docs.py) in a real browser: it builds offline from the notebooks, and
every page opens in headless Chromium, served from 127.0.0.1, with no console error and no request to another host;
every internal link and anchor resolves, every image decodes, maths is MathML, and a screenshot shows a page.
PGKD_DOCS_SITE=_docs reuses a site already built. Skipped, saying why, without Chromium or Playwright."""
import contextlib, functools, http.server, os, re, shutil, subprocess, sys, threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = next((b for b in ('/usr/bin/chromium', shutil.which('chromium') or '') if b and Path(b).exists()), None)
ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run']
try: import playwright.sync_api  # noqa: F401
except ImportError: playwright = None
pytestmark = [pytest.mark.skipif(CHROMIUM is None,
                                 reason='no Chromium: `apt-get install -y chromium` (CI installs it)'),
              pytest.mark.skipif(playwright is None, reason='no Playwright: `pip install playwright` (the dev extra); '
                                 'it drives /usr/bin/chromium, no `playwright install`')]


def blank(png: Path) -> bool:
    "A screenshot with (almost) no dark pixels or few grey levels is blank (as in tests/test_report.py)."
    px = np.asarray(Image.open(png).convert('L'))
    return not ((px < 200).mean() > 0.02 and len(np.unique(px)) > 50)


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    "(site folder, the builder's output): a fresh build into a temporary folder, or PGKD_DOCS_SITE's."
    if os.environ.get('PGKD_DOCS_SITE'): return Path(os.environ['PGKD_DOCS_SITE']).resolve(), ''
    tmp = tmp_path_factory.mktemp('docs')
    cmd = [sys.executable, str(ROOT/'tools'/'docs.py'), '--out', str(tmp/'site'), '--work', str(tmp/'src')]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, 'HF_HUB_OFFLINE': '1'})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return tmp/'site', r.stdout


@contextlib.contextmanager
def serve(site: Path):
    "`site` over HTTP on 127.0.0.1 (a free port), as a reader's browser gets it; yields its URL."
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try: yield f'http://127.0.0.1:{httpd.server_address[1]}/'
    finally: httpd.shutdown()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass


PAGE_FACTS = """() => ({
  ids: [...document.querySelectorAll('[id]')].map(e => e.id),
  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  broken_images: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
  images: document.images.length,
  maths: document.querySelectorAll('article math').length,
  raw_maths: document.querySelectorAll('.arithmatex').length,
  text: (document.querySelector('article') || document.body).innerText.length,
})"""


def visit(site: Path, shots: Path) -> dict:
    "Open every page of `site` in headless Chromium: facts per page, console errors, requests to other hosts."
    from playwright.sync_api import sync_playwright
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob('*.html'))
    facts, errors, elsewhere = {}, [], []
    with serve(site) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        ctx = browser.new_context(viewport={'width': 1280, 'height': 1000})
        ctx.route('**/*', lambda route: route.continue_() if urlsplit(route.request.url).hostname == '127.0.0.1'
                  else (elsewhere.append(route.request.url), route.abort()))
        page = ctx.new_page()
        page.on('console', lambda m: m.type == 'error' and errors.append(f'{page.url}: {m.text}'))
        page.on('pageerror', lambda e: errors.append(f'{page.url}: {e}'))
        for rel in pages:
            page.goto(url + rel, wait_until='load')
            facts[rel] = page.evaluate(PAGE_FACTS)
            page.screenshot(path=str(shots/(rel.replace('/', '__') + '.png')))
        page.wait_for_timeout(500)                                   # late errors (the search worker) come in too
        browser.close()
    return dict(url=url, site=site, pages=pages, facts=facts, errors=errors, elsewhere=elsewhere, shots=shots)


def broken_links(v: dict) -> list:
    "(page, link) for each link to the site that lands on no file, or on no element with the link's anchor."
    bad = []
    for rel, f in v['facts'].items():
        for href in (h for h in f['links'] if h.startswith(v['url'])):
            u = urlsplit(href)
            target = unquote(u.path)[1:] or 'index.html'
            if target.endswith('/'): target += 'index.html'
            if not (v['site']/target).is_file(): bad.append((rel, href))
            elif u.fragment and target in v['facts'] and unquote(u.fragment) not in v['facts'][target]['ids']:
                bad.append((rel, href))
    return bad


@pytest.fixture(scope='module')
def visited(built, tmp_path_factory):
    "Every page of the built site, opened in the browser; PGKD_DOCS_SHOTS=folder keeps the screenshots there."
    shots = Path(os.environ.get('PGKD_DOCS_SHOTS') or tmp_path_factory.mktemp('shots'))
    shots.mkdir(parents=True, exist_ok=True)
    return visit(built[0], shots)


def test_the_harness_sees_faults(tmp_path):
    "A page that logs an error, fetches from another host, links nowhere and shows a broken image is caught."
    (tmp_path/'site').mkdir()
    (tmp_path/'site'/'index.html').write_text(
        '<!doctype html><link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">'
        '<body><article>' + 'text ' * 60 + '<a href="nowhere.html">x</a><a href="index.html#no-anchor">y</a>'
        '<img src="missing.png"></article><script>console.error("boom")</script></body>')
    v = visit(tmp_path/'site', tmp_path)
    assert v['elsewhere'] == ['https://fonts.googleapis.com/css?family=Roboto']
    assert any('boom' in e for e in v['errors'])
    assert [h.rsplit('/', 1)[1] for _, h in broken_links(v)] == ['nowhere.html', 'index.html#no-anchor']
    assert v['facts']['index.html']['broken_images'] and blank(tmp_path/'index.html.png')     # a line of text: blank


def test_build_reports_every_notebook(built):
    "Every notebook is a page; a notebook nbdev's processing cannot run is named in the builder's output."
    site, out = built
    for nb in ['index', 'tutorial', 'data', 'student', 'loop', 'cli', 'report', 'repro/table2']:
        assert (site/f'{nb}.html').exists(), nb
    if out: assert 'nbdev doc processing failed' not in out, out


def test_reading_order_and_api(built):
    "Home first, then the tutorial, the chapters by number; an API page names every public name of each module."
    import importlib, pkgutil, pgkd_nb
    html = (built[0]/'index.html').read_text(encoding='utf-8')
    nav = re.findall(r'href="((?:[\w]+/)?[\w]+\.html)"', html[html.index('md-nav--primary'):])
    some = ['tutorial.html', 'data.html', 'fast.html', 'config.html', 'report.html']
    assert [n for n in dict.fromkeys(nav) if n in some] == some
    for m in (m.name for m in pkgutil.iter_modules(pgkd_nb.__path__) if not m.name.startswith('_')):
        api = (built[0]/'api'/f'{m}.html').read_text(encoding='utf-8')
        for name in getattr(importlib.import_module(f'pgkd_nb.{m}'), '__all__', []):
            assert f'id="{name.lower()}"' in api, (m, name)
    assert (built[0]/'reports'/'table5.html').exists() and (built[0]/'reports'/'cpu'/'fig3.png').exists()


def test_every_page_in_a_browser(visited):
    assert len(visited['pages']) > 60
    assert visited['errors'] == [], visited['errors'][:10]
    assert visited['elsewhere'] == [], sorted(set(visited['elsewhere']))[:10]      # nothing from another host
    for rel, f in visited['facts'].items():
        assert f['broken_images'] == [], (rel, f['broken_images'])
        assert f['raw_maths'] == 0, rel                                            # every $…$ became MathML
        assert f['text'] > 20, rel                                                 # a page, not an empty shell
    assert visited['facts']['index.html']['maths'] > 0 and visited['facts']['tutorial.html']['images'] > 0


def test_internal_links_resolve(visited):
    assert broken_links(visited) == [], broken_links(visited)[:20]


def test_screenshots_are_pages(visited):
    "A screenshot of every page shows text and colour, not a blank."
    blanks = [p.name for p in sorted(visited['shots'].glob('*.png')) if blank(p)]
    assert blanks == [], blanks
