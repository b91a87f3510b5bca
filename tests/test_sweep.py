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
import sierlib.workers as workers
from sierlib.cli import main as sier
from sierlib.config import RunConfig
from sierlib.results import collect_runs
from sierlib.sweep import plan_sweep, run_sweep
from sierlib.workers import bundle_records, unbundle_records

TINY = dict(n_filters=8, gru_hidden=8, fc_hidden=8, epochs=1, batch_size=8)


def synthetic_plan():
    return plan_sweep("synthetic", folds=[0, 1, 2], gammas=[None, 2.5], depths=[1], **TINY)


def test_plan_covers_every_combination_once():
    plan = plan_sweep("emodb", gammas=[None, 1.25, 2.5, 3.33], depths=[1, 2, 3, 4])
    assert len(plan) == 5 * 4 * 4 and len({c.name for c in plan}) == 80
    grid = plan_sweep("emodb", folds=[0], gammas=[2.5], depths=[1], grid=True)
    assert len(grid) == 16 and {c.kernel_size for c in grid} == {5, 2}
    assert len(plan_sweep("ravdess", gammas=[None], depths=[1])) == 12
    # the earlier encoders have no depth or grid: one run per fold and gamma, whatever is asked
    enc = plan_sweep("emodb", gammas=[None, 3.33], depths=[2, 3], grid=True, encoders=["2dcnn_bigru", "tdnn_bilstm"])
    assert sum(c.encoder == "tdnn_bilstm" for c in enc) == 10
    assert all(c.n_cnn_layers == 1 for c in enc if c.encoder == "tdnn_bilstm")
    assert {c.epochs for c in plan_sweep("emodb", folds=[0], gammas=[None], depths=[1], epochs=60)} == {60}


@pytest.mark.slow
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
    assert files == sorted(f"{c.name}.json" for c in plan)  # one finished record per run, nothing else
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
    bad = plan[1].name

    def fake_execute(config, options, nb_dir, timeout):
        # a sweep trains what it planned: a reference record of the same run must not stand in
        # for a record in this sweep's folder
        assert options.reuse_record is False
        if config.name == bad:
            raise RuntimeError("CUDA out of memory (simulated)")
        from sierlib.records import write_record
        write_record({"status": "finished", "name": config.name, "config": config.to_dict()}, options.out_dir)
        return nb_dir / f"{config.name}.ipynb"

    monkeypatch.setattr(sweep, "execute_notebook", fake_execute)
    report = run_sweep(plan, workers=2, out_dir=tmp_path, notebook_dir=tmp_path / "nbs", progress=False)
    assert len(report.finished) == len(plan) - 1
    assert [f[0] for f in report.failed] == [bad]
    assert report.failed[0][1].endswith(f"{bad}.ipynb") and "out of memory" in report.failed[0][2]
    assert "FAILED" in str(report)


def test_bad_workers():
    with pytest.raises(ValueError, match="workers"):
        run_sweep([], workers=0)


