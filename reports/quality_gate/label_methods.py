"""The label check's three methods in the loop: banking77 and huffpost, cpu preset, n=1000, seed 0, 6 KD steps,
SIMULATED teacher with --teacher-noise 0.2 (neighbour), --gate all with label_method confident / own / cleanlab
(other settings at their defaults). Writes label_methods.json: per run, the label check's rejections, precision and
recall per step (against the rows the noisy teacher relabelled), and test accuracy."""
import json, os, shutil, sys
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
from pgkd_nb.config import RunConfig, TeacherConfig
from pgkd_nb.loop import run_pgkd
from pgkd_nb.records import completed_steps
from pgkd_nb.repro import git_commit
from pgkd_nb.records import hardware_line

RUNS = Path(os.environ.get('QG_RUNS', '/tmp/quality_gate_label_methods'))
out = {'commit': git_commit(), 'hardware': hardware_line(), 'runs': []}
for ds in ('banking77', 'huffpost'):
    for method in ('confident', 'own', 'cleanlab'):
        run = RUNS/f'{ds}-{method}'
        shutil.rmtree(run, ignore_errors=True)
        cfg = RunConfig(dataset=ds, preset='cpu', n_samples=1000, kd_steps=6, seed=0, gate=f'all,label_method={method}',
                        teacher=TeacherConfig(noise=0.2, noise_mode='neighbour'))
        s = run_pgkd(cfg, run, progress=False)
        steps = [r['gate'] for r in completed_steps(run)[1:]]
        rej = sum(g['label'] for g in steps)
        caught = sum(round(g['label']*(g.get('label_precision') or 0)) for g in steps)
        out['runs'].append({'dataset': ds, 'label_method': method, 'label_rejected': rej, 'label_caught': caught,
                            'marked': s['noise']['marked'], 'per_step': [(g['label'], g.get('label_precision'),
                                                                          g.get('label_recall')) for g in steps],
                            'base_accuracy': s['baseline']['accuracy'], 'accuracy': s['pgkd']['accuracy'],
                            'gate_seconds': s['gate']['seconds']})
        print(out['runs'][-1], file=sys.stderr)
Path(__file__).with_suffix('.json').write_text(json.dumps(out, indent=1) + '\n')
