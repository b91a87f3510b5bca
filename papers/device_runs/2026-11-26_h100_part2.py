"""Device script (lent GPU), part 2: the missing paper-literal RAVDESS cells, most wanted first."""
import os
import sys
import time

import torch

from sierlib.sweep import bundle_records, plan_sweep, run_in_process

if __name__ == "__main__":  # worker processes are spawned: they re-import this file
    OUT, PACK = os.environ["OUT"], ".gpu/pack"
    workers, minutes = int(sys.argv[1]), float(sys.argv[2])
    plan = (plan_sweep("ravdess", depths=[2], gammas=[None, 2.5]) + plan_sweep("ravdess", depths=[3], gammas=[None, 2.5])
            + plan_sweep("ravdess", depths=[2, 3], gammas=[1.25, 3.33]) + plan_sweep("ravdess", depths=[4], gammas=[1.25, 3.33]))
    t = time.perf_counter()
    report = run_in_process(plan, workers=workers, out_dir=f"{OUT}/runs", device="cuda", pack=PACK,
                            max_minutes=minutes, progress=False)
    wall = time.perf_counter() - t
    print(report, flush=True)
    print(f"BENCH sweep: {len(report.finished)} RAVDESS runs in {wall:.0f} s with {workers} workers on one "
          f"{torch.cuda.get_device_name(0)} = {3600 * len(report.finished) / wall:.0f} runs/hour", flush=True)
    bundle_records(f"{OUT}/ravdess-records.tar.gz", f"{OUT}/runs")
