"""The quality gate and the noisy simulated teacher on synthetic embeddings and probabilities (fast, no model)."""
import numpy as np
import pytest

from pgkd_nb.data import load_task, DEMO_TASK
from pgkd_nb.gate import GateConfig, GateContext, gate_rows, precision_recall, rejection_counts, MinHashIndex
from pgkd_nb.noise import TeacherNoise, noise, dupes, near_copy, wrong_classes
from pgkd_nb.data import same_text_key

TASK = load_task(DEMO_TASK)
LABELS = ['a', 'b', 'c']
C = np.eye(3, dtype=np.float32)                       # class centroids: the axes


def ctx_for(rows, probs, **kw):
    "A context on synthetic data: embeddings are the class axis of the label a row *really* has (its 'true')."
    emb = {r['text']: C[LABELS.index(r.get('true', r['label']))] for r in rows}
    val_y = np.repeat(np.arange(3), 10)
    val_p = np.full((30, 3), 0.1)
    val_p[np.arange(30), val_y] = 0.8
    return GateContext(LABELS, ref_texts=[r['text'] for r in TASK.train[:200]],
                       embed=lambda ts: np.stack([emb.get(t, np.ones(3)/np.sqrt(3)) for t in ts]),
                       probs=np.asarray(probs), val_probs=val_p, val_y=val_y, val_emb=C[val_y]*0.9 + 0.05,
                       centroids=C, **kw)


def test_gate_rejects_each_fault_with_its_check():
    rows = [{'text': near_copy(TASK.train[3]['text'], 0), 'label': 'a'},            # near-copy of a reference
            {'text': 'the committee approved the new budget on tuesday', 'label': 'b', 'true': 'a'},   # wrong label
            {'text': 'a fine and original sentence about gardens', 'label': 'c'}]
    probs = [[.8, .1, .1], [.9, .05, .05], [.1, .1, .8]]
    kept, rejected = gate_rows(rows, ctx_for(rows, probs))
    assert kept == [rows[2]]
    assert [(r['index'], r['check']) for r in rejected] == [(0, 'dupes'), (1, 'label')]
    assert [x['check'] for x in rejected[1]['reasons']] == ['label', 'ambiguity']
    assert rejected[0]['reasons'][0]['match'] == TASK.train[3]['text']
    assert rejection_counts(rejected) == {'dupes': 1, 'label': 1, 'ambiguity': 0}


def test_near_copies_within_one_reply_keep_the_first():
    t = 'an entirely new headline about lighthouse keepers in maine'
    rows = [{'text': t, 'label': 'a'}, {'text': t.upper() + '!', 'label': 'a'}]
    for method in ('minhash', 'cosine', 'both'):
        kept, rejected = gate_rows(rows, ctx_for(rows, [[.8, .1, .1]]*2), GateConfig(checks=('dupes',),
                                                                                         dupe_method=method))
        assert kept == rows[:1] and rejected[0]['index'] == 1, method


def test_minhash_index_grows_between_steps():
    idx = MinHashIndex(['first reference text about rivers'])
    idx.add(['a kept row from step one about mountain goats'])
    j, k = idx.best(__import__('pgkd_nb.gate', fromlist=['minhashes']).minhashes(
        ['A kept row from step one about mountain goats!'])[0])
    assert k == 1 and j > 0.9 and len(idx) == 2


def test_missing_context_names_the_field_and_the_fix():
    with pytest.raises(ValueError, match=r"'label' needs GateContext.probs.*drop 'label' from GateConfig.checks"):
        gate_rows([{'text': 'x y z', 'label': 'a'}], GateContext(LABELS), GateConfig(checks=('label',)))


def test_noise_marks_and_gate_precision_recall():
    rows = [dict(r) for r in TASK.train[:40]]
    labels = TASK.labels
    cents = np.random.default_rng(0).normal(size=(len(labels), 8))
    cents /= np.linalg.norm(cents, axis=1, keepdims=True)
    out, marks = TeacherNoise(noise=0.25, dupes=0.1, seed=3).apply(rows, labels, TASK.train[100:120], 2,
                                                                    centroids=cents)
    assert out == TeacherNoise(noise=0.25, dupes=0.1, seed=3).apply(rows, labels, TASK.train[100:120], 2,
                                                                     centroids=cents)[0]
    kinds = [m['kind'] for m in marks]
    assert kinds.count('label') in (10, 11) and kinds.count('dupe') == 4
    for m in marks:
        assert out[m['index']]['label'] == m['label'] and out[m['index']]['text'] == m['text']
        if m['kind'] == 'dupe': assert same_text_key(m['text']) != same_text_key(m['source'])
        else: assert m['label'] != m['true_label'] == rows[m['index']]['label']
    fake_rejected = [{'text': m['text'], 'check': 'dupes'} for m in marks if m['kind'] == 'dupe'] + \
                    [{'text': rows[0]['text'], 'check': 'label'}]
    pr = precision_recall(fake_rejected, marks, kind='dupe')
    assert (pr['caught'], pr['recall']) == (4, 1.0)


def test_noise_modes_pick_their_wrong_class():
    rows = [{'text': f't{i}', 'label': 'a'} for i in range(10)]
    conf = [[5, 0, 3], [0, 5, 0], [1, 0, 5]]
    assert {r['label'] for r in noise(rows, LABELS, 1.0, wrong_classes(3, 'confusion', conf))[0]} == {'c'}
    near = np.array([[1, 0, 0], [.9, .44, 0], [0, 0, 1.]])
    assert {r['label'] for r in noise(rows, LABELS, 1.0, wrong_classes(3, centroids=near))[0]} == {'b'}
    assert {r['label'] for r in noise(rows, LABELS, 1.0, wrong_classes(3, 'uniform'))[0]} <= {'b', 'c'}
    assert dupes(rows, [], 0.5) == (rows, [])
