"""Sweeps: run notebooks/04_train.ipynb through papermill for every combination asked for.

A sweep is a list of runs (each a full parameter set, see :func:`sierlib.train.make_params`).
:func:`run_sweep` executes the runs that have no finished record yet with N parallel workers
(threads, each driving one papermill kernel process), one progress bar with an ETA, and:

- resumability: a run whose finished JSON record exists is skipped; a record is written
  atomically only when the run ends, so a sweep killed halfway and started again finishes the
  rest and loses or duplicates nothing;
- each executed notebook is kept under ``results/notebooks/<corpus>/`` (git-ignored); a failed
  run is reported with the path of its notebook and does not stop the others;
- on CPU the cores are split between workers (``torch.set_num_threads`` in each kernel); on a
  GPU machine the workers share the GPU;
- :func:`collect_runs` gathers every record into ``results/runs_<corpus>.csv`` (one row per run)
  and :func:`bundle_records` packs records into one file to bring back from a lent machine.

Command line: ``python -m sierlib.sweep --help``.
"""
from __future__ import annotations

import argparse
import itertools
import os
import tarfile
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from .corpora import REPO_ROOT
from .train import N_FOLDS, make_params, read_record, run_name

GAMMAS = (None, 1.25, 2.5, 3.33)
DEPTHS = (1, 2, 3, 4)
# Hyperparameter grid of the paper's section 4.2.
GRID = {"kernel_size": (5, 2), "n_filters": (128, 64), "gru_hidden": (256, 128), "fc_hidden": (128, 64)}
NOTEBOOK = REPO_ROOT / "notebooks" / "04_train.ipynb"


def plan_sweep(corpus: str, folds=None, gammas=GAMMAS, depths=DEPTHS, grid: bool = False, seeds=(0,),
               encoders=("2dcnn_bigru",), **fixed) -> list[dict]:
    """Every run of corpus x fold x gamma x depth (x the section 4.2 grid if ``grid``) x seed x
    encoder, as validated parameter sets. ``fixed`` sets other run parameters (e.g. epochs)."""
    folds = range(N_FOLDS[corpus]) if folds is None else folds
    grid_points = [dict(zip(GRID, values)) for values in itertools.product(*GRID.values())] if grid else [{}]
    plan = []
    for encoder, depth, gamma, point, seed, fold in itertools.product(encoders, depths, gammas, grid_points,
                                                                        seeds, folds):
        if encoder != "2dcnn_bigru":
            if depth != depths[0] or point != grid_points[0]:
                continue  # depth and the grid size the 2D CNN biGRU encoder only
            plan.append(make_params(corpus=corpus, fold=fold, gamma=gamma, seed=seed, encoder=encoder, **fixed))
            continue
        plan.append(make_params(corpus=corpus, fold=fold, gamma=gamma, n_cnn_layers=depth, seed=seed,
                                encoder=encoder, **{**point, **fixed}))
    names = [run_name(p) for p in plan]
    return [p for i, p in enumerate(plan) if names.index(names[i]) == i]  # no duplicates


@dataclass
class SweepReport:
    planned: int = 0
    skipped: int = 0
    finished: list = field(default_factory=list)
    failed: list = field(default_factory=list)  # (run name, executed notebook path, error)
    wall_time_s: float = 0.0

    def __str__(self) -> str:
        lines = [f"{self.planned} planned, {self.skipped} already finished, {len(self.finished)} ran now, "
                 f"{len(self.failed)} failed, {self.wall_time_s / 60:.1f} min"]
        lines += [f"  FAILED {name}: {err.splitlines()[-1] if err else ''}\n    notebook: {nb}"
                  for name, nb, err in self.failed]
        return "\n".join(lines)


def _execute(params: dict, out_dir: Path, nb_dir: Path, data_root, threads: int | None, timeout: int | None):
    import papermill as pm

    name = run_name(params)
    nb_dir.mkdir(parents=True, exist_ok=True)
    out_nb = nb_dir / f"{name}.ipynb"
    # feature parameters and an earlier encoder's sizes follow from the notebook's own parameters
    nb_params = {k: v for k, v in params.items() if k not in ("features", "encoder_sizes")}
    nb_params.update(data_root=None if data_root is None else str(data_root), out_dir=str(out_dir),
                     torch_threads=threads, reuse_record=True)
    # The kernel's log level is ERROR so that every run does not print ipykernel's warning about
    # unencrypted local TCP into the sweep's progress bar; errors still show.
    pm.execute_notebook(str(NOTEBOOK), str(out_nb), parameters=nb_params, cwd=str(REPO_ROOT),
                        progress_bar=False, kernel_name="python3", execution_timeout=timeout, start_timeout=300,
                        extra_arguments=["--IPKernelApp.log_level=ERROR"])
    if read_record(out_dir / params["corpus"] / f"{name}.json") is None:
        raise RuntimeError("the notebook finished without writing a finished record")
    return name, out_nb


