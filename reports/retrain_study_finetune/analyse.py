"""Issue 27: the tables of the fine-tuned study, from `results.jsonl` (written by `study.py`) into `tables.md`.

1. Retrain policy, chosen on validation: the validation loss / accuracy of the step each run keeps, and for the
   record the test accuracy of that step and its lift over model_0 (paired by seed).
2. Step selection: the step each criterion (validation loss, accuracy, macro F1) keeps, read off the per-step
   records (with 4 KD steps and a patience of 5 the loop never stops early, so this is the step a run with that
   criterion would keep), and its test lift.
3. A fine-tuned Table 4: PGKD, the random-rows and more-training controls and the two ablations, with PGKD minus
   each control paired by seed.
Usage: python reports/retrain_study_finetune/analyse.py [PGKD_POLICY]"""
import json, sys
from collections import defaultdict
from pathlib import Path
from pgkd_nb.loop import patience_state, selection_scores
from pgkd_nb.tables import paired_t, _mean_sd, _pm, INTERVAL_NOTE

HERE = Path(__file__).resolve().parent
ROWS = [json.loads(x) for x in (HERE/'results.jsonl').read_text().splitlines()]
BY = {(r['arm'], r['dataset'], r['seed']): r for r in ROWS}
DATASETS = sorted({r['dataset'] for r in ROWS})
CRITERIA = {'validation loss': 'loss', 'validation accuracy': 'accuracy', 'validation macro F1': 'macro_f1'}


def seeds(arm, d): return sorted(s for (a, dd, s) in BY if a == arm and dd == d)


def ci(diffs) -> str:
    if not diffs: return 'not run'
    m, h = paired_t(diffs)
    return f'{m:+.3f}' + (' (n=1)' if h is None else f' [{m - h:+.3f}, {m + h:+.3f}]')


def mean(v): return f'{_mean_sd(v)[0]:.4f}' if v else '-'


def kept(r, criterion='validation loss') -> dict:
    "The step `criterion` keeps in run `r`, by the loop's own rule (`--select`; a tie keeps the later step)."
    return r['steps'][patience_state(selection_scores(r['steps'], CRITERIA[criterion]), 99)['best_step']]


def table(head, rows) -> list[str]:
    return ['| ' + ' | '.join(head) + ' |', '|' + '---|'*len(head)] + ['| ' + ' | '.join(map(str, r)) + ' |'
                                                                       for r in rows]


def policy_table(policies) -> list[str]:
    rows = []
    for d in DATASETS:
        for p in policies:
            rs = [BY[(p, d, s)] for s in seeds(p, d)]
            if not rs: continue
            k = [kept(r) for r in rs]
            rows.append([d, p, len(rs), mean([x['val_loss'] for x in k]), mean([x['val_accuracy'] for x in k]),
                         ', '.join(str(x['step']) for x in k), mean([r['steps'][0]['val_loss'] for r in rs]),
                         _pm([x['test_accuracy'] for x in k]),
                         ci([x['test_accuracy'] - r['steps'][0]['test_accuracy'] for x, r in zip(k, rs)]),
                         ci([x['test_macro_f1'] - r['steps'][0]['test_macro_f1'] for x, r in zip(k, rs)])])
    return table(['dataset', 'policy', 'seeds', 'kept val loss', 'kept val acc', 'kept step per seed',
                  'model_0 val loss', 'test acc (kept)', 'Δ acc vs model_0 [95% CI]', 'Δ macro F1 [95% CI]'], rows)


def selection_table(policies) -> list[str]:
    rows = []
    for d in DATASETS:
        for p in policies:
            rs = [BY[(p, d, s)] for s in seeds(p, d)]
            for c in CRITERIA:
                if not rs: continue
                k = [kept(r, c) for r in rs]
                rows.append([d, p, c, ', '.join(str(x['step']) for x in k), _pm([x['test_accuracy'] for x in k]),
                             ci([x['test_accuracy'] - r['steps'][0]['test_accuracy'] for x, r in zip(k, rs)]),
                             ci([x['test_macro_f1'] - r['steps'][0]['test_macro_f1'] for x, r in zip(k, rs)])])
    return table(['dataset', 'policy', 'kept by', 'kept step per seed', 'test acc', 'Δ acc vs model_0 [95% CI]',
                  'Δ macro F1 [95% CI]'], rows)


