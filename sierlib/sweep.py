"""Sweeps: run notebooks/04_train.ipynb through papermill for every combination asked for.

A sweep is a list of :class:`~sierlib.config.RunConfig`. :func:`run_sweep` executes the runs
that have no finished record yet with N parallel workers (threads, each driving one papermill
kernel process), one progress bar with an ETA, and:

- resumability: a run whose finished JSON record exists is skipped; a record is written
  atomically only when the run ends, so a sweep killed halfway and started again finishes the
  rest and loses or duplicates nothing;
- each executed notebook is kept under ``results/notebooks/<corpus>/`` (git-ignored); a failed
  run is reported with the path of its notebook and does not stop the others;
- the notebook receives exactly its parameters cell's names: the config's fields and the
  :class:`~sierlib.config.RunOptions`;
- on CPU the cores are split between workers (``torch_threads`` in each kernel); on a GPU
  machine the workers share the GPU;
- records go to ``results/local/runs`` unless the sweep is a deliberate reference sweep
  (``--reference``: ``results/runs``, and the committed tables are regenerated afterwards).

Command line: ``sier sweep --help``.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import itertools
import json
import os
import tarfile
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from .cluster import ClusterError, run_on_dask
from .cluster import add_arguments as add_cluster_arguments
from .config import DEFAULTS, RunConfig, RunOptions
from .corpora import CORPORA, REPO_ROOT, corpus_info, corpus_name
from .records import REFERENCE_RUNS, atomic_write, read_record, record_path, runs_dir

GAMMAS = (None, 1.25, 2.5, 3.33)
DEPTHS = (1, 2, 3, 4)
# Hyperparameter grid of the paper's section 4.2.
GRID = {"kernel_size": (5, 2), "n_filters": (128, 64), "gru_hidden": (256, 128), "fc_hidden": (128, 64)}
NOTEBOOK = REPO_ROOT / "notebooks" / "04_train.ipynb"
NOTEBOOK_DIR = REPO_ROOT / "results" / "notebooks"  # executed notebooks (git-ignored)


def plan_sweep(corpus: str, folds=None, gammas=GAMMAS, depths=DEPTHS, grid: bool = False, seeds=(0,),
               encoders=("2dcnn_bigru",), **fixed) -> list[RunConfig]:
    """Every run of corpus x fold x gamma x depth (x the section 4.2 grid if ``grid``) x seed x
    encoder, as validated configs. ``fixed`` sets other config fields (e.g. epochs=60)."""
    if folds is None:
        n_folds = corpus_info(corpus).n_folds
        if n_folds is None:
            raise ValueError(f"corpus {corpus!r} has no fixed number of folds: name them (folds=[0, 1, ...])")
        folds = range(n_folds)
    grid_points = [dict(zip(GRID, values)) for values in itertools.product(*GRID.values())] if grid else [{}]
    plan, names = [], set()
    for encoder, depth, gamma, point, seed, fold in itertools.product(encoders, depths, gammas, grid_points,
                                                                        seeds, folds):
        sizes = {"n_cnn_layers": depth, **point} if encoder == "2dcnn_bigru" else {}
        config = RunConfig(corpus=corpus, fold=fold, gamma=gamma, seed=seed, encoder=encoder, **{**sizes, **fixed})
        if config.name not in names:  # depth and the 2D CNN grid do not apply to the earlier encoders
            names.add(config.name)
            plan.append(config)
    return plan


@dataclass
class SweepReport:
    planned: int = 0
    skipped: int = 0
    finished: list = field(default_factory=list)
    failed: list = field(default_factory=list)  # (run name, executed notebook path, error)
    not_started: list = field(default_factory=list)  # run names left for later (in-process --max-minutes)
    wall_time_s: float = 0.0

    def __str__(self) -> str:
        lines = [f"{self.planned} planned, {self.skipped} already finished, {len(self.finished)} ran now, "
                 f"{len(self.failed)} failed, {self.wall_time_s / 60:.1f} min"
                 + (f", {len(self.not_started)} not started (time limit)" if self.not_started else "")]
        lines += [f"  FAILED {name}: {err.splitlines()[-1] if err else ''}\n    notebook: {nb}"
                  for name, nb, err in self.failed]
        return "\n".join(lines)


def unfinished(plan: list[RunConfig], out_dir) -> list[RunConfig]:
    """The runs of ``plan`` without a finished record in ``out_dir``: what a sweep has left to do."""
    return [c for c in plan if read_record(record_path(c, out_dir)) is None]


def notebook_parameters(config: RunConfig, options: RunOptions) -> dict:
    """The parameters 04_train receives: exactly the names of its parameters cell."""
    opts = {k: (str(v) if isinstance(v, Path) else v) for k, v in options.__dict__.items()}
    return {**config.to_dict(), **opts}


def _execute(config: RunConfig, options: RunOptions, nb_dir: Path, timeout: int | None):
    import papermill as pm

    nb_dir.mkdir(parents=True, exist_ok=True)
    out_nb = nb_dir / f"{config.name}.ipynb"
    # The kernel's log level is ERROR so that every run does not print ipykernel's warning about
    # unencrypted local TCP into the sweep's progress bar; errors still show.
    pm.execute_notebook(str(NOTEBOOK), str(out_nb), parameters=notebook_parameters(config, options),
                        cwd=str(REPO_ROOT), progress_bar=False, kernel_name="python3", execution_timeout=timeout,
                        start_timeout=300, extra_arguments=["--IPKernelApp.log_level=ERROR"])
    if read_record(record_path(config, options.out_dir)) is None:
        raise RuntimeError("the notebook finished without writing a finished record")
    return out_nb


def run_sweep(plan: list[RunConfig], workers: int = 1, out_dir=None, notebook_dir=None, data_root=None,
              threads_per_worker: int | None = None, device: str = "auto", timeout: int | None = None,
              progress: bool = True) -> SweepReport:
    """Execute every run of ``plan`` that has no finished record (see the module docstring)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1; got {workers!r}")
    out_dir = runs_dir(out_dir)
    nb_root = Path(notebook_dir) if notebook_dir is not None else NOTEBOOK_DIR
    if threads_per_worker is None:
        threads_per_worker = max(1, (os.cpu_count() or 1) // workers)
    options = RunOptions(device=device, torch_threads=threads_per_worker,
                         data_root=None if data_root is None else str(data_root), out_dir=str(out_dir),
                         reuse_record=False)  # finished runs are skipped above; a reference record must not stand in
    report = SweepReport(planned=len(plan))
    todo = unfinished(plan, out_dir)
    report.skipped = len(plan) - len(todo)
    t0 = time.time()
    bar = tqdm(total=len(todo), desc=f"sweep ({workers} worker{'s' * (workers > 1)})", unit="run",
               disable=not progress)
    lock = threading.Lock()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_execute, c, options, nb_root / corpus_name(c.corpus), timeout): c for c in todo}
        for fut in as_completed(futures):
            config = futures[fut]
            try:
                fut.result()
                with lock:
                    report.finished.append(config.name)
            except Exception as exc:  # one failed run must not stop the others
                with lock:
                    nb = nb_root / corpus_name(config.corpus) / f"{config.name}.ipynb"
                    report.failed.append((config.name, str(nb),
                                          f"{type(exc).__name__}: {exc}"))
            bar.update(1)
            bar.set_postfix(failed=len(report.failed))
    bar.close()
    report.wall_time_s = time.time() - t0
    return report


