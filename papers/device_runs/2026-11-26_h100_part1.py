"""Device script (lent GPU): a timed Emo-DB benchmark, then the missing paper-literal RAVDESS cells."""
import os
import statistics
import sys
import time

import torch

from sierlib.config import RunConfig, RunOptions
from sierlib.experiments import run
from sierlib.sweep import load_pack, bundle_records, plan_sweep, run_in_process

OUT, PACK = os.environ["OUT"], ".gpu/pack"
workers, minutes = int(sys.argv[1]), float(sys.argv[2])
print("device:", torch.cuda.get_device_name(0), "torch", torch.__version__, flush=True)
# 1. one Emo-DB 30-epoch run at a time (default network, AL gamma 3.33), folds 0-2: wall time per run
config = RunConfig()
meta, feats = load_pack(PACK, config)
times = []
for fold in range(3):
    t = time.perf_counter()
    rec = run(config.replace(fold=fold), RunOptions(device="cuda", out_dir=f"{OUT}/bench"), meta=meta, feats=feats,
              progress=False)
    times.append(time.perf_counter() - t)
    print(f"emodb fold {fold}: {times[-1]:.1f} s, test acc {rec['test_accuracy']:.3f}", flush=True)
print(f"BENCH emodb 30-epoch run on {torch.cuda.get_device_name(0)}: median {statistics.median(times):.1f} s "
      f"(first includes CUDA start-up): {', '.join(f'{t:.1f}' for t in times)}", flush=True)
# 2. the paper-literal cells still missing, most wanted first
plan = (plan_sweep("ravdess", depths=[2, 3], gammas=[None, 1.25, 2.5, 3.33])
        + plan_sweep("ravdess", depths=[4], gammas=[1.25, 3.33])
        + plan_sweep("ravdess", depths=[1], gammas=[2.5, None], encoders=["tdnn_bilstm"]))
t = time.perf_counter()
report = run_in_process(plan, workers=workers, out_dir=f"{OUT}/runs", device="cuda", pack=PACK,
                        max_minutes=minutes, progress=False)
wall = time.perf_counter() - t
print(report, flush=True)
print(f"BENCH sweep: {len(report.finished)} runs in {wall:.0f} s with {workers} workers on one "
      f"{torch.cuda.get_device_name(0)} = {3600 * len(report.finished) / wall:.0f} runs/hour", flush=True)
bundle_records(f"{OUT}/ravdess-records.tar.gz", f"{OUT}/runs")
