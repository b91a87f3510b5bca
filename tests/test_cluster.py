"""Sweeps on a Dask cluster (sierlib.cluster): the local sweep's guarantees, and a worker killed
mid-run. Dask is an optional extra: without it these tests skip, except in CI (CI=true), where
`make setup` installs it and its absence is a failure."""
import json
import os
import signal
import threading
import time

import pytest

from sierlib.cli import main as sier
from sierlib import cluster
from sierlib.records import write_record
from sierlib.sweep import plan_sweep

TINY = dict(n_filters=8, gru_hidden=8, fc_hidden=8, epochs=1, batch_size=8)


@pytest.fixture(scope="module")
def distributed():
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        import distributed  # CI installs the cluster extra: a missing dask fails here instead of skipping

        return distributed
    return pytest.importorskip("distributed")


def dask_sweep_cli(tmp_path, *args):
    return sier(["sweep", "--corpus", "synthetic", "--gammas", "none", "--depths", "1", "--set",
                       *(f"{k}={v}" for k, v in TINY.items()), "--out-dir", str(tmp_path / "runs"), *args])


@pytest.mark.parametrize("text", ["local", "local:0", "local:x", "tcp://host:8786", "local:2:3"])
def test_a_malformed_cluster_option_is_refused_naming_it(text, tmp_path, capsys):
    with pytest.raises(SystemExit):
        dask_sweep_cli(tmp_path, "--folds", "0", "--cluster", text)
    err = capsys.readouterr().err
    assert "--cluster" in err and "local:N" in err
    assert cluster.parse_cluster(" local:3 ") == 3


@pytest.mark.parametrize("args,words", [
    (["--cluster", "local:2", "--gpus-per-run", "1"], "--scheduler"),
    (["--scheduler", "tcp://127.0.0.1:8786", "--retries", "2"], "ALLOWED_FAILURES=2"),
    (["--cluster", "local:2", "--in-process"], "--in-process"),
    (["--cluster", "local:2", "--scheduler", "tcp://127.0.0.1:8786"], "not allowed with"),
])
def test_contradictory_dask_options_are_refused_before_anything_runs(args, words, tmp_path, capsys):
    with pytest.raises(SystemExit):
        dask_sweep_cli(tmp_path, "--folds", "0", *args)
    assert words in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_an_unreachable_scheduler_says_what_to_do(distributed, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 1)
    with pytest.raises(SystemExit):
        dask_sweep_cli(tmp_path, "--folds", "0", "--scheduler", "tcp://127.0.0.1:9")
    err = capsys.readouterr().err
    assert "--scheduler tcp://127.0.0.1:9: no Dask scheduler answered" in err and "--cluster local:N" in err


@pytest.mark.slow
def test_cli_on_a_local_cluster_reports_finished_and_failed_runs(distributed, synthetic_root, synthetic_feats,
                                                                  synthetic_cache, tmp_path, monkeypatch, capsys):
    """`sier sweep --cluster local:1`: a run with a finished record is not submitted and is
    counted as already finished; a failed run comes back with its error and executed notebook."""
    monkeypatch.setenv("SIER_CACHE", str(synthetic_cache))
    monkeypatch.setattr(cluster, "NOTEBOOK_DIR", tmp_path / "nbs")
    done, bad = plan_sweep("synthetic", folds=[0, 3], gammas=[None], depths=[1], **TINY)  # 6 speakers: no fold 3
    write_record({"status": "finished", "name": done.name, "config": done.to_dict()}, tmp_path / "runs")
    rc = dask_sweep_cli(tmp_path, "--folds", "0", "3", "--data-root", str(synthetic_root), "--cluster", "local:1")
    out = capsys.readouterr().out
    assert rc == 1
    assert "2 planned, 1 already finished, 0 ran now, 1 failed" in out
    nb = tmp_path / "nbs" / "synthetic" / f"{bad.name}.ipynb"
    assert f"FAILED {bad.name}: " in out and "fold" in out and f"notebook: {nb}" in out
    assert "bad parameter" in nb.read_text()  # the executed notebook came back from the worker
    assert sorted(p.stem for p in (tmp_path / "runs" / "synthetic").iterdir()) == [done.name]


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(distributed, synthetic_root, synthetic_feats,
                                                               synthetic_cache, tmp_path, monkeypatch):
    """SIGKILL the OS process of a worker while its notebook runs: the scheduler starts that run
    again on a worker, and the sweep ends with one finished record per planned run."""
    import psutil

    monkeypatch.setenv("SIER_CACHE", str(synthetic_cache))  # the workers inherit it; the features are cached
    plan = plan_sweep("synthetic", folds=[0, 1, 2], gammas=[None], depths=[1], **TINY)
    kwargs = dict(out_dir=tmp_path / "runs", notebook_dir=tmp_path / "nbs", data_root=synthetic_root,
                  device="cpu", progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as local, \
            distributed.Client(local) as client:
        done = {}
        thread = threading.Thread(target=lambda: done.update(report=cluster.run_on_dask(plan, client=client,
                                                                                        **kwargs)))
        thread.start()
        victim, deadline = None, time.time() + 120
        while victim is None and time.time() < deadline:  # a worker whose notebook kernel is up
            time.sleep(0.5)
            for address, pid in client.run(os.getpid).items():
                kernels = [p for p in psutil.Process(pid).children() if "ipykernel" in " ".join(p.cmdline())]
                executing = client.run(lambda dask_worker: [ts.key for ts in dask_worker.state.executing],
                                       workers=[address])[address]
                if kernels and executing:
                    victim = (pid, kernels[0].pid, executing[0])
                    break
        assert victim is not None, "no worker started a notebook within 2 minutes"
        time.sleep(2)  # into the run
        pid, kernel_pid, key = victim
        os.kill(pid, signal.SIGKILL)
        thread.join(timeout=300)
        assert not thread.is_alive(), "the sweep did not end after the worker was killed"
        assert pid not in client.run(os.getpid).values()  # the nanny started a new worker process
    report = done["report"]
    names = sorted(c.name for c in plan)
    killed_run = next(n for n in names if key.startswith(f"sier-{n}-"))
    assert report.failed == [] and sorted(report.finished) == names  # every run once, the killed one included
    files = sorted(p.name for p in (tmp_path / "runs" / "synthetic").iterdir())
    assert files == [f"{n}.json" for n in names]  # nothing else: no temporary files, no duplicates
    assert all(json.loads((tmp_path / "runs" / "synthetic" / f).read_text())["status"] == "finished" for f in files)
    assert (tmp_path / "nbs" / "synthetic" / f"{killed_run}.ipynb").exists()
    assert not psutil.pid_exists(kernel_pid) or psutil.Process(kernel_pid).status() == psutil.STATUS_ZOMBIE, \
        "the killed worker's notebook kernel still runs"
    # a rerun finds every record and starts no cluster at all
    again = cluster.run_on_dask(plan, cluster="local:2", **kwargs)
    assert again.skipped == len(plan) and again.finished == [] and again.failed == []


def test_runs_that_ask_for_gpus_no_worker_offers_are_refused(distributed, tmp_path):
    plan = plan_sweep("synthetic", folds=[0], gammas=[None], depths=[1], **TINY)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as local, distributed.Client(local) as client:
        with pytest.raises(cluster.ClusterError, match="no worker .* offers GPU=1.*--resources GPU=1"):
            cluster.run_on_dask(plan, client=client, gpus_per_run=1, out_dir=tmp_path / "runs", progress=False)
