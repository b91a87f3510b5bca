"""Sweeps on a Dask cluster: the same runs as :func:`sierlib.sweep.run_sweep`, one Dask task each.

``sier sweep ... --cluster local:N`` starts a :class:`distributed.LocalCluster` of N worker
processes with one thread each; ``--scheduler tcp://HOST:PORT`` sends the runs to a running Dask
scheduler (started by hand, by dask-jobqueue on Slurm or PBS, or in the cloud). Each unfinished
run of the plan is one task that executes ``notebooks/04_train.ipynb`` through papermill on a
worker, with the parameters of :func:`sierlib.sweep.notebook_parameters`, exactly as the local
sweep does. The guarantees are the local sweep's:

- the records are the truth: a run whose finished record exists in the records folder is not
  submitted, so a rerun (or a sweep killed halfway and started again) does only what is left;
- the task runs the notebook with a worker-local records folder and returns the record (a dict)
  and the executed notebook; this process writes both, atomically, into the records and
  notebooks folders. Workers therefore need not share a file system with this machine, and
  nothing half-written ever lands in the records folder;
- a failed run is listed with its error and its executed notebook, and does not stop the others;
- if a worker dies mid-run, the scheduler starts the run again on another worker, at most
  ``distributed.scheduler.allowed-failures`` times (``--retries`` for a LocalCluster); the record
  is written once, by this process, when the run's result arrives;
- one progress bar with an ETA for the whole sweep.

Workers must run the same checkout of this repository (a shared file system, or the same commit
installed there with ``pip install -e .``) and find the corpora: ``--data-root`` (and a manifest
corpus's path) is passed to them as is, and without it each worker reads its own ``$SIER_DATA``.
Dask is an optional extra: ``pip install -e ".[cluster]"``. The README's section "Sweeps on a
cluster, with Dask" has the Slurm (dask-jobqueue) and GPU recipes.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import re
import tempfile
import time
import uuid
from pathlib import Path

from tqdm.auto import tqdm

from .config import RunConfig, RunOptions
from .paths import atomic_write
from .records import read_record, record_path, runs_dir, write_record
from .registry import corpus_name
from .sweep import NOTEBOOK_DIR, SweepReport, execute_notebook, unfinished

CONNECT_TIMEOUT_S = 10


class ClusterError(RuntimeError):
    """The cluster asked for cannot be used; the message says which option and what to do."""


def parse_cluster(text: str) -> int:
    """The number of workers N of ``--cluster local:N``."""
    m = re.fullmatch(r"local:(\d+)", text.strip())
    if m is None or int(m.group(1)) < 1:
        raise ValueError(f"--cluster takes local:N with N >= 1 worker processes (e.g. local:4); got {text!r}. "
                         f"For a cluster that is already running, use --scheduler tcp://HOST:PORT")
    return int(m.group(1))


def cluster_argument(text: str) -> str:
    try:
        parse_cluster(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _check_where(cluster, scheduler, retries) -> int | None:
    """Checks the options that say where runs go; returns N of ``local:N`` (None otherwise)."""
    if (cluster is None) == (scheduler is None):
        raise ClusterError("give exactly one of --cluster local:N and --scheduler tcp://HOST:PORT")
    if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int) or retries < 0):
        raise ValueError(f"--retries must be an int >= 0; got {retries!r}")
    if retries is not None and scheduler is not None:
        raise ClusterError(f"--retries sets a LocalCluster's limit; the scheduler at {scheduler} has its own: start it "
                           f"with DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES={retries} dask scheduler")
    return None if cluster is None else parse_cluster(cluster)


def _distributed():
    try:
        import distributed  # optional: the cluster extra
    except ImportError:
        raise ClusterError("--cluster and --scheduler need Dask: pip install -e \".[cluster]\" "
                           "(or pip install \"dask[distributed]\")") from None
    return distributed


@contextlib.contextmanager
def dask_client(*, cluster: str | None = None, scheduler: str | None = None, retries: int | None = None):
    """A :class:`distributed.Client` of a new LocalCluster (``cluster="local:N"``) or of the
    running scheduler at ``scheduler``; the LocalCluster is shut down when the block ends.

    Parameters
    ----------
    cluster : str, optional
        ``local:N``: N worker processes of one thread each (one run at a time per worker).
    scheduler : str, optional
        Address of a running Dask scheduler, e.g. ``tcp://10.0.0.5:8786``.
    retries : int, optional
        LocalCluster only: how many times a run whose worker died is started again (the
        scheduler's ``allowed-failures``; None keeps Dask's default, 3). A running scheduler has
        its own setting.
    """
    n = _check_where(cluster, scheduler, retries)
    distributed = _distributed()
    if n is not None:
        kwargs = {} if retries is None else {"scheduler_kwargs": {"allowed_failures": retries}}
        # The dashboard needs bokeh, which the extra does not install; a sweep has its own progress bar.
        with distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                      **kwargs) as local, distributed.Client(local) as client:
            yield client
        return
    try:
        client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"--scheduler {scheduler}: no Dask scheduler answered within {CONNECT_TIMEOUT_S} s "
                           f"({type(exc).__name__}: {exc}). Check the address (the scheduler prints it: "
                           f"`dask scheduler`, or cluster.scheduler_address in dask-jobqueue), that its port is "
                           f"reachable from here, or use --cluster local:N on this machine") from None
    with client:
        yield client


def run_task(config: RunConfig, options: RunOptions, timeout: int | None = None) -> dict:
    """The task one worker runs: 04_train for ``config`` with ``options``, into a worker-local
    folder that is removed afterwards.

    Returns
    -------
    dict
        ``record`` (the finished record, or None), ``notebook`` (the executed notebook's JSON
        text, or None if papermill wrote none) and ``error`` (None, or the run's error). A run's
        own failure is returned, not raised: Dask would take a raised error for a reason to
        retry, and a run that failed once (a bad parameter, a missing corpus) fails again.
    """
    # nbformat's validation imports jsonschema, whose import builds a lark grammar with
    # ast.literal_eval. Inside papermill's run on a Dask worker, CPython 3.11.7 once failed there
    # with "AST constructor recursion depth mismatch" (a CPython bug, cf. gh-106905), failing the
    # run; importing it here, before the run, is a mitigation, not a proven fix
    import jsonschema  # noqa: F401 -- see the comment above
    from distributed import get_worker  # optional: the cluster extra

    with tempfile.TemporaryDirectory(prefix="sier-run-", dir=get_worker().local_directory) as tmp:
        # reuse_record off: the folder is new, and a reference record shown instead of training
        # would leave no record here to return
        local = dataclasses.replace(options, out_dir=str(Path(tmp) / "runs"), reuse_record=False)
        error = None
        try:
            execute_notebook(config, local, Path(tmp), timeout)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        notebook = Path(tmp) / f"{config.name}.ipynb"
        return {"record": None if error else read_record(record_path(config, local.out_dir)),
                "notebook": notebook.read_text() if notebook.exists() else None, "error": error}


def _check_gpu_workers(client, gpus_per_run: int, where: str) -> None:
    """Tasks that ask for GPUs no worker offers would wait for ever: say so now. An adaptive
    cluster with no worker yet may still get GPU workers, so that case passes."""
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    if workers and not any(w.get("resources", {}).get("GPU", 0) >= gpus_per_run for w in workers):
        raise ClusterError(f"--gpus-per-run {gpus_per_run}: no worker of {where} offers GPU={gpus_per_run}. Start "
                           f"workers with the resource, one per GPU: CUDA_VISIBLE_DEVICES=0 dask worker ADDRESS "
                           f"--nthreads 1 --resources GPU=1 (dask-jobqueue: worker_extra_args=[\"--resources\", "
                           f"\"GPU=1\"])")


def run_on_dask(plan: list[RunConfig], *, cluster: str | None = None, scheduler: str | None = None, client=None,
                out_dir=None, notebook_dir=None, data_root=None, device: str = "auto",
                threads_per_run: int | None = None, gpus_per_run: int = 0, retries: int | None = None,
                timeout: int | None = None, progress: bool = True):
    """Execute every run of ``plan`` that has no finished record, one Dask task per run (see the
    module docstring).

    Parameters
    ----------
    plan : list of RunConfig
        From :func:`sierlib.sweep.plan_sweep`.
    cluster, scheduler, client
        Exactly one: ``"local:N"`` (a LocalCluster, started only if a run is left to do), the
        address of a running scheduler, or a connected :class:`distributed.Client`.
    out_dir, notebook_dir : path, optional
        Records (default ``results/local/runs``) and executed notebooks (default
        ``results/notebooks``) on this machine; this process writes both.
    data_root : path, optional
        The corpora's folder as the workers see it; None: each worker's ``$SIER_DATA``.
    device : str
        The runs' device (``auto``, ``cpu``, ``cuda[:N]``).
    threads_per_run : int, optional
        torch threads of each run. Default: this machine's cores / N for ``local:N`` (as the
        local sweep splits them), else 1 (Dask's own default for worker processes).
    gpus_per_run : int
        GPUs each run asks the scheduler for (the workers' ``GPU`` resource); 0: none. Needs
        workers started with ``--resources GPU=...``, so not with ``local:N``.
    retries : int, optional
        ``local:N`` only: restarts of a run whose worker died (see :func:`dask_client`).
    timeout : int, optional
        papermill's per-cell timeout in seconds.
    progress : bool
        Show the progress bar.

    Returns
    -------
    SweepReport
    """
    if client is None:
        n_local = _check_where(cluster, scheduler, retries)
    elif cluster is not None or scheduler is not None or retries is not None:
        raise ValueError("with a client, leave cluster, scheduler and retries out (they belong to its cluster)")
    else:
        n_local = None
    if isinstance(gpus_per_run, bool) or not isinstance(gpus_per_run, int) or gpus_per_run < 0:
        raise ValueError(f"--gpus-per-run must be an int >= 0; got {gpus_per_run!r}")
    if gpus_per_run and n_local is not None:
        raise ValueError("--gpus-per-run needs workers that each own their GPUs, which a LocalCluster's workers do "
                         "not (they share this machine's GPUs, like the local sweep's workers: leave it out). For "
                         "several GPUs, start one `dask worker` per GPU (see the README) and use --scheduler")
    if threads_per_run is None:
        threads_per_run = max(1, (os.cpu_count() or 1) // n_local) if n_local else 1
    out_dir = runs_dir(out_dir)
    nb_root = Path(notebook_dir) if notebook_dir is not None else NOTEBOOK_DIR
    options = RunOptions(device=device, torch_threads=threads_per_run,
                         data_root=None if data_root is None else str(data_root), out_dir=str(out_dir))
    report = SweepReport(planned=len(plan))
    todo = unfinished(plan, out_dir)
    report.skipped = len(plan) - len(todo)
    if not todo:
        return report
    where = cluster or scheduler or "the client's cluster"
    resources = {"GPU": gpus_per_run} if gpus_per_run else None
    t0 = time.time()
    with (dask_client(cluster=cluster, scheduler=scheduler, retries=retries) if client is None
          else contextlib.nullcontext(client)) as client:
        from distributed import as_completed  # optional: the cluster extra

        if resources:
            _check_gpu_workers(client, gpus_per_run, where)
        # A unique key per submission (the run's name, for the dashboard, and a random tail): a
        # sweep submitted again, or by a second client, never shares a task with an earlier one.
        futures = {client.submit(run_task, c, options, timeout, key=f"sier-{c.name}-{uuid.uuid4().hex[:8]}",
                                 pure=False, resources=resources): c for c in todo}
        with tqdm(total=len(todo), desc=f"sweep (dask, {where})", unit="run", disable=not progress) as bar:
            for fut in as_completed(futures):
                config = futures.pop(fut)  # forget it: a result dropped by a dying worker is not recomputed
                nb_path = nb_root / corpus_name(config.corpus) / f"{config.name}.ipynb"
                try:
                    result = fut.result()
                except Exception as exc:  # the task itself was lost (e.g. KilledWorker: too many worker deaths)
                    result = {"record": None, "notebook": None, "error": f"{type(exc).__name__}: {exc}"}
                if result["notebook"] is not None:
                    with atomic_write(nb_path) as f:
                        f.write(result["notebook"])
                if result["error"] is None:
                    write_record(result["record"], out_dir)
                    report.finished.append(config.name)
                else:
                    report.failed.append((config.name, str(nb_path) if result["notebook"] is not None
                                          else "(none came back)", result["error"]))
                bar.update(1)
                bar.set_postfix(failed=len(report.failed))
    report.wall_time_s = time.time() - t0
    return report
