"""Data faults a user meets first: where the shipped tasks are read from, a Hub name with no local copy and no
network, conflicting duplicates, mixed JSON types, a very long CSV field, and a file too small to leave a pool."""
import csv, gzip, json, subprocess, time
from pathlib import Path

import pytest

import pgkd_nb.data as data
from pgkd_nb.data import Task, dedup_task, find_task_dir, data_dirs, load_task
from pgkd_nb.files import hub_dataset, inspect_data, load_data

from conftest import one_line_error

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ('ag_news', 'amazon_hierarchical', 'banking77', 'huffpost', 'imdb', 'inshorts', 'yahoo_answers')


def write_csv(path, rows, header=('text', 'label')):
    with open(path, 'w', newline='', encoding='utf-8') as f: csv.writer(f).writerows([header, *rows])
    return path


def write_jsonl(path, records):
    path.write_text(''.join(json.dumps(r) + '\n' for r in records), encoding='utf-8')
    return path


def rows_of(n_per_class=20, classes=('sport', 'news', 'tech')):
    return [(f'{k} headline number {i}', k) for k in classes for i in range(n_per_class)]


# 1. the shipped tasks are read from the repository's data/ folder -----------------------------------------------

def test_shipped_tasks_are_read_from_the_repository(monkeypatch):
    monkeypatch.delenv('PGKD_DATA_DIR', raising=False)
    assert all(d.resolve().is_relative_to(REPO) for d in data_dirs()), data_dirs()     # nothing beside the checkout
    for name in SHIPPED: assert find_task_dir(name) == REPO/'data'/name, name
    t = load_task('banking77')
    assert (t.source, len(t.labels), len(t.train), len(t.test)) == (str(REPO/'data'/'banking77'), 77, 9992, 3079)


def test_data_dir_and_env_still_come_first(tmp_path, monkeypatch):
    mine = tmp_path/'ag_news'
    mine.mkdir()
    (mine/'labels.json').write_text('["a", "b"]')
    for split in ('train', 'test'):
        with gzip.open(mine/f'{split}.jsonl.gz', 'wt') as f:
            f.write(''.join(json.dumps({'text': f'{split} {i}', 'label': 'ab'[i % 2]}) + '\n' for i in range(6)))
    assert find_task_dir('ag_news', tmp_path) == mine
    monkeypatch.setenv('PGKD_DATA_DIR', str(tmp_path))
    assert find_task_dir('ag_news') == mine
    assert len(load_task('ag_news').train) == 6


# 2. CI tests a clone made outside the working tree ---------------------------------------------------------------

def test_ci_tests_a_clone_outside_the_working_tree():
    ci = REPO/'.ci'/'run'
    subprocess.run(['bash', '-n', str(ci)], check=True)
    code = '\n'.join(l.split('  #')[0] for l in ci.read_text().splitlines() if not l.lstrip().startswith('#'))
    assert 'HF_HUB_OFFLINE=1' in code and 'apt-get install -y -qq chromium' in code and 'mktemp -d' in code
    steps = [code.index(s) for s in ('mktemp -d', 'git clone', 'python3 -m venv', 'cd "$CLONE"', 'make test',
                                      'make check')]
    assert steps == sorted(steps), steps


# 3. a Hub name with no local copy and no network: one line at once ------------------------------------------------

@pytest.fixture
def offline(monkeypatch):
    "HF_HUB_OFFLINE=1, also for `huggingface_hub`/`datasets` already imported by earlier tests."
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    import huggingface_hub.constants as hc
    import datasets.config as dc
    monkeypatch.setattr(hc, 'HF_HUB_OFFLINE', True)
    monkeypatch.setattr(dc, 'HF_HUB_OFFLINE', True, raising=False)


def test_hub_name_offline_is_one_line_at_once(offline, capsys, tmp_path, monkeypatch):
    empty = tmp_path/'empty'
    empty.mkdir()
    monkeypatch.setattr(data, 'PKG_DIR', tmp_path/'clone'/'pgkd_nb')     # a clone without this task's folder
    import pgkd_nb.loop, datasets  # noqa: F401  (imported first: torch takes seconds to import, the Hub must not)
    t0 = time.time()
    line = one_line_error(capsys, ['run', '--dataset', 'ag_news', '--data-dir', empty, '--out', tmp_path/'run'],
                          "dataset 'ag_news'", 'no local copy', str(empty), 'HF_HUB_OFFLINE', '--data-dir',
                          'PGKD_DATA_DIR', 'network')
    assert time.time() - t0 < 5, line


def test_hf_spec_offline_is_one_line_at_once(offline, capsys):
    import datasets  # noqa: F401  (imported first: the timing is of the Hub, not of an import)
    t0 = time.time()
    line = one_line_error(capsys, ['inspect', '--data', 'hf:pgkd-test/no-such-set'], 'hf:pgkd-test/no-such-set',
                          'no local copy', 'HF_HUB_OFFLINE', 'network', '--data FILE')
    assert time.time() - t0 < 5, line


def test_a_network_error_becomes_the_same_line(monkeypatch):
    monkeypatch.delenv('HF_HUB_OFFLINE', raising=False)
    import httpx
    def unreachable(*a, **kw): raise httpx.ConnectError('[Errno -2] Name or service not known')
    with pytest.raises(ConnectionError, match="no local copy.*ConnectError.*network"):
        hub_dataset('hf:org/x', load_dataset=unreachable)
    with pytest.raises(ConnectionError, match="dataset 'imdb': no local copy.*--data-dir"):
        data.load_hub('imdb', load_dataset=unreachable)