def pack_file(folder, corpus: str, params: dict) -> Path:
    """Where a pack keeps a corpus's features of ``params``: ``<corpus>-<kind>.npz`` for the
    project's default parameters of that kind, ``<corpus>-<kind>-<hash>.npz`` for others (a
    high-pass, trimming or speed variant)."""
    from .corpora import corpus_name
    from .features import check_feature_params, feature_kind

    kind = feature_kind(params)
    default = check_feature_params(kind=kind)
    suffix = "" if params == default else "-" + hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]
    return Path(folder) / f"{corpus_name(corpus)}-{kind}{suffix}.npz"


def write_pack(folder, corpus: str, encoders=("2dcnn_bigru",), data_root=None, variants=()) -> list[Path]:
    """Write a corpus's metadata and features (of the kinds the encoders read, and of every
    feature-parameter dict in ``variants``, e.g. :func:`sierlib.recipe.feature_variants`) to
    ``folder``, so that a machine without the audio (e.g. a lent GPU machine) can run
    :func:`run_in_process`."""
    from .corpora import load_metadata
    from .features import extract_features, save_features
    from .records import write_csv_atomic

    meta = load_metadata(corpus, data_root)
    written = [write_csv_atomic(meta, Path(folder) / f"{corpus}-meta.csv")]
    wanted = [RunConfig(corpus=corpus, encoder=e).feature_params for e in encoders] + list(variants)
    for params in {json.dumps(p, sort_keys=True): p for p in wanted}.values():
        feats = extract_features(meta, progress=True, **params)
        written.append(save_features(feats, pack_file(folder, corpus, feats.params), compress=True))
    return written