def table4(pgkd, criterion='validation loss') -> list[str]:
    arms = [('PGKD', pgkd), ('control: random pool rows', f'random-{pgkd}'),
            ('control: more training, no rows', 'more'), ('w/o validation report', f'no_val-{pgkd}'),
            ('w/o hard negatives', f'no_hn-{pgkd}')]
    rows = []
    for d in DATASETS:
        for metric, key in (('accuracy', 'test_accuracy'), ('macro F1', 'test_macro_f1')):
            base = [BY[(pgkd, d, s)]['steps'][0][key] for s in seeds(pgkd, d)]
            cells = [d, metric, _pm(base)]
            for _, a in arms:
                vals = [kept(BY[(a, d, s)], criterion)[key] for s in seeds(a, d)]
                cells.append(_pm(vals) if vals else 'not run')
            for _, a in arms[1:3]:
                both = [s for s in seeds(pgkd, d) if (a, d, s) in BY]
                cells.append(ci([kept(BY[(pgkd, d, s)], criterion)[key] - kept(BY[(a, d, s)], criterion)[key]
                                 for s in both]))
            cells.append(ci([kept(BY[(pgkd, d, s)], criterion)[key] - BY[(pgkd, d, s)]['steps'][0][key]
                             for s in seeds(pgkd, d)]))
            rows.append(cells)
    return table(['dataset', 'metric', 'model_0', *[n for n, _ in arms], 'PGKD − random [95% CI]',
                  'PGKD − more training [95% CI]', 'PGKD − model_0 [95% CI]'], rows)


def timing() -> list[str]:
    rows = []
    for d in DATASETS:
        kd = [s['seconds'] for r in ROWS if r['dataset'] == d and r['arm'] != 'more' for s in r['steps'][1:]]
        m0 = [r['steps'][0]['seconds'] for r in ROWS if r['dataset'] == d]
        ep0 = [r['steps'][0]['fit_epochs'] for r in ROWS if r['dataset'] == d]
        cap = sum(r['steps'][0]['stopped'] == 'cap' for r in ROWS if r['dataset'] == d)
        rows.append([d, len(m0), f'{_mean_sd(m0)[0]:.1f}', f'{min(ep0)}–{max(ep0)}', cap, len(kd),
                     f'{_mean_sd(kd)[0]:.1f}', f'{max(kd):.1f}'])
    return table(['dataset', 'runs', 'model_0 fit s (mean)', 'model_0 epochs', 'model_0 at its cap',
                  'KD steps (teacher arms)', 'KD step s (mean)', 'KD step s (max)'], rows)


def main():
    pgkd = sys.argv[1] if len(sys.argv) > 1 else 'scratch'
    policies = [p for p in ('continue', 'scratch', 'continue-e2') if any(r['arm'] == p for r in ROWS)]
    out = ['# Fine-tuned study: tables (generated by analyse.py from results.jsonl)', '',
           f'{INTERVAL_NOTE} Test numbers are never used to choose.', '',
           '## 1. Retrain policy (kept step by validation loss, as the paper)', '', *policy_table(policies), '',
           '## 2. Step selection criterion', '', *selection_table(policies), '',
           f'## 3. Fine-tuned Table 4 (PGKD = `{pgkd}`, kept step by validation loss)', '', *table4(pgkd), '',
           '## Seconds per fit (wall, one torch thread per run, 2–5 study processes and a CI run sharing the 2 cores)', '', *timing(), '']
    (HERE/'tables.md').write_text('\n'.join(out))
    print('\n'.join(out))


if __name__ == '__main__':
    main()
