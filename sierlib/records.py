"""Run records: where they live, how they are written and read. The only home of their layout.

One finished run is one JSON file ``<runs_dir>/<corpus>/<name>.json`` (``<corpus>``: the corpus's
short name, :func:`sierlib.registry.corpus_name`; a manifest's stem)::

    status        "finished" (a record is written once, atomically, when the run ends)
    format        2 (the layout below; every committed record has it)
    name          RunConfig.name
    config        RunConfig fields (what was trained)
    features      the feature parameters it read; encoder_sizes (earlier encoders only)
    speakers, n_utterances, emotions, synthetic
    manifest      (manifest corpora only) {"path", "sha256"} of the CSV the run read
    model         (runs with RunOptions.save_model only) the saved network, <name>.pt beside
                  the record (see sierlib.predict)
    test_accuracy, test_uar, test_macro_f1, test_confusion, val_accuracy (of the config's
    selection), selections (the same for every selection method: best_val, swa, ema),
    best_epoch (the best validation epoch), train_speaker_accuracy_final (last epoch),
    train_speaker_accuracy_best (the selected weights), curves (one row per epoch; a probe run's
    rows also hold holdout_speaker_accuracy)
    speaker_information (probe runs, speaker_holdout > 0, only) see sierlib.speakerinfo: of the
    config's selection; each selections entry holds that of its own weights too (records made
    before that have only this one; read them with speaker_information_at)
    wall_time_s, device, torch_threads, versions, git_commit, finished_at

Two folders hold records:

- ``results/runs`` (:data:`REFERENCE_RUNS`): the committed reference records that the tables in
  ``results/`` are built from; only a deliberate sweep writes here (``sier sweep --reference``);
- ``results/local/runs`` (:data:`LOCAL_RUNS`, git-ignored): everything else, i.e. your own
  papermill runs, ``make run`` and ordinary sweeps, so they never change the committed tables.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import torch

from . import __version__
from .config import DEFAULTS, RunConfig
from .paths import LOCAL_RUNS, REFERENCE_RUNS, REPO_ROOT, write_json_atomic
from .registry import corpus_name

FORMAT = 2

# What a run executes; "-dirty" marks a record whose run started with uncommitted changes here.
# Changes elsewhere (README, papers/, results/) do not touch a run.
RUN_CODE_PATHS = ("sierlib", "notebooks/04_train.ipynb", "pyproject.toml")


def runs_dir(out_dir: str | os.PathLike | None = None) -> Path:
    """The folder of run records: ``out_dir``, else :data:`LOCAL_RUNS`."""
    return Path(out_dir) if out_dir is not None else LOCAL_RUNS


def record_path(config, out_dir: str | os.PathLike | None = None) -> Path:
    """Where the record of a :class:`~sierlib.config.RunConfig` lives under ``out_dir``."""
    return runs_dir(out_dir) / corpus_name(config.corpus) / f"{config.name}.json"


def model_path(config, out_dir: str | os.PathLike | None = None) -> Path:
    """Where the saved network of a run lives (``RunOptions.save_model``): beside its record."""
    return record_path(config, out_dir).with_suffix(".pt")


def read_record(path: str | os.PathLike) -> dict | None:
    """A finished run's record, or None if the file is absent, unreadable or unfinished."""
    try:
        with open(path) as f:
            rec = json.load(f)
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("status") == "finished" else None


def speaker_information_at(record: dict, selection: str) -> dict | None:
    """A probe run's speaker information measured on the weights of ``selection`` (``"best_val"``,
    ``"swa"``, ``"ema"``), or None where the record has none for those weights: not a probe run,
    or a record made before every selection was measured, which holds that of its config's
    selection only."""
    info = record.get("selections", {}).get(selection, {}).get("speaker_information")
    if info is None and record["config"].get("selection", DEFAULTS["selection"]) == selection:
        info = record.get("speaker_information")
    return info