def load_pack(folder, config: RunConfig, params: dict | None = None):
    """The metadata and features of ``config``'s corpus (of ``params``, default the config's
    feature parameters) from a folder written by :func:`write_pack`."""
    import pandas as pd

    from .corpora import corpus_name
    from .features import load_features

    params = config.feature_params if params is None else params
    meta = pd.read_csv(Path(folder) / f"{corpus_name(config.corpus)}-meta.csv", dtype={"speaker": str, "utterance": str})
    path = pack_file(folder, config.corpus, params)
    if not path.is_file():
        raise FileNotFoundError(f"the pack in {folder} has no features {params} ({path.name}); write them with "
                                f"`sier pack` (--recipe for the recipe study's variants) where the audio is")
    return meta, load_features(path, params)


def _in_process_worker(configs, options: RunOptions, pack, deadline, queue):
    """One worker process: loads each corpus and feature kind once, then runs its configs."""
    from .experiments import load_corpus_features, run

    loaded = {}
    for config in configs:
        if deadline is not None and time.time() > deadline:
            queue.put((config.name, "skipped", "deadline"))
            continue
        # one load per corpus and feature parameters (kind, high-pass, trimming...): runs of a
        # sweep may differ in any of them
        key = (config.corpus, json.dumps(config.feature_params, sort_keys=True))
        try:
            if key not in loaded:
                loaded[key] = (load_pack(pack, config) if pack else
                               load_corpus_features(config, options.data_root, progress=False))
            meta, feats = loaded[key]
            speed_feats = None
            if pack and config.speed_factors:  # speed-perturbed copies come from the pack too
                speed_feats = {f: load_pack(pack, config, {**config.feature_params, "speed": f})[1]
                               for f in config.speed_factors}
            run(config, options, meta=meta, feats=feats, progress=False, speed_feats=speed_feats)
            queue.put((config.name, "finished", ""))
        except Exception as exc:  # one failed run must not stop the others
            queue.put((config.name, "failed", f"{type(exc).__name__}: {exc}"))


