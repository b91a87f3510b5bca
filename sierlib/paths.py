"""The ground floor: where things live, and how a file is written so that a crash never leaves
half of it. Imports nothing of sierlib.

Every folder the project reads or writes is named here, once: the committed results (reference
records, tables, fold tables, the recipe study) and the git-ignored ones (your own runs and what
is derived from them, executed notebooks, checkpoints, the feature cache, the corpora).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "results"
NOTEBOOKS = REPO_ROOT / "notebooks"

# committed: written only by deliberate reference commands (`sier sweep --reference`, ...)
REFERENCE_RUNS = RESULTS / "runs"  # one JSON record per paper-literal run
FOLDS_DIR = RESULTS / "folds"  # the built-in corpora's fold tables
CLASSICAL_RUNS = RESULTS / "classical"  # openSMILE + SVM peers
STUDY_RUNS = RESULTS / "recipe" / "runs"  # the recipe study's runs
DECISIONS = RESULTS / "recipe_decisions.csv"
RECIPE_TABLES = RESULTS / "recipe_tables.csv"  # and recipe_tables.md beside it
ADVERSARY_RUNS = RESULTS / "adversary" / "runs"  # the adversary study's probe runs
ADVERSARY_TABLES = RESULTS / "adversary_tables.csv"  # and adversary_tables.md beside it
CROSS_CORPUS_RUNS = RESULTS / "adversary" / "crosscorpus"  # cross-corpus runs: the network's and the SVM's
CROSS_CORPUS_TABLES = RESULTS / "crosscorpus_tables.csv"  # and crosscorpus_tables.md beside it

# git-ignored: your own runs and what is derived from them; never read by the committed tables
LOCAL = RESULTS / "local"
LOCAL_RUNS = LOCAL / "runs"
LOCAL_FOLDS = LOCAL / "folds"  # a manifest corpus's fold table (your own corpus)
LOCAL_RECIPE = LOCAL / "recipe"
LOCAL_ADVERSARY = LOCAL / "adversary"
EXECUTED_NOTEBOOKS = RESULTS / "notebooks"  # notebooks executed by sweeps


def data_root(data_root: str | os.PathLike | None = None) -> Path:
    """The folder that holds ``emodb/``, ``ravdess/`` (and ``synthetic/``).

    Taken from the argument, else the environment variable ``SIER_DATA``, else ``data/`` in the
    repository (git-ignored).
    """
    if data_root is None:
        data_root = os.environ.get("SIER_DATA") or (REPO_ROOT / "data")
    return Path(data_root).expanduser().resolve()


def cache_dir(cache: str | os.PathLike | None = None) -> Path:
    """Feature cache folder: argument, else ``SIER_CACHE``, else ``cache/`` in the repository."""
    if cache is None:
        cache = os.environ.get("SIER_CACHE") or (REPO_ROOT / "cache")
    return Path(cache).expanduser().resolve()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w"):
    """Open a temporary file beside ``path`` for writing; rename it into place only when the
    block ends without an exception (so a crash never leaves a half-written file that reads as
    valid), otherwise delete it. Creates the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(obj: dict, path: str | os.PathLike) -> Path:
    with atomic_write(path) as f:
        json.dump(obj, f, indent=1)
    return Path(path)


def write_csv_atomic(df, path: str | os.PathLike) -> Path:
    with atomic_write(path) as f:
        df.to_csv(f, index=False)
    return Path(path)


def write_text_atomic(text: str, path: str | os.PathLike) -> Path:
    with atomic_write(path) as f:
        f.write(text)
    return Path(path)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The sha256 of a file's content, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
