"""Runs without notebooks: worker processes that load a corpus's features once and keep them (and
a CUDA context) across their runs, which is what makes a GPU sweep fast
(:func:`run_in_process`); feature packs for a machine without the audio (:func:`write_pack`,
:func:`load_pack`); and record bundles to bring results back from a lent machine
(:func:`bundle_records`, :func:`unbundle_records`). Same records, names and resumability as the
papermill sweep (:mod:`sierlib.sweep`).
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import queue as queue_module
import tarfile
import threading
import time
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from .config import RunConfig, RunOptions
from .corpora import load_metadata
from .dataset import load_corpus_features
from .experiments import run
from .features import extract_features, load_features, save_features
from .paths import atomic_write, write_csv_atomic
from .records import read_record
from .records import runs_dir as runs_dir_of  # the functions below take a runs_dir argument
from .registry import check_feature_params, corpus_name, feature_kind
from .sweep import SweepReport, unfinished


def pack_file(folder, corpus: str, params: dict) -> Path:
    """Where a pack keeps a corpus's features of ``params``: ``<corpus>-<kind>.npz`` for the
    project's default parameters of that kind, ``<corpus>-<kind>-<hash>.npz`` for others (a
    high-pass, trimming or speed variant)."""
    kind = feature_kind(params)
    default = check_feature_params(kind=kind)
    suffix = "" if params == default else "-" + hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]
    return Path(folder) / f"{corpus_name(corpus)}-{kind}{suffix}.npz"


def write_pack(folder, corpus: str, encoders=("2dcnn_bigru",), data_root=None, variants=()) -> list[Path]:
    """Write a corpus's metadata and features (of the kinds the encoders read, and of every
    feature-parameter dict in ``variants``, e.g. :func:`sierlib.recipe.feature_variants`) to
    ``folder``, so that a machine without the audio (e.g. a lent GPU machine) can run
    :func:`run_in_process`."""
    meta = load_metadata(corpus, data_root)
    written = [write_csv_atomic(meta, Path(folder) / f"{corpus}-meta.csv")]
    wanted = [RunConfig(corpus=corpus, encoder=e).feature_params for e in encoders] + list(variants)
    for params in {json.dumps(p, sort_keys=True): p for p in wanted}.values():
        feats = extract_features(meta, progress=True, **params)
        written.append(save_features(feats, pack_file(folder, corpus, feats.params), compress=True))
    return written


def load_pack(folder, config: RunConfig, params: dict | None = None, corpus: str | None = None):
    """The metadata and features of ``config``'s corpus, or of ``corpus`` (e.g. its
    ``test_corpus``), of ``params`` (default the config's feature parameters) from a folder
    written by :func:`write_pack`."""
    params = config.feature_params if params is None else params
    corpus = config.corpus if corpus is None else corpus
    meta = pd.read_csv(Path(folder) / f"{corpus_name(corpus)}-meta.csv", dtype={"speaker": str, "utterance": str})
    path = pack_file(folder, corpus, params)
    if not path.is_file():
        raise FileNotFoundError(f"the pack in {folder} has no features {params} ({path.name}); write them with "
                                f"`sier pack` (--recipe for the recipe study's variants) where the audio is")
    return meta, load_features(path, params)


def end_with_parent() -> None:
    """Make this worker process exit as soon as the process that started it ends, however it
    ended (Ctrl-C, ``kill``, out of memory): otherwise a killed sweep leaves its workers training
    through their whole share of runs, unseen, writing records. Does nothing in a process that
    multiprocessing did not start."""
    parent = mp.parent_process()
    if parent is None:
        return

    def watch():
        parent.join()  # returns when the parent is gone
        os._exit(1)  # a run in flight writes no record: records are written whole at its end

    threading.Thread(target=watch, daemon=True, name="end-with-parent").start()


def _in_process_worker(configs, options: RunOptions, pack, deadline, queue):
    """One worker process: loads each corpus and feature kind once, then runs its configs."""
    end_with_parent()
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
            speed_feats = test_set = None
            if pack and config.speed_factors:  # speed-perturbed copies come from the pack too
                speed_feats = {f: load_pack(pack, config, {**config.feature_params, "speed": f})[1]
                               for f in config.speed_factors}
            if config.test_corpus is not None:  # cross-corpus: the other corpus, loaded once too
                test_key = (config.test_corpus, key[1])
                if test_key not in loaded:
                    loaded[test_key] = (load_pack(pack, config, corpus=config.test_corpus) if pack else
                                        load_corpus_features(config, options.data_root, False, config.test_corpus))
                test_set = loaded[test_key]
            run(config, options, meta=meta, feats=feats, progress=False, speed_feats=speed_feats, test_set=test_set)
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
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1; got {workers!r}")
    out_dir = runs_dir_of(out_dir)
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
    folder = runs_dir_of(runs_dir)
    with atomic_write(dest, "wb") as f, tarfile.open(fileobj=f, mode="w:gz") as tar:
        for path in sorted(folder.rglob("*.json")):
            if read_record(path) is not None:
                tar.add(path, arcname=str(path.relative_to(folder)))
    return Path(dest)


def unbundle_records(bundle, runs_dir=None) -> list[str]:
    """Add the records of a bundle to ``runs_dir``; existing finished records are kept."""
    folder = runs_dir_of(runs_dir)
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


