"""Build the documentation site from the notebooks, offline: `python tools/docs.py` (what `make docs` runs).

1. nbdev's doc processing (`show_doc` rendered, `#| hide` cells dropped) runs on each notebook in this process,
   without Quarto. A cell that mixes imports with other code is not executed here (only its imports are): such a
   cell would otherwise run in full (30_bench's would run the benchmark). A notebook that still fails is reported
   and published unprocessed; the build goes on (and exits 1 at the end).
2. The processed notebooks are cleaned (front matter → title, `#|` lines, `{target=…}`, `has_sd`) and converted to
   Markdown with nbconvert (images written beside the page); links to notebooks, reports and nbdev's doc host are
   made relative.
3. An API page per module lists every name in its `__all__` with its signature and docstring; reports/ is copied.
4. mkdocs (material theme, mkdocs.yml) builds the site into _docs. Maths is MathML made at build time by
   latex2mathml (this file is also mkdocs' hook), so the site loads nothing from another host.
"""
import argparse, contextlib, importlib, inspect, io, os, re, shutil, sys, time, warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS, REPORTS, EXTRAS = ROOT/'nbs', ROOT/'reports', ROOT/'docs_src'
DOC_HOST = 'https://pgkd-nb.github.io/pgkd_nb/'
SRC_LINK = re.compile(r'\[source\]\(https://github\.com/[^)]*\)(\{[^}]*\})?\s*')
ATTRS = re.compile(r'(\]\([^)\s]*\))\{[^}\n]*\}')          # [text](url){target="_blank" …} → [text](url)
MD_LINK = re.compile(r'(\]\()([^)\s#]*)(#[^)\s]*)?\)')
CURRENCY = re.compile(r'(?<![\\$])\$(?=\d)')                # $3.00 is money, not maths


# ---------------------------------------------------------------- reading order and page names
def page_name(nb: Path) -> str:
    "nbdev's output file stem: `08_metrics.ipynb` → `metrics`, `repro/table2.ipynb` → `repro/table2`."
    rel = nb.relative_to(NBS).with_suffix('')
    return str(rel.parent/re.sub(r'^\d+[a-z]?_', '', rel.name)).removeprefix('./')


def notebooks() -> list:
    "Index first, then the tutorial, the chapters by their number prefix, and the reproductions."
    top = sorted(p for p in NBS.glob('*.ipynb') if not p.name.startswith(('_', '.')))
    first = [NBS/'index.ipynb', NBS/'tutorial.ipynb']
    return [p for p in first if p.exists()] + [p for p in top if p not in first] + sorted(NBS.glob('repro/*.ipynb'))


# ---------------------------------------------------------------- 1. nbdev's processing, guarded
def _mixed(src: str) -> bool:
    "Would nbdev run this whole cell for its imports (an import anywhere in it, not only import statements)?"
    import ast
    try: tree = ast.parse(src)
    except SyntaxError: return False
    has_import = any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree))
    return has_import and not all(isinstance(s, (ast.Import, ast.ImportFrom)) for s in tree.body)


def _guard(nb) -> list:
    "Run only the imports of mixed cells: a hidden imports-only cell before each, the cell itself `eval: false`."
    import ast
    from execnb.nbio import NbCell
    from fastcore.basics import AttrDict
    cells, mixed = [], []
    for c in nb.cells:
        src = c.source
        if c.cell_type == 'code' and not re.search(r'^#\|\s*export', src, re.M) and _mixed(src):
            mixed.append(c.idx_)
            imps = [ast.get_source_segment(src, s) for s in ast.parse(src).body
                    if isinstance(s, (ast.Import, ast.ImportFrom))]
            if imps: cells.append(NbCell(c.idx_, dict(cell_type='code', source='#| hide\n' + '\n'.join(imps),
                                                   metadata=AttrDict(), outputs=[], execution_count=None)))
            c.source = '#| eval: false\n' + src
        cells.append(c)
    nb.cells = cells
    return mixed