def write_record(record: dict, out_dir: str | os.PathLike | None = None) -> Path:
    """Write a finished record atomically to ``<out_dir>/<corpus>/<name>.json``."""
    path = runs_dir(out_dir) / corpus_name(record["config"]["corpus"]) / f"{record['name']}.json"
    return write_json_atomic(record, path)


def iter_records(folder: str | os.PathLike | None = None, corpus: str | None = None):
    """Every finished record under ``folder`` (default :data:`REFERENCE_RUNS`), optionally of
    one corpus, in file-name order."""
    folder = Path(folder) if folder is not None else REFERENCE_RUNS
    pattern = f"{corpus_name(corpus)}/*.json" if corpus else "*/*.json"
    for path in sorted(folder.glob(pattern)):
        rec = read_record(path)
        if rec is not None:
            yield rec


def git_commit(repo: str | os.PathLike = REPO_ROOT) -> str | None:
    """HEAD's commit, with "-dirty" if the run code (:data:`RUN_CODE_PATHS`) has uncommitted
    changes; None outside a git checkout. The environment variable ``SIER_GIT_COMMIT``, when
    set, names the commit instead: for a copy of the tree sent to a lent GPU machine, whose
    own git folder (if any) does not know what was committed since it was made."""
    if os.environ.get("SIER_GIT_COMMIT"):
        return os.environ["SIER_GIT_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *RUN_CODE_PATHS],
                               cwd=repo, capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def library_versions() -> dict:
    """Versions of Python and the libraries a result depends on (librosa: None where it is not
    installed, e.g. on a GPU machine that reads precomputed features)."""
    try:
        import librosa  # optional where features come precomputed (a pack on a GPU machine)
    except ImportError:
        librosa = None
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "librosa": librosa and librosa.__version__, "pandas": pd.__version__, "sklearn": sklearn.__version__,
            "sierlib": __version__}


def make_record(config: RunConfig, *, feats_params: dict, data: dict, result: dict, selections: dict,
                speaker_accuracy_final: float, speaker_accuracy_best: float, started: float, device: str,
                torch_threads: int, commit: str | None, manifest: dict | None = None) -> dict:
    """A finished run's record, in the layout above: the configuration and what it read, the
    fold's speakers, the test metrics of the config's selection (and of every selection), the
    training curves and where and when it ran. ``data`` is the fold (:func:`sierlib.dataset.fold_data`),
    ``result`` what :func:`sierlib.train.fit` returned, ``selections`` the test metrics per
    selection method, ``started`` the run's ``time.time()`` at its start."""
    tr, va, te = data["train"], data["val"], data["test"]
    chosen = selections[config.selection]
    return {
        "status": "finished", "format": FORMAT, "name": config.name, "config": config.to_dict(),
        "features": feats_params,
        **({"encoder_sizes": config.encoder_sizes} if config.encoder_sizes is not None else {}),
        "synthetic": config.corpus == "synthetic",
        **({"manifest": manifest} if manifest is not None else {}),
        "speakers": {"train": data["train_speakers"], "val": sorted(set(va["speakers"])),
                     "test": sorted(set(te["speakers"]))},
        "n_utterances": {"train": len(tr["X"]), "val": len(va["X"]), "test": len(te["X"]),
                         "val_by_speaker": {s: va["speakers"].count(s) for s in sorted(set(va["speakers"]))}},
        "emotions": data["emotions"],
        "test_accuracy": chosen["test_accuracy"], "test_uar": chosen["test_uar"],
        "test_macro_f1": chosen["test_macro_f1"], "test_confusion": chosen["test_confusion"],
        "val_accuracy": chosen["val_accuracy"], "best_epoch": result["best_epoch"],
        "selections": selections,
        "train_speaker_accuracy_final": speaker_accuracy_final,
        "train_speaker_accuracy_best": speaker_accuracy_best,
        "curves": result["curves"],
        "wall_time_s": time.time() - started,
        "device": device,
        "torch_threads": torch_threads,
        "versions": library_versions(),
        "git_commit": commit,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