# 4. conflicting duplicates ---------------------------------------------------------------------------------------

def test_conflicting_labels_are_counted_and_dropped(tmp_path, capsys):
    rows = rows_of() + [('sport headline number 1', 'sport'),                   # a plain duplicate
                        ('tech headline number 2', 'news'), ('tech headline number 2', 'tech')]   # a conflict
    p = write_csv(tmp_path/'mine.csv', rows)
    task = load_data(p)
    assert task.dropped['train_duplicates'] == 1 and task.dropped['conflicting_labels'] == 3
    assert 'tech headline number 2' not in {r['text'] for r in task.train + task.test}
    assert task.conflicts == {'tech headline number 2': ['tech', 'news']}
    from pgkd_nb.cli import main
    assert main(['inspect', '--data', str(p), '--n-samples', '20']) == 0
    out = capsys.readouterr().out
    assert "3 rows of 1 text with conflicting labels" in out and "'tech headline number 2' (tech, news)" in out
    assert '1 duplicates' in out


def test_conflicts_across_splits_of_a_task_folder():
    p, q = {'text': 'p', 'label': 'a'}, {'text': 'q', 'label': 'a'}
    t = dedup_task(Task('x', ['a', 'b'], train=[p, p, q, {'text': 'r', 'label': 'b'}],
                        test=[{'text': 'q', 'label': 'b'}, {'text': 's', 'label': 'b'}]))
    assert [r['text'] for r in t.train] == ['p', 'r'] and [r['text'] for r in t.test] == ['s']
    assert t.dropped == {'conflicting_labels': 2, 'train_duplicates': 1, 'train_in_test': 0, 'test_duplicates': 0}


# 5. mixed JSON types ---------------------------------------------------------------------------------------------

def test_mixed_label_types_are_one_line(tmp_path, capsys):
    recs = [{'text': f'row {i}', 'label': i % 2} for i in range(10)]
    p = write_jsonl(tmp_path/'mixed.jsonl', recs[:4] + [{'text': 'row x', 'label': '1'}] + recs[4:])
    one_line_error(capsys, ['inspect', '--data', p], f'{p}:5', "label '1' is a string", f'{p}:1', 'an integer',
                   'same JSON type')
    p = write_jsonl(tmp_path/'bool.jsonl', recs + [{'text': 'row y', 'label': True}])
    one_line_error(capsys, ['run', '--data', p, '--out', tmp_path/'run'], f'{p}:11', 'label True is a boolean')


def test_list_texts_are_one_line(tmp_path, capsys):
    recs = [{'text': f'row {i}', 'label': 'ab'[i % 2]} for i in range(10)]
    p = write_jsonl(tmp_path/'list.jsonl', recs[:2] + [{'text': ['two', 'parts'], 'label': 'a'}] + recs[2:])
    one_line_error(capsys, ['inspect', '--data', p], f'{p}:3', "column 'text' holds a list", '--text-col')
    import pyarrow as pa, pyarrow.parquet as pq
    pq.write_table(pa.table({'text': [['a', 'b'], ['c']], 'label': ['x', 'y']}), tmp_path/'list.parquet')
    one_line_error(capsys, ['inspect', '--data', tmp_path/'list.parquet'], f"{tmp_path/'list.parquet'} row 1",
                   "column 'text' holds a list")


def test_task_folder_rows_name_the_type(tmp_path):
    p = write_jsonl(tmp_path/'t.jsonl', [{'text': 'a', 'label': 'x'}, {'text': ['a'], 'label': 'x'}])
    with pytest.raises(ValueError, match=r't.jsonl:2: the text is a list, not a string'): data.read_jsonl(p, ['x'])


# 6. a CSV field over the csv module's 131,072-character limit -----------------------------------------------------

def test_a_very_long_csv_field_is_read(tmp_path, capsys):
    long = 'word ' * 40_000                                                   # 200,000 characters
    p = write_csv(tmp_path/'long.csv', rows_of() + [(long, 'news')])
    from pgkd_nb.cli import main
    assert main(['inspect', '--data', str(p), '--n-samples', '20']) == 0
    assert '49 train rows, 12 test rows, 3 classes' in capsys.readouterr().out
    one_line_error(capsys, ['run', '--data', p, '--n-samples', '500', '--out', tmp_path/'run'],
                   'n=500 is more than the 49 training rows')


# 7. a small file: inspect says what pool the simulated teacher gets ------------------------------------------------

def test_inspect_says_the_pool_left_for_the_simulated_teacher(tmp_path, capsys):
    p = write_csv(tmp_path/'small.csv', rows_of(n_per_class=150))              # 450 rows: 360 train, 90 test
    info = inspect_data(p, n_samples=360)
    assert info['plan']['pool'] == 0 and info['plan']['pool_need'] == 320 and info['plan']['n_max'] == 40
    from pgkd_nb.cli import main
    assert main(['inspect', '--data', str(p), '--n-samples', '360']) == 0
    out = capsys.readouterr().out
    assert 'a pool of 0 rows' in out and 'the simulated teacher has no rows to give' in out
    assert 'n ≤ 40 leaves a pool of ≥ 320 rows' in out and '(--kd-steps 10 × --gen-batch 32)' in out
    assert main(['inspect', '--data', str(p)]) == 0                             # the default --n-samples 1000
    out = capsys.readouterr().out
    assert 'would fail: n=1000 is more than the 360 training rows' in out and 'n ≤ 40 leaves' in out
    assert main(['inspect', '--data', str(p), '--n-samples', '40']) == 0
    assert 'a pool of 320 rows' in capsys.readouterr().out