def run_sweep(plan: list[dict], workers: int = 1, out_dir=None, notebook_dir=None, data_root=None,
              threads_per_worker: int | None = None, timeout: int | None = None,
              progress: bool = True) -> SweepReport:
    """Execute every run of ``plan`` that has no finished record (see the module docstring)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1; got {workers!r}")
    out_dir = Path(out_dir) if out_dir is not None else REPO_ROOT / "results" / "runs"
    nb_root = Path(notebook_dir) if notebook_dir is not None else REPO_ROOT / "results" / "notebooks"
    if threads_per_worker is None:
        threads_per_worker = max(1, (os.cpu_count() or 1) // workers)
    report = SweepReport(planned=len(plan))
    todo = [p for p in plan if read_record(out_dir / p["corpus"] / f"{run_name(p)}.json") is None]
    report.skipped = len(plan) - len(todo)
    t0 = time.time()
    bar = tqdm(total=len(todo), desc=f"sweep ({workers} worker{'s' * (workers > 1)})", unit="run",
               disable=not progress)
    lock = threading.Lock()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_execute, p, out_dir, nb_root / p["corpus"], data_root, threads_per_worker,
                               timeout): p for p in todo}
        for fut in as_completed(futures):
            p = futures[fut]
            name = run_name(p)
            try:
                fut.result()
                with lock:
                    report.finished.append(name)
            except Exception as exc:  # one failed run must not stop the others
                with lock:
                    report.failed.append((name, str(nb_root / p["corpus"] / f"{name}.ipynb"),
                                          f"{type(exc).__name__}: {exc}"))
            bar.update(1)
            bar.set_postfix(failed=len(report.failed))
    bar.close()
    report.wall_time_s = time.time() - t0
    return report


def collect_runs(corpus: str, runs_dir=None, out_csv=None) -> pd.DataFrame:
    """Write ``results/runs_<corpus>.csv``: one row per finished run record of the corpus."""
    from .results import load_records

    runs = load_records(runs_dir, corpus)
    out_csv = Path(out_csv) if out_csv is not None else REPO_ROOT / "results" / f"runs_{corpus}.csv"
    if len(runs):
        runs = runs.sort_values(["encoder", "n_cnn_layers", "gamma", "kernel_size", "n_filters", "gru_hidden",
                                 "fc_hidden", "seed", "fold"], key=lambda s: s.astype(str)).reset_index(drop=True)
    tmp = out_csv.with_suffix(".csv.tmp")
    runs.to_csv(tmp, index=False)
    os.replace(tmp, out_csv)
    return runs


def bundle_records(dest, runs_dir=None) -> Path:
    """Pack every finished record under ``runs_dir`` into one .tar.gz (to bring back from a lent
    machine); unpack with :func:`unbundle_records`."""
    runs_dir = Path(runs_dir) if runs_dir is not None else REPO_ROOT / "results" / "runs"
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".tar.gz", dir=dest.parent)
    os.close(fd)
    with tarfile.open(tmp, "w:gz") as tar:
        for path in sorted(runs_dir.rglob("*.json")):
            if read_record(path) is not None:
                tar.add(path, arcname=str(path.relative_to(runs_dir)))
    os.replace(tmp, dest)
    return dest


def unbundle_records(bundle, runs_dir=None) -> list[str]:
    """Add the records of a bundle to ``runs_dir``; existing finished records are kept."""
    runs_dir = Path(runs_dir) if runs_dir is not None else REPO_ROOT / "results" / "runs"
    added = []
    with tarfile.open(bundle) as tar:
        for member in tar.getmembers():
            target = runs_dir / member.name
            if not member.isfile() or not member.name.endswith(".json") or ".." in Path(member.name).parts:
                continue
            if read_record(target) is None:
                target.parent.mkdir(parents=True, exist_ok=True)
                data = tar.extractfile(member).read()
                tmp = target.with_name(f".{target.name}.tmp")
                tmp.write_bytes(data)
                os.replace(tmp, target)
                added.append(member.name)
    return added


def _gamma(text: str):
    return None if text.lower() in ("none", "noal", "without") else float(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="sier sweep", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="emodb", choices=["emodb", "ravdess"])
    ap.add_argument("--folds", type=int, nargs="+", default=None)
    ap.add_argument("--gammas", type=_gamma, nargs="+", default=list(GAMMAS), help="e.g. none 1.25 2.5 3.33")
    ap.add_argument("--depths", type=int, nargs="+", default=list(DEPTHS))
    ap.add_argument("--grid", action="store_true", help="also sweep the section 4.2 grid (16 points)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--encoders", nargs="+", default=["2dcnn_bigru"])
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--bundle", default=None, help="afterwards, pack all records into this .tar.gz")
    ap.add_argument("--dry-run", action="store_true", help="only print what would run")
    args = ap.parse_args(argv)
    fixed = {"device": args.device}
    if args.epochs is not None:
        fixed["epochs"] = args.epochs
    plan = plan_sweep(args.corpus, args.folds, args.gammas, args.depths, args.grid, args.seeds, args.encoders,
                      **fixed)
    out_dir = REPO_ROOT / "results" / "runs"
    todo = [p for p in plan if read_record(out_dir / p["corpus"] / f"{run_name(p)}.json") is None]
    print(f"{len(plan)} runs planned, {len(plan) - len(todo)} already finished")
    if args.dry_run:
        for p in todo:
            print("  ", run_name(p))
        return 0
    report = run_sweep(plan, workers=args.workers, data_root=args.data_root)
    print(report)
    runs = collect_runs(args.corpus)
    print(f"{len(runs)} records collected in results/runs_{args.corpus}.csv")
    if args.bundle:
        print(f"bundled into {bundle_records(args.bundle)}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