def run_in_process(plan: list[RunConfig], workers: int = 1, out_dir=None, device: str = "auto", pack=None,
                   data_root=None, threads_per_worker: int | None = None, max_minutes: float | None = None,
                   progress: bool = True) -> SweepReport:
    """Execute the unfinished runs of ``plan`` in ``workers`` processes without notebooks: each
    process keeps its corpus and features in memory (and its CUDA context) across its runs,
    which is what makes a GPU sweep fast. Same records, names and resumability as
    :func:`run_sweep`. ``pack`` is a folder from :func:`write_pack` (for a machine without the
    audio); ``max_minutes`` stops starting new runs after that long (the rest stay unfinished)."""
    import multiprocessing as mp
    import queue as queue_module

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1; got {workers!r}")
    out_dir = runs_dir(out_dir)
    if threads_per_worker is None:
        threads_per_worker = max(1, (os.cpu_count() or 1) // workers)
    options = RunOptions(device=device, torch_threads=threads_per_worker,
                         data_root=None if data_root is None else str(data_root), out_dir=str(out_dir))
    report = SweepReport(planned=len(plan))
    todo = unfinished(plan, out_dir)
    report.skipped = len(plan) - len(todo)
    deadline = None if max_minutes is None else time.time() + 60 * max_minutes
    ctx = mp.get_context("spawn")  # CUDA cannot be forked
    queue = ctx.Queue()
    shares = [todo[i::workers] for i in range(min(workers, len(todo)))]
    procs = [ctx.Process(target=_in_process_worker, args=(share, options, pack, deadline, queue)) for share in shares]
    t0 = time.time()
    for p in procs:
        p.start()
    reported = set()
    with tqdm(total=len(todo), desc=f"sweep ({workers} in-process worker{'s' * (workers > 1)})", unit="run",
              disable=not progress) as bar:
        while len(reported) < len(todo):
            try:
                name, status, err = queue.get(timeout=5)
            except queue_module.Empty:
                # a worker that died (killed, out of memory, a crash in native code) reports no
                # more: its unreported runs fail, so the sweep ends instead of waiting for ever
                if all(not p.is_alive() for p in procs) and queue.empty():
                    for share, p in zip(shares, procs):
                        for config in share:
                            if config.name not in reported:
                                reported.add(config.name)
                                report.failed.append((config.name, "(in process)",
                                                      f"worker process ended with exit code {p.exitcode}"))
                                bar.update(1)
                continue
            reported.add(name)
            if status == "finished":
                report.finished.append(name)
            elif status == "failed":
                report.failed.append((name, "(in process)", err))
            else:  # past --max-minutes: left for the next sweep
                report.not_started.append(name)
            bar.update(1)
            bar.set_postfix(failed=len(report.failed))
    for p in procs:
        p.join()
    report.wall_time_s = time.time() - t0
    return report


def bundle_records(dest, runs_dir=None) -> Path:
    """Pack every finished record under ``runs_dir`` into one .tar.gz (to bring back from a lent
    machine); unpack with :func:`unbundle_records`."""
    from .records import runs_dir as _runs_dir

    folder = _runs_dir(runs_dir)
    with atomic_write(dest, "wb") as f, tarfile.open(fileobj=f, mode="w:gz") as tar:
        for path in sorted(folder.rglob("*.json")):
            if read_record(path) is not None:
                tar.add(path, arcname=str(path.relative_to(folder)))
    return Path(dest)


def unbundle_records(bundle, runs_dir=None) -> list[str]:
    """Add the records of a bundle to ``runs_dir``; existing finished records are kept."""
    from .records import runs_dir as _runs_dir

    folder = _runs_dir(runs_dir)
    added = []
    with tarfile.open(bundle) as tar:
        for member in tar.getmembers():
            target = folder / member.name
            if not member.isfile() or not member.name.endswith(".json") or ".." in Path(member.name).parts \
                    or Path(member.name).is_absolute():
                continue
            if read_record(target) is None:
                with atomic_write(target, "wb") as f:
                    f.write(tar.extractfile(member).read())
                added.append(member.name)
    return added


def _gamma(text: str):
    return None if text.lower() == "none" else float(text)


def _setting(text: str) -> tuple[str, object]:
    """``key=value`` of a config field; the value is read as a Python literal, else a string."""
    key, sep, value = text.partition("=")
    if not sep or key not in DEFAULTS:
        raise argparse.ArgumentTypeError(f"--set takes field=value with a field of the run config "
                                         f"({', '.join(DEFAULTS)}); got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="sier sweep", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="emodb",
                    help=f"{', '.join(CORPORA)} or the path of a manifest .csv of your own corpus "
                         f"(see sierlib.manifest)")
    ap.add_argument("--folds", type=int, nargs="+", default=None)
    ap.add_argument("--gammas", type=_gamma, nargs="+", default=list(GAMMAS), help="e.g. none 1.25 2.5 3.33")
    ap.add_argument("--depths", type=int, nargs="+", default=list(DEPTHS))
    ap.add_argument("--grid", action="store_true", help="also sweep the section 4.2 grid (16 points)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--encoders", nargs="+", default=["2dcnn_bigru"])
    ap.add_argument("--set", type=_setting, nargs="+", default=[], metavar="FIELD=VALUE",
                    help="other run-config fields for every run, e.g. --set epochs=60 lr=5e-4")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads-per-run", type=int, default=None, metavar="N",
                    help="torch threads of each run (default: this machine's cores split between the workers; "
                         "1 on a running Dask scheduler)")
    ap.add_argument("--data-root", default=None)
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--out-dir", default=None, help="records folder (default results/local/runs)")
    where.add_argument("--reference", action="store_true",
                       help="write into the reference records (results/runs) and regenerate the committed tables")
    ap.add_argument("--in-process", action="store_true",
                    help="run in worker processes that keep the features in memory, without notebooks (GPU sweeps)")
    ap.add_argument("--pack", default=None, help="with --in-process: a folder from `sier pack` instead of the audio")
    ap.add_argument("--max-minutes", type=float, default=None, help="with --in-process: start no run after this long")
    ap.add_argument("--bundle", default=None, help="afterwards, pack all records into this .tar.gz")
    ap.add_argument("--dry-run", action="store_true", help="only print what would run")
    add_cluster_arguments(ap)
    args = ap.parse_args(argv)
    on_dask = args.cluster is not None or args.scheduler is not None
    if on_dask and args.in_process:
        ap.error("--in-process runs in this machine's processes: leave it out with --cluster or --scheduler")
    planned_fields = {"corpus", "fold", "gamma", "seed", "encoder", "n_cnn_layers"}
    clash = sorted(planned_fields & {k for k, _ in args.set})
    if clash:
        ap.error(f"--set {', '.join(clash)}: the sweep plans these itself; use --corpus, --folds, --gammas, --seeds, "
                 f"--encoders or --depths")
    try:
        plan = plan_sweep(args.corpus, args.folds, args.gammas, args.depths, args.grid, args.seeds, args.encoders,
                          **dict(args.set))
        RunOptions(device=args.device)
    except ValueError as exc:
        ap.error(str(exc))
    out_dir = REFERENCE_RUNS if args.reference else runs_dir(args.out_dir)
    todo = unfinished(plan, out_dir)
    print(f"{len(plan)} runs planned, {len(plan) - len(todo)} already finished in {out_dir}")
    if args.dry_run:
        for c in todo:
            print("  ", c.name)
        return 0
    if on_dask:
        try:
            report = run_on_dask(plan, cluster=args.cluster, scheduler=args.scheduler, out_dir=out_dir,
                                 data_root=args.data_root, device=args.device, threads_per_run=args.threads_per_run,
                                 gpus_per_run=args.gpus_per_run, retries=args.retries)
        except (ClusterError, ValueError) as exc:
            ap.error(str(exc))
    elif args.in_process:
        report = run_in_process(plan, workers=args.workers, out_dir=out_dir, device=args.device, pack=args.pack,
                                data_root=args.data_root, threads_per_worker=args.threads_per_run,
                                max_minutes=args.max_minutes)
    else:
        report = run_sweep(plan, workers=args.workers, out_dir=out_dir, data_root=args.data_root, device=args.device,
                           threads_per_worker=args.threads_per_run)
    print(report)
    if args.reference:
        from .results import write_tables

        print("tables regenerated:", ", ".join(p.name for p in write_tables()))
    if args.bundle:
        print(f"bundled into {bundle_records(args.bundle, out_dir)}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
