"""Issue 27's target "a `top`-preset KD step on banking77 at n = 1,000 in ≤ 60 s on this CPU": one run of 3 KD steps
(`--retrain scratch` and `continue`, 32 rows a step, SIMULATED teacher) on one torch thread, timing each step by wall
clock and by this process's CPU time. On one thread, CPU seconds are what the step takes on a core of its own, so
the number holds while other jobs share the machine; the wall seconds are printed beside them.
Usage: python reports/retrain_study_finetune/step_time.py RUNS_DIR [THREADS] (default 1; with 2, CPU seconds add up
both threads' work, and only the wall seconds of a quiet machine say how long a step takes)"""
import json, os, sys, time
import torch
from pgkd_nb.config import RunConfig
from pgkd_nb.loop import run_pgkd

runs, threads = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1
torch.set_num_threads(threads)
for retrain in ('scratch', 'continue'):
    marks = [(time.perf_counter(), time.process_time())]
    def on_step(i, rec): marks.append((time.perf_counter(), time.process_time()))
    cfg = RunConfig(dataset='banking77', preset='top', n_samples=1000, kd_steps=3, gen_batch=32, test_max=1500,
                    pool_max=5000, retrain=retrain, student={'progress': False})
    s = run_pgkd(cfg, f'{runs}/step-time-{retrain}-t{threads}', progress=False, on_step=on_step)
    # marks[1] is step 1's end: the steps after it are timed from one end to the next (step 1 also reads the caches)
    steps = [{'step': i + 2, 'wall_s': round(b[0] - a[0], 1), 'cpu_s': round(b[1] - a[1], 1),
              'recorded_s': round(s['steps'][i + 2]['seconds'], 1)} for i, (a, b) in enumerate(zip(marks[1:], marks[2:]))]
    print(json.dumps({'retrain': retrain, 'threads': threads, 'load_avg': [round(x, 2) for x in os.getloadavg()], 'steps': steps, 'hardware': s['hardware']}), flush=True)
