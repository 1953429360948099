"""The small quality-gate measurement of reports/quality_gate/README.md: huffpost, cpu preset, n=1000, 10 KD steps,
seeds 0-2, noise 0 / 0.2 (neighbour), gate off / all; one process, one run at a time. Writes raw.csv beside it."""
import csv, os, sys, time
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
from pgkd_nb.config import RunConfig, TeacherConfig
from pgkd_nb.loop import run_pgkd
from pgkd_nb.records import completed_steps, read_json, step_path
from pgkd_nb.gate import precision_recall

HERE = Path(__file__).parent
RUNS = Path(os.environ.get('QG_RUNS', '/tmp/quality_gate_runs'))
COLS = ['seed', 'noise', 'gate', 'base_accuracy', 'accuracy', 'base_macro_f1', 'macro_f1', 'best_step',
        'kd_steps_run', 'rows_added', 'marked', 'marked_kept', 'gate_rejected', 'rej_dupes', 'rej_label',
        'rej_ambiguity', 'gate_precision', 'gate_recall', 'label_check_precision', 'label_check_recall',
        'gate_s_per_step', 'step_s_per_step', 'wall_s']


def row(s, out, seed, noise, gate):
    kd = completed_steps(out)[1:]
    rej = [x for r in kd if 'gate' in r for x in read_json(step_path(out, r['step'])/'gate_rejected.json')]
    marks = [m for r in kd if 'noise' in r for m in read_json(step_path(out, r['step'])/'marks.json')]
    g, n = s.get('gate') or {}, s.get('noise') or {}
    lab = precision_recall(rej, marks, check='label', kind='label') if gate and marks else {}
    nan = lambda x: '' if x is None or x != x else round(x, 4)
    return {'seed': seed, 'noise': noise, 'gate': gate or 'off', 'base_accuracy': s['baseline']['accuracy'],
            'accuracy': s['pgkd']['accuracy'], 'base_macro_f1': s['baseline']['macro_f1'],
            'macro_f1': s['pgkd']['macro_f1'],
            'best_step': s['best_step'], 'kd_steps_run': len(kd), 'rows_added': s['n_added'],
            'marked': n.get('marked', 0), 'marked_kept': n.get('kept', 0), 'gate_rejected': g.get('rejected', ''),
            'rej_dupes': g.get('dupes', ''), 'rej_label': g.get('label', ''), 'rej_ambiguity': g.get('ambiguity', ''),
            'gate_precision': nan(g.get('precision')), 'gate_recall': nan(g.get('recall')),
            'label_check_precision': nan(lab.get('precision')), 'label_check_recall': nan(lab.get('recall')),
            'gate_s_per_step': round(g['seconds']/len(kd), 3) if g and kd else '',
            'step_s_per_step': round(sum(r['seconds'] for r in kd)/len(kd), 3) if kd else '',
            'wall_s': s['wall_seconds']}


def main():
    path, done = HERE/'raw.csv', set()
    if path.exists(): done = {(r['seed'], r['noise'], r['gate']) for r in csv.DictReader(open(path))}
    new = not path.exists()
    with open(path, 'a', newline='') as f:
        w = csv.DictWriter(f, COLS)
        if new: w.writeheader()
        for seed in (0, 1, 2):
            for noise in (0.0, 0.2):
                for gate in ('', 'all'):
                    if (str(seed), str(noise), gate or 'off') in done: continue
                    cfg = RunConfig(dataset='huffpost', preset='cpu', n_samples=1000, kd_steps=10, seed=seed,
                                    gate=gate, teacher=TeacherConfig(noise=noise, noise_mode='neighbour'))
                    out = RUNS/f"s{seed}-n{noise}-{gate or 'off'}"
                    t0 = time.time()
                    s = run_pgkd(cfg, out, progress=False)
                    w.writerow(row(s, out, seed, noise, gate))
                    f.flush()
                    print(f"seed {seed} noise {noise} gate {gate or 'off'}: {time.time() - t0:.0f} s", file=sys.stderr)


if __name__ == '__main__': main()