def test_the_notebook_gets_exactly_its_parameters_cell():
    import nbformat

    from sierlib.config import RunOptions

    nb = nbformat.read(sweep.NOTEBOOK, 4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    namespace = {}
    exec(cell.source, namespace)
    sent = sweep.notebook_parameters(synthetic_plan()[0], RunOptions(out_dir="x", torch_threads=1))
    assert list(sent) == [k for k in namespace if not k.startswith("__")]


def test_sweep_cli_sets_any_config_field_and_refuses_unknown_ones(capsys):
    assert sier(["sweep", "--corpus", "emodb", "--folds", "0", "--gammas", "none", "--depths", "1",
                       "--set", "epochs=60", "lr=5e-4", "--dry-run"]) == 0
    assert "1 runs planned" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        sier(["sweep", "--set", "stride=1", "--dry-run"])
    assert "stride" in capsys.readouterr().err


@pytest.mark.slow
def test_in_process_sweep_from_a_pack_gives_the_same_records(synthetic_root, synthetic_cache, tmp_path, monkeypatch):
    """The GPU path: worker processes that keep the features in memory, reading a pack instead of
    the audio, write the same finished records (names, resumability) as the notebook path."""
    from sierlib.workers import run_in_process, write_pack

    monkeypatch.setenv("SIER_CACHE", str(synthetic_cache))
    written = write_pack(tmp_path / "pack", "synthetic", data_root=synthetic_root)
    assert {p.name for p in written} == {"synthetic-meta.csv", "synthetic-mfcc.npz"}
    plan = synthetic_plan()
    report = run_in_process(plan, workers=2, out_dir=tmp_path / "runs", device="cpu", pack=tmp_path / "pack",
                            progress=False)
    assert report.failed == [] and len(report.finished) == len(plan)
    names = sorted(p.stem for p in (tmp_path / "runs" / "synthetic").glob("*.json"))
    assert names == sorted(c.name for c in plan)
    again = run_in_process(plan, workers=2, out_dir=tmp_path / "runs", device="cpu", pack=tmp_path / "pack",
                           progress=False)
    assert again.skipped == len(plan) and again.finished == []


def _live_children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` and that are not zombies (from /proc)."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except OSError:  # ended while we looked
            continue
        if int(ppid) == pid and state != "Z":
            children.add(int(stat.parent.name))
    return children


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads processes from /proc")
def test_killing_an_in_process_sweep_ends_its_workers(synthetic_root, synthetic_cache, tmp_path, monkeypatch):
    """A sweep killed with SIGKILL (no handler can run) must not leave its workers training on."""
    monkeypatch.setenv("SIER_CACHE", str(synthetic_cache))
    runs = tmp_path / "runs"
    script = ("from sierlib.sweep import plan_sweep\nfrom sierlib.workers import run_in_process\n"
              f"plan = plan_sweep('synthetic', folds=[0, 1], gammas=[None], depths=[1], **{{**{TINY!r}, 'epochs': 1000}})\n"
              f"run_in_process(plan, workers=2, out_dir={str(runs)!r}, device='cpu', data_root={str(synthetic_root)!r}, "
              "threads_per_worker=1, progress=False)\n")
    sweep_process = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.time() + 120
        workers_seen = set()
        while time.time() < deadline and len(workers_seen) < 3:  # two workers and the resource tracker
            workers_seen |= _live_children(sweep_process.pid)
            time.sleep(0.2)
        assert len(workers_seen) >= 3, "the sweep should have started its workers"
        time.sleep(2)  # let the workers get into their runs
    finally:
        sweep_process.kill()
        sweep_process.wait()
    deadline = time.time() + 30
    while time.time() < deadline and any(_alive(pid) for pid in workers_seen):
        time.sleep(0.2)
    left = [pid for pid in workers_seen if _alive(pid)]
    for pid in left:  # do not leave them behind even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert left == [], "workers kept running after their sweep was killed"
    assert not list(runs.rglob("*.json"))  # and wrote no record


@pytest.mark.slow
def test_an_in_process_worker_loads_features_per_feature_parameters(synthetic_root, synthetic_cache, tmp_path,
                                                                    monkeypatch):
    """One worker running two trimming thresholds must not hand the second run the first's features."""
    import queue

    from sierlib.config import RunOptions

    monkeypatch.setenv("SIER_CACHE", str(synthetic_cache))
    plan = [RunConfig(corpus="synthetic", gamma=None, epochs=1, n_filters=4, gru_hidden=4, fc_hidden=4, top_db=top_db)
            for top_db in (30.0, 20.0)]
    reports = queue.Queue()  # the worker function itself, in this process (what each spawned worker runs)
    workers._in_process_worker(plan, RunOptions(device="cpu", data_root=str(synthetic_root), out_dir=str(tmp_path)),
                             None, None, reports)
    assert [reports.get_nowait() for _ in plan] == [(c.name, "finished", "") for c in plan]


@pytest.mark.slow
def test_a_pack_carries_feature_variants_and_names_a_missing_one(synthetic_root, synthetic_cache, tmp_path,
                                                                 monkeypatch):
    """A machine without the audio runs the recipe study's variants (trimming, speed) from a pack."""
    import queue

    from sierlib.config import RunOptions
    from sierlib.workers import load_pack, pack_file, write_pack

    monkeypatch.setenv("SIER_CACHE", str(synthetic_cache))
    tiny = dict(corpus="synthetic", gamma=None, epochs=1, n_filters=4, gru_hidden=4, fc_hidden=4, lengths="masked")
    speedy, trimmed = RunConfig(**tiny, speed_perturbation=0.1), RunConfig(**tiny, top_db=20.0)
    variants = [{**speedy.feature_params, "speed": s} for s in speedy.speed_factors] + [trimmed.feature_params]
    written = write_pack(tmp_path / "pack", "synthetic", data_root=synthetic_root, variants=variants)
    assert len(written) == 1 + 1 + 3 and written[1].name == "synthetic-mfcc.npz"
    assert pack_file(tmp_path / "pack", "synthetic", trimmed.feature_params).is_file()
    meta, feats = load_pack(tmp_path / "pack", trimmed)
    assert feats.params == trimmed.feature_params and len(meta) == len(feats.X)
    reports = queue.Queue()
    options = RunOptions(device="cpu", out_dir=str(tmp_path / "runs"))
    missing = RunConfig(**tiny, top_db=40.0)
    workers._in_process_worker([speedy, trimmed, missing], options, tmp_path / "pack", None, reports)
    got = [reports.get_nowait() for _ in range(3)]
    assert got[:2] == [(speedy.name, "finished", ""), (trimmed.name, "finished", "")]
    assert got[2][1] == "failed" and "has no features" in got[2][2] and "sier pack" in got[2][2]
