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

Runs without notebooks, in worker processes that keep the features in memory (GPU sweeps, the
recipe study), are :mod:`sierlib.workers`; a sweep on a Dask cluster is :mod:`sierlib.cluster`.
Command line: ``sier sweep --help``.
"""
from __future__ import annotations

import itertools
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import papermill as pm
from tqdm.auto import tqdm

from .config import RunConfig, RunOptions
from .corpora import corpus_info
from .paper import DEPTHS, GAMMAS, GRID
from .paths import EXECUTED_NOTEBOOKS, NOTEBOOKS, REPO_ROOT
from .records import read_record, record_path, runs_dir
from .registry import corpus_name

NOTEBOOK = NOTEBOOKS / "04_train.ipynb"
NOTEBOOK_DIR = EXECUTED_NOTEBOOKS


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


def execute_notebook(config: RunConfig, options: RunOptions, nb_dir: Path, timeout: int | None):
    """Run 04_train for one config into ``nb_dir/<name>.ipynb``; raises if no finished record appears."""
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
        futures = {pool.submit(execute_notebook, c, options, nb_root / corpus_name(c.corpus), timeout): c for c in todo}
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
