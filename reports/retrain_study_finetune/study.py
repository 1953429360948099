"""Issue 27: PGKD with a fine-tuned student (`top` preset), its retrain policy, step selection and controls.

Every arm is a PGKD run (`loop.run_pgkd`, SIMULATED teacher unless the arm says otherwise) at n = 1,000 on the
same D0 per seed; after each KD step the step's model is also scored on the test rows (`test_steps.json` in the
step folder), so the step that each selection criterion (validation loss, accuracy, macro F1) would keep can be
read off afterwards. Test numbers are never used to choose: `analyse.py` chooses on validation.

Arms (`ARMS`): `continue` / `scratch` (PGKD, retrain from the last step's weights / from the checkpoint),
`continue-e2` (continue, a fixed budget of 2 epochs per step), `more` (no new rows: each step trains the current
model further), `random-<policy>` (random pool rows, no guidance), `no_val-<policy>`, `no_hn-<policy>` (the
ablations). Usage:

    python reports/retrain_study_finetune/study.py ARMS DATASETS SEEDS [--jobs N] [--threads T] [--runs DIR]

prints and appends one JSON line per finished run to `results.jsonl` beside this file (a re-run skips them)."""
import argparse, json, multiprocessing, os, sys, time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

HERE = Path(__file__).resolve().parent
# the study's fixed settings: the `top` preset as tuned in tune_model0.py (see README.md), 4 KD steps of 64 rows
RUN = dict(preset='top', n_samples=1000, kd_steps=4, gen_batch=64, test_max=1500, pool_max=5000, patience=5)
POLICY = {'continue': dict(retrain='continue'), 'scratch': dict(retrain='scratch'),
          'continue-e2': dict(retrain='continue', student={'refit_epochs': 2})}
CONTROL = {'random': dict(val_report=False, hard_negatives=False,
                          teacher={'name': 'simulated', 'model': None, 'rule': 'random'}),
           'no_val': dict(val_report=False), 'no_hn': dict(hard_negatives=False)}


def arm_settings(arm) -> dict:
    "The RunConfig overrides of `arm`."
    if arm in POLICY: return POLICY[arm]
    if arm == 'more': return dict(strategy='more', retrain='continue')
    kind, _, policy = arm.partition('-')
    if kind not in CONTROL or policy not in POLICY: raise SystemExit(f"unknown arm {arm!r}")
    return {**POLICY[policy], **CONTROL[kind]}


def config(arm, dataset, seed):
    from pgkd_nb.config import config_from_dict
    s = {**RUN, **arm_settings(arm)}
    s['student'] = {'progress': False, **s.get('student', {})}
    return config_from_dict(dict(s, dataset=dataset, seed=seed))


def one_run(arm, dataset, seed, runs, threads) -> dict:
    "Run (or resume) one arm at one seed; per-step validation and test numbers, and the run's summary numbers."
    import contextlib, io, torch
    from pgkd_nb.data import stable_subsample
    from pgkd_nb.files import run_task
    from pgkd_nb.loop import run_pgkd
    from pgkd_nb.records import completed_steps, read_json, write_json
    from pgkd_nb.student import Student
    torch.set_num_threads(threads)
    cfg, out, t0 = config(arm, dataset, seed), Path(runs)/dataset/arm/f'seed{seed}', time.time()
    task = run_task(cfg)
    test = stable_subsample(task.test, cfg.test_max)

    def score(i, rec=None):
        p = out/f'step-{i:03d}'/'test_steps.json'
        if not p.exists() and (p.parent/'model').exists():
            m = Student.load(p.parent/'model', progress=False).evaluate(test)
            write_json(p, {k: m[k] for k in ('accuracy', 'macro_f1', 'loss')})

    with contextlib.redirect_stderr(io.StringIO()) as err:
        s = run_pgkd(cfg, out, task=task, progress=False, on_step=score)
    recs = completed_steps(out)
    steps = []
    for r in recs:
        p = out/f"step-{r['step']:03d}"/'test_steps.json'
        t = read_json(p) if p.exists() else None
        if r['step'] == 0: t = s['baseline']
        steps.append({'step': r['step'], 'val_loss': r['val_loss'], 'val_accuracy': r['val_accuracy'],
                      'val_macro_f1': r['val_macro_f1'], 'test_accuracy': t and t['accuracy'],
                      'test_macro_f1': t and t['macro_f1'], 'fit_epochs': r.get('fit_epochs'),
                      'stopped': r.get('stopped'), 'seconds': r['seconds'], 'n_accepted': r.get('n_accepted')})
    return {'arm': arm, 'dataset': dataset, 'seed': seed, 'best_step': s['best_step'],
            'baseline': s['baseline'], 'pgkd': s['pgkd'], 'steps': steps, 'n_test': s['n_test'],
            'warnings': s.get('warnings', []), 'stderr': err.getvalue()[-2000:], 'threads': threads,
            'run_seconds': s.get('wall_seconds'), 'hardware': s.get('hardware'), 'wall_seconds': round(time.time() - t0, 1)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('arms'), p.add_argument('datasets'), p.add_argument('seeds')
    p.add_argument('--jobs', type=int, default=2)
    p.add_argument('--runs', default='runs/retrain_study_finetune')
    p.add_argument('--threads', type=int, default=None, help='torch threads per run (default: cores / jobs)')
    a = p.parse_args(argv)
    res = HERE/'results.jsonl'
    done = {(r['arm'], r['dataset'], r['seed']) for r in map(json.loads, res.read_text().splitlines())} \
        if res.exists() else set()
    todo = [(arm, d, int(s)) for arm in a.arms.split(',') for d in a.datasets.split(',') for s in a.seeds.split(',')
            if (arm, d, int(s)) not in done]           # arm by arm: the first arms named finish first
    for arm, *_ in todo: arm_settings(arm)                     # an unknown arm fails before anything runs
    threads = a.threads or max(1, (os.cpu_count() or 1)//a.jobs)
    with ProcessPoolExecutor(a.jobs, mp_context=multiprocessing.get_context('spawn')) as ex:
        futs = {ex.submit(one_run, *t, a.runs, threads): t for t in todo}
        for f in as_completed(futs):
            try: row = f.result()
            except Exception as e:
                print(f"FAILED {futs[f]}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
                continue
            with open(res, 'a') as fh: fh.write(json.dumps(row) + '\n')
            print(json.dumps({k: row[k] for k in ('arm', 'dataset', 'seed', 'best_step', 'wall_seconds')},
                             default=str), {k: round(v, 4) for k, v in row['pgkd'].items()}, flush=True)


if __name__ == '__main__':
    main()
