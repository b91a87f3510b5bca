"""The sweep runner: resumable, reports failures, collects and bundles records."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sierlib.sweep as sweep
from sierlib.sweep import bundle_records, collect_runs, plan_sweep, run_sweep, unbundle_records
from sierlib.train import run_name

TINY = dict(n_filters=8, gru_hidden=8, fc_hidden=8, epochs=1, batch_size=8)


def synthetic_plan():
    return plan_sweep("synthetic", folds=[0, 1, 2], gammas=[None, 2.5], depths=[1], **TINY)


def test_plan_covers_every_combination_once():
    plan = plan_sweep("emodb", gammas=[None, 1.25, 2.5, 3.33], depths=[1, 2, 3, 4])
    assert len(plan) == 5 * 4 * 4 and len({run_name(p) for p in plan}) == 80
    grid = plan_sweep("emodb", folds=[0], gammas=[2.5], depths=[1], grid=True)
    assert len(grid) == 16 and {p["kernel_size"] for p in grid} == {5, 2}
    assert len(plan_sweep("ravdess", gammas=[None], depths=[1])) == 12
    # the earlier encoders have no depth or grid: one run per fold and gamma, whatever is asked
    enc = plan_sweep("emodb", gammas=[None, 3.33], depths=[2, 3], grid=True, encoders=["2dcnn_bigru", "tdnn_bilstm"])
    assert sum(p["encoder"] == "tdnn_bilstm" for p in enc) == 10
    assert all(p["n_cnn_layers"] == 1 for p in enc if p["encoder"] == "tdnn_bilstm")


def test_a_killed_sweep_finishes_the_rest_without_losing_or_duplicating(synthetic_root, synthetic_cache, tmp_path,
                                                                           monkeypatch, capfd):
    monkeypatch.setenv("SIER_CACHE", str(synthetic_cache))
    runs, nbs = tmp_path / "runs", tmp_path / "nbs"
    plan = synthetic_plan()
    script = (f"from sierlib.sweep import plan_sweep, run_sweep\n"
              f"plan = plan_sweep('synthetic', folds=[0, 1, 2], gammas=[None, 2.5], depths=[1], **{TINY!r})\n"
              f"run_sweep(plan, workers=1, out_dir={str(runs)!r}, notebook_dir={str(nbs)!r}, "
              f"data_root={str(synthetic_root)!r}, progress=False)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(runs.rglob("*.json"))) < 2:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its kernels, mid-run
    proc.wait()
    before = {p.name for p in runs.rglob("*.json")}
    assert 2 <= len(before) < len(plan), "the sweep should have been killed halfway"
    capfd.readouterr()
    report = run_sweep(plan, workers=2, out_dir=runs, notebook_dir=nbs, data_root=synthetic_root, progress=False)
    assert report.failed == []
    assert "WARNING" not in capfd.readouterr().err  # kernels' log noise stays out of the progress bar
    assert report.skipped >= len(before) and report.skipped + len(report.finished) == len(plan)
    files = sorted(p.name for p in (runs / "synthetic").iterdir())
    assert files == sorted(f"{run_name(p)}.json" for p in plan)  # one finished record per run, nothing else
    assert all(json.loads((runs / "synthetic" / f).read_text())["status"] == "finished" for f in files)
    assert len(list(nbs.rglob("*.ipynb"))) >= len(report.finished)
    again = run_sweep(plan, workers=1, out_dir=runs, notebook_dir=nbs, data_root=synthetic_root, progress=False)
    assert again.skipped == len(plan) and again.finished == []
    table = collect_runs("synthetic", runs, tmp_path / "runs_synthetic.csv")
    assert len(table) == len(plan) and set(table.fold) == {0, 1, 2}
    bundle = bundle_records(tmp_path / "bundle.tar.gz", runs)
    assert unbundle_records(bundle, tmp_path / "elsewhere") and \
        len(list((tmp_path / "elsewhere").rglob("*.json"))) == len(plan)
    assert unbundle_records(bundle, tmp_path / "elsewhere") == []  # nothing twice


def test_a_failed_run_is_reported_with_its_notebook_and_others_go_on(tmp_path, monkeypatch):
    plan = synthetic_plan()
    bad = run_name(plan[1])

    def fake_execute(params, out_dir, nb_dir, data_root, threads, timeout):
        name = run_name(params)
        if name == bad:
            raise RuntimeError("CUDA out of memory (simulated)")
        from sierlib.train import write_json_atomic
        write_json_atomic({"status": "finished", "name": name, "params": params},
                          out_dir / params["corpus"] / f"{name}.json")
        return name, nb_dir / f"{name}.ipynb"

    monkeypatch.setattr(sweep, "_execute", fake_execute)
    report = run_sweep(plan, workers=2, out_dir=tmp_path, notebook_dir=tmp_path / "nbs", progress=False)
    assert len(report.finished) == len(plan) - 1
    assert [f[0] for f in report.failed] == [bad]
    assert report.failed[0][1].endswith(f"{bad}.ipynb") and "out of memory" in report.failed[0][2]
    assert "FAILED" in str(report)


def test_bad_workers():
    with pytest.raises(ValueError, match="workers"):
        run_sweep([], workers=0)