def process(nb_path: Path):
    "nbdev's doc processing of one notebook; returns (notebook, cells with mixed imports, error or None)."
    from execnb.nbio import read_nb
    from nbdev.processors import FilterDefaults
    nb = read_nb(nb_path)
    head = [c for c in nb.cells[:1] if c.cell_type == 'markdown' and c.source.lstrip().startswith('# ')]
    nb.cells = nb.cells[len(head):]        # nbdev would keep only its title and first line: the page keeps it all
    mixed = _guard(nb)
    cwd, out = os.getcwd(), io.StringIO()
    os.environ['IN_TEST'] = '1'
    try:
        os.chdir(nb_path.parent)
        with warnings.catch_warnings(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            warnings.simplefilter('ignore')
            FilterDefaults()(nb)
        nb.cells = head + nb.cells
        return nb, mixed, None
    except Exception as e:                                   # report, publish it unprocessed, go on
        cause = e.__cause__ or e
        return read_nb(nb_path), mixed, f'{str(e).splitlines()[0]} {type(cause).__name__}: {cause}'.strip()
    finally:
        os.chdir(cwd)
        os.environ.pop('IN_TEST', None)


# ---------------------------------------------------------------- 2. clean-up and Markdown
def _title(nb) -> str:
    "The front matter nbdev made of the title cell (a raw `---` cell) → `# Title` and its description."
    import yaml
    for c in list(nb.cells):
        if c.cell_type == 'raw' and c.source.lstrip().startswith('---'):
            fm = yaml.safe_load(c.source.strip().strip('-')) or {}
            nb.cells.remove(c)
            desc = f"\n\n> {fm['description']}" if fm.get('description') else ''
            return f"# {fm.get('title', '')}{desc}" if fm.get('title') else ''
    return ''


def clean(nb) -> dict:
    "A plain, valid nbformat dict: no front matter, warning cell, `#|` lines, source links or `has_sd` keys."
    head = _title(nb)
    cells = [dict(cell_type='markdown', metadata={}, source=head, id='title')] if head else []
    for c in nb.cells:
        src = c.source
        if c.cell_type == 'markdown' and 'WARNING: THIS FILE WAS AUTOGENERATED' in src: continue
        if c.cell_type == 'code':
            if re.search(r'^#\|\s*echo:\s*false', src, re.M): src = ''
            src = '\n'.join(l for l in src.splitlines() if not l.startswith('#|')).strip('\n')
            outs = [_clean_output(o) for o in c.get('outputs', [])]
            if not src and not outs: continue
            tags = {} if src else {'tags': ['hide-input']}                # a `show_doc`: its output alone
            cells.append(dict(cell_type='code', metadata=tags, source=src, outputs=outs, execution_count=None,
                              id=f'c{len(cells)}'))
        else: cells.append(dict(cell_type=c.cell_type, metadata={}, source=src, id=f'c{len(cells)}'))
    return dict(nbformat=4, nbformat_minor=5, metadata={'language_info': {'name': 'python'}}, cells=cells)


def _clean_output(o) -> dict:
    "One output as nbformat wants it (strings, not lists); a `show_doc` without its GitHub link and attributes."
    o = {k: (''.join(v) if k == 'text' and isinstance(v, list) else v) for k, v in dict(o).items()
         if k not in ('has_sd', 'transient')}
    if 'data' in o: o['data'] = {k: ''.join(v) if isinstance(v, list) else v for k, v in dict(o['data']).items()}
    md = o.get('data', {}).get('text/markdown')
    if md is not None: o['data'] = {'text/markdown': ATTRS.sub(r'\1', SRC_LINK.sub('', md))}
    text = o.get('text') if o.get('output_type') == 'stream' else None
    if text is None and set(o.get('data', {})) == {'text/plain'}: text = o['data']['text/plain']
    if text is not None:                    # printed text → a block styled as an output (docs_src/assets/pgkd.css)
        block = f'~~~~{{.text .cell-output}}\n{text.rstrip()}\n~~~~'
        o = dict(output_type='display_data', metadata={}, data={'text/markdown': block})
    if o.get('output_type') == 'execute_result': o.setdefault('execution_count', None)
    if o.get('output_type') == 'display_data': o.pop('execution_count', None)
    return o


def to_markdown(nb: dict, name: str, site: Path) -> str:
    "nbconvert's Markdown of `nb`, with its images written under `site`; returns the Markdown."
    import nbformat
    from nbconvert import MarkdownExporter
    from traitlets.config import Config
    node = nbformat.from_dict(nb)
    for c in node.cells:
        if c.cell_type == 'markdown': c.source = _money(c.source)
    nbformat.validate(node)
    stem = Path(name).name
    hide = {'TagRemovePreprocessor': {'enabled': True, 'remove_input_tags': ['hide-input']}}
    body, res = MarkdownExporter(config=Config(hide)).from_notebook_node(
        node, resources={'output_files_dir': f'{stem}_files', 'unique_key': stem})
    for fn, data in res.get('outputs', {}).items():
        (site/Path(name).parent/fn).parent.mkdir(parents=True, exist_ok=True)
        (site/Path(name).parent/fn).write_bytes(data)
    return body


def _money(md: str) -> str:
    "Escape `$` before a digit (a price), outside code spans, so it is not read as maths."
    parts = re.split(r'(`+[^`]*`+)', md)
    return ''.join(p if i % 2 else CURRENCY.sub(r'\\$', p) for i, p in enumerate(parts))


def relink(md: str, base: Path, name: str, pages: dict) -> str:
    "Links (relative to folder `base`) to notebooks, reports/, nbdev's doc host → the site's pages, from page `name`."
    up = '../' * name.count('/')

    def fix(m):
        pre, url, frag = m.group(1), m.group(2), m.group(3) or ''
        if url.startswith(DOC_HOST): return f'{pre}{up}{url[len(DOC_HOST):].replace(".html", ".md")}{frag})'
        if not url or re.match(r'^[a-z]+:', url) or url.startswith('/'): return m.group(0)
        target = (base/url).resolve()
        if target.suffix == '.ipynb' and target in pages: return f'{pre}{up}{pages[target]}.md{frag})'
        if target.is_relative_to(REPORTS):
            rel = target.relative_to(ROOT).as_posix() + ('/README.md' if target.is_dir() else '')
            return f'{pre}{up}{rel}{frag})'
        return m.group(0)
    return MD_LINK.sub(fix, md)


# ---------------------------------------------------------------- 3. API reference and reports
def _sig(obj) -> str:
    try: return str(inspect.signature(obj))
    except (TypeError, ValueError): return ''


def _code(name: str, obj) -> str:
    if inspect.isclass(obj): return f'class {name}{_sig(obj)}'
    if inspect.isroutine(obj): return f'def {name}{_sig(obj)}'
    return f'{name} = {_short(obj)}'


def _methods(cls) -> list:
    "`- name(signature)`: the first line of its docstring, for each public method a class defines."
    out = []
    for k, v in vars(cls).items():
        if k.startswith('_') or not inspect.isroutine(v): continue
        first = (inspect.getdoc(v) or '').split('\n')[0]
        out.append(f'- `{k}{_sig(getattr(cls, k))}`' + (f': {_escape(first)}' if first else ''))
    return out + [''] if out else []


def _escape(doc: str) -> str: return doc.replace('$', r'\$')


def _entry(mod, name: str, chapters: dict) -> str:
    "One public name: signature, docstring, public methods, and the chapter that shows it."
    obj = getattr(mod, name)
    doc = inspect.getdoc(obj) if (inspect.isroutine(obj) or inspect.isclass(obj)) else None
    out = [f'### {name}', '', f'```python\n{_code(name, obj)}\n```', '']
    if doc: out += [_escape(doc), '']
    if inspect.isclass(obj): out += _methods(obj)
    link = chapters.get(f'{mod.__name__}.{name}')
    if link:
        page = link[0].split('#')[0].removesuffix('.html')
        out += [f'Its chapter: [{page}](../{link[0].replace(".html", ".md")})', '']
    return '\n'.join(out)


def _short(obj) -> str:
    "A constant's value, cut; an object without a readable repr (`<… at 0x…>`) by its type."
    r = repr(obj)
    if ' at 0x' in r: return f'{type(obj).__module__}.{type(obj).__qualname__}()'.removeprefix('builtins.')
    return r if len(r) <= 300 else r[:300] + ' …'


def api_pages(site: Path, pages_of_module: dict, failed: dict) -> list:
    "api/<module>.md for every module of pgkd_nb (each name of its `__all__`); returns the nav entries."
    import pkgutil, pgkd_nb
    from pgkd_nb._modidx import d
    chapters = {k: v for syms in d['syms'].values() for k, v in syms.items()}
    (site/'api').mkdir(parents=True, exist_ok=True)
    nav = []
    for m in sorted(m.name for m in pkgutil.iter_modules(pgkd_nb.__path__) if not m.name.startswith('_')):
        try: mod = importlib.import_module(f'pgkd_nb.{m}')
        except Exception as e:                                     # report it, leave the page out, go on
            failed[f'pgkd_nb/{m}.py'] = f'import failed: {type(e).__name__}: {e}'
            continue
        names = list(getattr(mod, '__all__', []))
        chap = pages_of_module.get(f'pgkd_nb.{m}')
        head = [f'# pgkd_nb.{m}', '', (inspect.getdoc(mod) or '').split('\n')[0], '']
        if chap: head += [f'Explained, shown at work and tested in the chapter [{chap}](../{chap}.md).', '']
        head += [f'{len(names)} public names: ' + ', '.join(f'[`{n}`](#{slugify(n, "-")})' for n in names), '']
        (site/'api'/f'{m}.md').write_text('\n'.join(head + [_entry(mod, n, chapters) for n in names]))
        nav.append({f'pgkd_nb.{m}': f'api/{m}.md'})
    return nav


def report_pages(site: Path) -> list:
    "reports/ copied whole (its Markdown, figures, JSON and CSV); the nav lists its Markdown."
    shutil.copytree(REPORTS, site/'reports', ignore=shutil.ignore_patterns('__pycache__', '.*'))
    nav = []
    for p in sorted(REPORTS.rglob('*.md')):
        rel = p.relative_to(REPORTS)
        title = rel.parent.as_posix() if p.name == 'README.md' else rel.with_suffix('').as_posix()
        nav.append({title.replace('_', ' '): f'reports/{rel.as_posix()}'})
    return nav


def _anchors(md: str) -> set:
    return {slugify(re.sub(r'[`*_\\]|\{.*\}$', '', h)) for h in re.findall(r'^#{1,6}\s+(.+?)\s*$', md, re.M)} | \
           set(re.findall(r'\bid="([^"]+)"', md))


def fix_anchors(site: Path, modules: dict):
    "A link to a name its chapter does not `show_doc` (a method, a failed notebook) → the name in the API page."
    pages = {p.relative_to(site).with_suffix('').as_posix(): p for p in site.rglob('*.md')
             if not p.relative_to(site).as_posix().startswith('reports/')}
    texts = {k: p.read_text(encoding='utf-8') for k, p in pages.items()}
    anchors = {k: _anchors(t) for k, t in texts.items()}
    module_of = {page: mod.split('.', 1)[1] for mod, page in modules.items()}
    link = re.compile(r'\]\(((?:\.\./)*)([\w/]+)\.md#([^)\s]+)\)')
    for k, text in texts.items():
        def fix(m):
            up, page, anchor = m.groups()
            if page not in anchors or anchor in anchors[page]: return m.group(0)
            api, top = f'api/{module_of.get(page)}', slugify(anchor.split('.')[0])
            if api != k and top in anchors.get(api, ()): return f']({up}{api}.md#{top})'
            return f']({up}{page}.md)'
        new = link.sub(fix, text)
        if new != text: pages[k].write_text(new, encoding='utf-8')


# ---------------------------------------------------------------- 4. the site
def chapters(site: Path) -> tuple:
    "Every notebook → a Markdown page; returns (nav entries, module → page, failures, mixed cells)."
    nbs = notebooks()
    pages = {p.resolve(): page_name(p) for p in nbs}
    nav, modules, failed, mixed = [], {}, {}, {}
    for p in nbs:
        t0, name = time.time(), pages[p.resolve()]
        nb, mix, err = process(p)
        if err: failed[p.relative_to(ROOT).as_posix()] = err
        if mix: mixed[p.relative_to(ROOT).as_posix()] = mix
        exp = re.search(r'^#\|\s*default_exp\s+(\S+)', '\n'.join(c.source for c in nb.cells), re.M)
        if exp: modules[f'pgkd_nb.{exp.group(1)}'] = name
        base = ROOT if p.name == 'index.ipynb' else p.parent        # index.ipynb is also the README
        md = relink(to_markdown(clean(nb), name, site), base, name, pages)
        (site/f'{name}.md').parent.mkdir(parents=True, exist_ok=True)
        (site/f'{name}.md').write_text(md, encoding='utf-8')
        title = re.search(r'^# (.+)$', md, re.M)
        nav.append({(title.group(1) if title else name): f'{name}.md'})
        print(f'  {time.time() - t0:5.1f}s  {p.relative_to(ROOT)}' + ('  FAILED (published unprocessed)' if err
                                                                      else ''), flush=True)
    return nav, modules, failed, mixed


def navigation(chaps: list, api: list, reports: list) -> list:
    "Home, the tutorial, the chapters, the reproductions, the API reference, the reports."
    home, rest = chaps[:2], chaps[2:]
    repro = [e for e in rest if next(iter(e.values())).startswith('repro/')]
    chapter = [e for e in rest if e not in repro]
    return home + [{'Chapters': chapter}, {'Reproductions': repro}, {'API reference': api}, {'Reports': reports}]


def build(out: Path, work: Path) -> dict:
    "Stage the Markdown in `work`, build the site into `out`; returns what went wrong (failed, mixed)."
    from mkdocs.commands.build import build as mk_build
    from mkdocs.config import load_config
    shutil.rmtree(work, ignore_errors=True)
    if EXTRAS.exists(): shutil.copytree(EXTRAS, work)
    work.mkdir(parents=True, exist_ok=True)
    chaps, modules, failed, mixed = chapters(work)
    nav = navigation(chaps, api_pages(work, modules, failed), report_pages(work))
    fix_anchors(work, modules)
    cfg = load_config(str(ROOT/'mkdocs.yml'), docs_dir=str(work), site_dir=str(out), nav=nav)
    t0 = time.time()
    mk_build(cfg)
    print(f'  {time.time() - t0:5.1f}s  mkdocs build')
    return dict(failed=failed, mixed=mixed)


def report(problems: dict):
    "Which notebooks nbdev's processing could not run, and which cells mix imports with other code."
    for src, err in problems['failed'].items():
        print(f'docs: {src}: ' + (f'{err}; no API page' if src.endswith('.py') else
                                  f'nbdev doc processing failed ({err}); published without show_doc output'))
    for nb, cells in problems['mixed'].items():
        print(f'docs: {nb}: cells {cells} run in full by nbdev\'s doc processing (imports with other code): '
              'split the imports into their own cell')


# ---------------------------------------------------------------- mkdocs hooks (mkdocs.yml: hooks)
def slugify(value: str, separator: str = '-') -> str:
    "nbdev's anchors: `StudentConfig.fit` → `studentconfig.fit` (dots and underscores kept)."
    return re.sub(r'[^\w.\-]+', separator, value.strip().lower()).strip(separator)


def on_config(config, **kw):
    config['mdx_configs'].setdefault('toc', {})['slugify'] = slugify
    return config


MATH = re.compile(r'<span class="arithmatex">\\\((.+?)\\\)</span>|<div class="arithmatex">\\\[(.+?)\\\]</div>', re.S)


def _mathml(tex: str, block: bool = False) -> str:
    from html import unescape
    from latex2mathml.converter import convert
    return convert(unescape(tex), display='block' if block else 'inline')


def on_page_content(html, page, **kw):
    "pymdownx.arithmatex's `\\(…\\)` spans → MathML (rendered natively by the browser: no script, no font)."
    _toc_maths(page.toc)
    return MATH.sub(lambda m: _mathml(m.group(1)) if m.group(1) is not None else _mathml(m.group(2), True), html)


def _toc_maths(items):
    "Headings' maths in the table of contents too (it is made from the headings' text, not from the page)."
    for t in items:
        t.title = re.sub(r'\\\((.+?)\\\)', lambda m: _mathml(m.group(1)), t.title)
        _toc_maths(t.children)


def main(argv=None):
    ap = argparse.ArgumentParser(description='Build the documentation site from the notebooks, offline.')
    ap.add_argument('--out', default=str(ROOT/'_docs'), help='the site (default: _docs)')
    ap.add_argument('--work', default=str(ROOT/'_proc'/'site_src'),
                    help='the staged Markdown (default: _proc/site_src)')
    a = ap.parse_args(argv)
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    t0 = time.time()
    problems = build(Path(a.out).resolve(), Path(a.work).resolve())
    report(problems)
    print(f'docs: site in {a.out} ({time.time() - t0:.0f} s); open {Path(a.out)/"index.html"}')
    return problems


if __name__ == '__main__':
    sys.path.insert(0, str(ROOT))
    sys.exit(1 if main()['failed'] else 0)       # the site is built all the same; a failure is still a failure
