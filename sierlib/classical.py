"""Classical baseline: openSMILE functionals + standardiser + SVM, on the neural runs' folds.

This is the reference point that speech-emotion papers compare against: one fixed-length vector
of utterance-level statistics ("functionals") per recording, a linear SVM, and nothing learned
end to end. It runs on exactly the speaker-independent folds of :mod:`sierlib.folds` (the folds
of the neural runs), so its numbers sit beside Table 1 fold for fold.

Features (:func:`opensmile_functionals`)
    Each recording is read with :func:`sierlib.audio.read_audio` as mono float32 at 16 kHz
    (stereo RAVDESS files are averaged; RAVDESS's 48 kHz is resampled with soxr) and passed
    **whole** to ``opensmile.Smile(feature_set, FeatureLevel.Functionals).process_signal``.
    Unlike the MFCC pipeline of :mod:`sierlib.features` there is no high-pass filter, no
    silence trimming and no padding: the functionals are statistics over the whole recording
    (openSMILE's own voice-activity-dependent descriptors, e.g. the voiced-segment F0
    statistics, already ignore the silence), which is how these baselines are normally run
    (Eyben et al. 2016 for eGeMAPS; Schuller et al. 2016 for the ComParE set).
    ``eGeMAPSv02`` gives 88 features, ``ComParE_2016`` 6373. Results are cached under the
    cache folder (``SIER_CACHE`` or ``cache/``), keyed by corpus, file list, feature set, sample
    rate and the opensmile version, and written atomically (temporary file + ``os.replace``).

Classifier (:func:`run_classical`)
    For one fold: a ``StandardScaler`` fitted on the training speakers' utterances only; an
    ``sklearn.svm.SVC`` (one-vs-one, ``class_weight=None``: plain accuracy is the paper's
    headline metric, and we report UAR beside it) trained on the training speakers for every
    ``C`` of the grid; ``C`` chosen by accuracy on the validation speakers (ties: the smaller
    ``C``, the more regularised model); the chosen model evaluated once on the test speakers.
    The kernel defaults to linear, the usual choice for these high-dimensional functionals (the
    ComParE and eGeMAPS papers' baselines are linear SVMs) and one with nothing to tune beside
    ``C``. For the linear kernel the Gram matrix is computed once per fold with numpy and
    handed to ``SVC(kernel="precomputed")``: the same model as ``SVC(kernel="linear")``, much
    faster for the 6373 ComParE features. The validation speakers are used only to choose
    ``C``; the chosen model is not refitted on training + validation, mirroring the neural runs.

Records
    ``results/classical/<corpus>/<corpus>-<feature_set>-fold<k>.json`` (folds numbered from 0,
    as in :mod:`sierlib.folds` and the neural runs), written atomically with status
    ``"finished"``. :func:`run_classical_all` runs every fold and skips finished records;
    :func:`classical_table` summarises them (mean ± std over folds). Command line::

        sier classical --corpus emodb ravdess --feature-sets eGeMAPSv02 ComParE_2016

This module is longer than the others (about 480 lines): openSMILE extraction, its cache and the
SVM runs over folds are one pipeline, kept together.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from tqdm.auto import tqdm

from .audio import read_audio
from .corpora import load_metadata
from .folds import cross_corpus_split, fold_speakers, make_folds, n_folds, split_metadata
from .paths import CLASSICAL_RUNS, atomic_write, cache_dir, write_json_atomic
from .records import git_commit, library_versions, read_record
from .registry import CORPORA, PAPER_CORPORA, PRETTY, check_corpus_name
from .stats import fmt, summarise
from .train import emotion_metrics

SR = 16000  # openSMILE's feature sets are designed for (and usually run at) 16 kHz
FEATURE_SETS = ("eGeMAPSv02", "ComParE_2016")  # the two run by default
# Reaches down to 1e-5: with ComParE's 6373 standardised features the linear SVM chose the
# smallest C of a grid starting at 1e-3 in every fold, so the grid must extend below it.
C_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100)
KERNELS = ("linear", "rbf", "poly", "sigmoid")
CLASSICAL_VERSION = 1  # bump when extraction changes in a way the cache key does not capture
DEFAULT_OUT = CLASSICAL_RUNS


def _opensmile():
    try:
        import opensmile  # imported when extracting only: it loads a native library
    except ImportError as exc:  # pragma: no cover - opensmile is a declared dependency
        raise ImportError("the classical baseline needs the opensmile package: "
                          "pip install opensmile") from exc
    return opensmile


def check_feature_set(feature_set) -> str:
    """Return ``feature_set`` if it names an openSMILE feature set, else raise ValueError.

    Valid names are the members of ``opensmile.FeatureSet`` (e.g. ``"eGeMAPSv02"``,
    ``"ComParE_2016"``, ``"emobase"``).
    """
    names = list(_opensmile().FeatureSet.__members__)
    if not isinstance(feature_set, str) or feature_set not in names:
        raise ValueError(f"unknown openSMILE feature set {feature_set!r}; "
                         f"choose one of {', '.join(names)}")
    return feature_set


@functools.lru_cache(maxsize=None)
def _smile(feature_set: str):
    """One openSMILE extractor per feature set and process (building one parses its config)."""
    opensmile = _opensmile()
    return opensmile.Smile(feature_set=opensmile.FeatureSet[feature_set],
                           feature_level=opensmile.FeatureLevel.Functionals)


def feature_names(feature_set: str) -> list[str]:
    """Column names of a functionals feature set (88 for eGeMAPSv02, 6373 for ComParE_2016)."""
    return list(_smile(check_feature_set(feature_set)).feature_names)


def _functionals_one(path: str, corpus: str, feature_set: str) -> np.ndarray:
    """Functionals of one whole recording (read at 16 kHz, mono), as a float32 vector."""
    y = read_audio(path, sr=SR, corpus=corpus)
    return _smile(feature_set).process_signal(y, SR).to_numpy(dtype=np.float32)[0]


def functionals_cache_key(meta: pd.DataFrame, feature_set: str) -> str:
    """Cache file stem: corpus, feature set and a hash of the file list and extraction settings."""
    corpus = str(meta["corpus"].iloc[0])
    listing = sorted(zip(meta["utterance"], meta["duration"].round(6)))
    blob = json.dumps({"corpus": corpus, "files": listing, "feature_set": feature_set, "sr": SR,
                       "level": "functionals", "trim": None, "opensmile": _opensmile().__version__,
                       "v": CLASSICAL_VERSION}, sort_keys=True)
    return f"{corpus}-opensmile-{feature_set}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def _parallel(items: list, n_jobs: int, desc: str, progress: bool) -> list:
    if n_jobs == 1:
        return [f(*a, **k) for f, a, k in tqdm(items, desc=desc, disable=not progress)]
    gen = Parallel(n_jobs=n_jobs, return_as="generator", batch_size=8)(items)
    return list(tqdm(gen, total=len(items), desc=desc, disable=not progress))


def opensmile_functionals(meta: pd.DataFrame, feature_set: str = "eGeMAPSv02",
                          cache: str | os.PathLike | None = None, n_jobs: int = -1,
                          progress: bool = True, use_cache: bool = True) -> pd.DataFrame:
    """openSMILE functionals of every recording of one corpus, cached on disk.

    Each file is read with :func:`sierlib.audio.read_audio` (``.wav`` or ``.flac``, stereo
    averaged to mono, resampled to 16 kHz; a missing or damaged file raises
    :class:`~sierlib.audio.CorpusError` naming it) and the **whole recording** -- no
    filtering, no silence trimming -- goes to openSMILE, the standard way these baselines are
    run.

    Parameters
    ----------
    meta : pandas.DataFrame
        Metadata of one corpus from :func:`sierlib.corpora.load_metadata`.
    feature_set : str
        A member of ``opensmile.FeatureSet``: ``"eGeMAPSv02"`` (88 features) or
        ``"ComParE_2016"`` (6373) are the two used here. Anything else raises ValueError.
    cache : path, optional
        Cache folder (default ``SIER_CACHE`` or ``cache/`` in the repository). The entry is keyed
        by corpus, file list (names and durations), feature set, sample rate and opensmile
        version, and written to a temporary file that is then renamed, so a crash never leaves
        an entry that reads as valid.
    n_jobs : int
        joblib processes (-1: all cores; 1: a plain loop in this process).
    progress : bool
        Show a tqdm progress bar.
    use_cache : bool
        Read and write the cache; False always extracts and writes nothing.

    Returns
    -------
    pandas.DataFrame
        float32, one row per utterance in ``meta``'s order (index ``utterance``, equal to
        ``meta.utterance``), one column per feature. ``df.attrs`` holds ``feature_set``,
        ``from_cache`` and ``extraction_s`` (seconds spent extracting; 0 on a cache hit).
    """
    feature_set = check_feature_set(feature_set)
    if len(meta) == 0 or meta["corpus"].nunique() != 1:
        raise ValueError("opensmile_functionals takes the metadata of one corpus (non-empty)")
    if meta["utterance"].duplicated().any():
        raise ValueError("meta holds duplicate utterance ids")

    corpus = str(meta["corpus"].iloc[0])
    columns = feature_names(feature_set)
    path = cache_dir(cache) / f"{functionals_cache_key(meta, feature_set)}.npz"
    if use_cache and path.is_file():
        with np.load(path, allow_pickle=False) as z:
            X, utterances, cached_columns = z["X"], z["utterances"].tolist(), z["columns"].tolist()
        if cached_columns == columns and set(utterances) == set(meta["utterance"]):
            df = pd.DataFrame(X, index=pd.Index(utterances, name="utterance"), columns=columns)
            df = df.loc[meta["utterance"].tolist()]
            df.attrs.update(feature_set=feature_set, from_cache=True, extraction_s=0.0)
            return df
    t0 = time.perf_counter()
    items = [delayed(_functionals_one)(p, corpus, feature_set) for p in meta["path"]]
    rows = _parallel(items, n_jobs, f"{corpus}: openSMILE {feature_set}", progress)
    X = np.stack(rows).astype(np.float32)
    elapsed = time.perf_counter() - t0
    if X.shape[1] != len(columns):
        raise RuntimeError(f"openSMILE returned {X.shape[1]} features for {feature_set}, "
                           f"expected {len(columns)}")
    utterances = meta["utterance"].astype(str).tolist()
    if use_cache:

        with atomic_write(path, "wb") as f:
            np.savez(f, X=X, utterances=np.array(utterances, dtype=str), columns=np.array(columns, dtype=str))
    df = pd.DataFrame(X, index=pd.Index(utterances, name="utterance"), columns=columns)
    df.attrs.update(feature_set=feature_set, from_cache=False, extraction_s=elapsed)
    return df


def record_path(corpus: str, feature_set: str, fold: int, out_dir: str | os.PathLike | None = None,
                test_corpus: str | None = None) -> Path:
    """Where the record of one classical run lives (a cross-corpus run's name says ``-to-<test_corpus>``)."""
    out_dir = Path(out_dir) if out_dir is not None else DEFAULT_OUT
    corpora = corpus + (f"-to-{test_corpus}" if test_corpus else "")
    return out_dir / corpus / f"{corpora}-{feature_set}-fold{fold}.json"


def _check_grid(C_grid) -> list[float]:
    try:
        grid = [float(c) for c in C_grid]
    except (TypeError, ValueError):
        raise ValueError(f"C_grid must be a sequence of positive numbers; got {C_grid!r}") from None
    if not grid or any(not np.isfinite(c) or c <= 0 for c in grid) or len(set(grid)) != len(grid):
        raise ValueError(f"C_grid must be a non-empty sequence of distinct positive numbers; got {C_grid!r}")
    return sorted(grid)


def _versions() -> dict:

    return {**library_versions(), "opensmile": _opensmile().__version__}


def run_classical(corpus: str, fold: int, feature_set: str = "eGeMAPSv02",
                  meta: pd.DataFrame | None = None, feats: pd.DataFrame | None = None,
                  C_grid=C_GRID, kernel: str = "linear", out_dir: str | os.PathLike | None = None,
                  save: bool = True, data_root: str | os.PathLike | None = None,
                  cache: str | os.PathLike | None = None, n_jobs: int = -1,
                  progress: bool = False, test_corpus: str | None = None) -> dict:
    """Train and evaluate the openSMILE + SVM baseline on one speaker-independent fold.

    Parameters
    ----------
    corpus : {"emodb", "ravdess", "synthetic"}
    fold : int
        Fold number, from 0, of :func:`sierlib.folds.make_folds` (the neural runs' folds).
    feature_set : str
        openSMILE feature set (see :func:`check_feature_set`).
    meta : pandas.DataFrame, optional
        The corpus's metadata (loaded from ``data_root`` if None).
    feats : pandas.DataFrame, optional
        Functionals from :func:`opensmile_functionals` for ``meta``'s utterances (extracted, or
        read from the cache, if None). Pass them to reuse one extraction over folds.
    C_grid : sequence of float
        SVM regularisation constants tried; the one with the best validation-speaker accuracy
        is kept (ties: the smaller ``C``).
    kernel : {"linear", "rbf", "poly", "sigmoid"}
        SVM kernel (default linear; see the module docstring). ``class_weight`` is None.
    out_dir : path, optional
        Records folder (default ``results/classical``); the record goes to
        ``<out_dir>/<corpus>/<corpus>-<feature_set>-fold<k>.json``.
    save : bool
        Write the record (atomically). False only returns it.
    data_root, cache, n_jobs, progress
        Passed to :func:`~sierlib.corpora.load_metadata` / :func:`opensmile_functionals` when
        ``meta`` / ``feats`` are not given.
    test_corpus : {"emodb", "ravdess"}, optional
        Cross-corpus, as a network run with this ``test_corpus`` (:func:`sierlib.dataset.fold_data`):
        the emotions both corpora share, trained on every speaker of ``corpus`` but the fold's
        validation pair (which chooses ``C``), tested on every speaker of ``test_corpus``.

    Returns
    -------
    dict
        The record: ``params`` (corpus, fold, feature_set, kernel, C_grid, C), ``speakers`` and
        ``n_utterances`` per role, ``test_accuracy``, ``test_uar``, ``test_macro_f1``,
        ``test_confusion`` (rows true, columns predicted, in ``emotions`` order),
        ``val_accuracy_per_C``, ``val_accuracy``, ``train_accuracy``, ``wall_time_s``,
        ``versions``, ``git_commit``, ``status="finished"`` (and ``path`` when saved).
    """
    t0 = time.time()
    corpus = check_corpus_name(corpus)
    feature_set = check_feature_set(feature_set)
    grid = _check_grid(C_grid)
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(KERNELS)}; got {kernel!r}")
    if meta is None:
        meta = load_metadata(corpus, data_root)
    if set(meta["corpus"]) != {corpus}:
        raise ValueError(f"meta holds corpora {sorted(set(meta['corpus']))}, not only {corpus!r}")
    folds = make_folds(meta)
    speakers = fold_speakers(folds, fold)  # validates fold
    if feats is None:
        feats = opensmile_functionals(meta, feature_set, cache=cache, n_jobs=n_jobs, progress=progress)
    elif feats.attrs.get("feature_set", feature_set) != feature_set:
        raise ValueError(f"feats hold {feats.attrs['feature_set']} functionals, but the run asks "
                         f"for {feature_set}")
    missing = set(meta["utterance"]) - set(feats.index)
    if missing:
        raise KeyError(f"feats lack {len(missing)} utterances of meta, e.g. {sorted(missing)[:3]}")
    emotions = list(CORPORA[corpus].emotions)
    emo_index = {e: i for i, e in enumerate(emotions)}
    unknown = set(meta["emotion"]) - set(emo_index)
    if unknown:
        raise ValueError(f"unknown emotion labels {sorted(unknown)} for {corpus}")

    parts = split_metadata(meta, folds, fold)
    sources = {role: feats for role in parts}
    if test_corpus is not None:
        if test_corpus == corpus or test_corpus not in PAPER_CORPORA or corpus not in PAPER_CORPORA:
            raise ValueError(f"test_corpus={test_corpus!r}: a cross-corpus run trains on one of 'emodb' and "
                             f"'ravdess' and tests on the other (corpus={corpus!r})")
        test_meta = load_metadata(test_corpus, data_root)
        sources["test"] = opensmile_functionals(test_meta, feature_set, cache=cache, n_jobs=n_jobs, progress=progress)
        emotions, parts, speakers = cross_corpus_split(meta, folds, fold, emotions, test_meta)
        emo_index = {e: i for i, e in enumerate(emotions)}
    X, y = {}, {}
    for role, m in parts.items():
        X[role] = sources[role].loc[m["utterance"].tolist()].to_numpy(dtype=np.float64)
        y[role] = np.array([emo_index[e] for e in m["emotion"]])
    bad = [role for role in X if not np.isfinite(X[role]).all()]
    if bad:
        raise ValueError(f"{feature_set} functionals hold NaN or infinite values ({', '.join(bad)} "
                         f"speakers); delete the cache entry and re-extract")

    scaler = StandardScaler().fit(X["train"])  # training speakers only
    Z = {role: scaler.transform(x) for role, x in X.items()}
    if kernel == "linear":  # same model as SVC(kernel="linear"); the Gram matrix via BLAS
        K = {role: z @ Z["train"].T for role, z in Z.items()}
        svc_kernel = "precomputed"
    else:
        K = Z
        svc_kernel = kernel

    per_C, best = [], None
    for C in grid:  # ascending: a later C must be strictly better to win (ties -> smaller C)
        model = SVC(C=C, kernel=svc_kernel, class_weight=None).fit(K["train"], y["train"])
        n_correct = int((model.predict(K["val"]) == y["val"]).sum())
        per_C.append({"C": C, "val_accuracy": n_correct / len(y["val"])})
        if best is None or n_correct > best[0]:
            best = (n_correct, C, model)
    _, C_best, model = best
    train_acc = float((model.predict(K["train"]) == y["train"]).mean())
    metrics = emotion_metrics(y["test"], model.predict(K["test"]), emotions)

    params = {"corpus": corpus, "test_corpus": test_corpus, "fold": fold, "feature_set": feature_set, "kernel": kernel,
              "C_grid": grid, "C": C_best, "class_weight": None, "sr": SR, "trim": None,
              "standardiser": "StandardScaler fitted on the training speakers"}
    record = {
        "status": "finished",
        "name": record_path(corpus, feature_set, fold, test_corpus=test_corpus).stem,
        "model": "classical",
        "params": params,
        "synthetic": corpus == "synthetic",
        "speakers": speakers,
        "n_utterances": {role: int(len(v)) for role, v in y.items()},
        "n_features": int(X["train"].shape[1]),
        "emotions": emotions,
        "test_accuracy": metrics["accuracy"], "test_uar": metrics["uar"],
        "test_macro_f1": metrics["macro_f1"], "test_confusion": metrics["confusion"],
        "val_accuracy": best[0] / len(y["val"]),
        "val_accuracy_per_C": per_C,
        "train_accuracy": train_acc,
        "n_support": int(model.n_support_.sum()),
        "features_from_cache": feats.attrs.get("from_cache"),
        "wall_time_s": time.time() - t0,
        "versions": _versions(),
        "git_commit": git_commit(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if save:
        record["path"] = str(write_json_atomic(record, record_path(corpus, feature_set, fold, out_dir, test_corpus)))
    return record


def _row(rec: dict) -> dict:
    p = rec["params"]
    return {"corpus": p["corpus"], "feature_set": p["feature_set"], "fold": p["fold"],
            "kernel": p["kernel"], "C": p["C"], "val_accuracy": rec["val_accuracy"],
            "test_accuracy": rec["test_accuracy"], "test_uar": rec["test_uar"],
            "test_macro_f1": rec["test_macro_f1"], "n_features": rec.get("n_features"),
            "wall_time_s": rec["wall_time_s"], "path": rec.get("path")}


def run_classical_all(corpus: str, feature_sets=FEATURE_SETS, folds=None, C_grid=C_GRID,
                      kernel: str = "linear", meta: pd.DataFrame | None = None,
                      data_root: str | os.PathLike | None = None,
                      cache: str | os.PathLike | None = None, out_dir: str | os.PathLike | None = None,
                      n_jobs: int = -1, progress: bool = True, timings: dict | None = None) -> pd.DataFrame:
    """Run the baseline on every fold of a corpus for each feature set.

    A finished record with the same kernel and ``C_grid`` is read back instead of re-run (one
    with other settings is re-run and overwritten); features are extracted (or read from the
    cache) only for a feature set that has folds left to run.

    Parameters
    ----------
    corpus : str
    feature_sets : sequence of str
        openSMILE feature sets, run in this order.
    folds : sequence of int, optional
        Folds to run (default: all, 5 for Emo-DB, 12 for RAVDESS).
    C_grid, kernel : see :func:`run_classical`.
    meta, data_root, cache, out_dir, n_jobs, progress : see :func:`run_classical`.
    timings : dict, optional
        If given, ``timings[(corpus, feature_set)]`` receives the extraction seconds (0 for a
        cache hit) and whether the features came from the cache.

    Returns
    -------
    pandas.DataFrame
        One row per run: corpus, feature_set, fold, kernel, C, val_accuracy, test_accuracy,
        test_uar, test_macro_f1, n_features, wall_time_s, path.
    """

    corpus = check_corpus_name(corpus)
    feature_sets = [check_feature_set(fs) for fs in ([feature_sets] if isinstance(feature_sets, str)
                                                     else feature_sets)]
    grid = _check_grid(C_grid)
    if meta is None:
        meta = load_metadata(corpus, data_root)
    fold_ids = list(range(n_folds(make_folds(meta)))) if folds is None else list(folds)
    rows = []
    for fs in feature_sets:
        done, todo = {}, []
        for k in fold_ids:
            path = record_path(corpus, fs, k, out_dir)
            rec = read_record(path)
            if rec is not None and rec["params"]["kernel"] == kernel and rec["params"]["C_grid"] == grid:
                rec["path"] = str(path)
                done[k] = rec
            else:
                todo.append(k)
        feats = None
        if todo:
            feats = opensmile_functionals(meta, fs, cache=cache, n_jobs=n_jobs, progress=progress)
            if timings is not None:
                timings[(corpus, fs)] = {"extraction_s": feats.attrs["extraction_s"],
                                         "from_cache": feats.attrs["from_cache"], "n_files": len(meta)}
        bar = tqdm(todo, desc=f"{PRETTY[corpus]} {fs} folds", unit="fold", disable=not progress or not todo)
        for k in bar:
            done[k] = run_classical(corpus, k, fs, meta=meta, feats=feats, C_grid=grid, kernel=kernel,
                                    out_dir=out_dir)
            bar.set_postfix(fold=k, acc=f"{done[k]['test_accuracy']:.3f}")
        rows += [_row(done[k]) for k in fold_ids]
    return pd.DataFrame(rows)


def load_classical_records(folder: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per finished classical record under ``folder`` (default ``results/classical``)."""
    folder = Path(folder) if folder is not None else DEFAULT_OUT
    rows = []
    for path in sorted(folder.rglob("*.json")):
        rec = read_record(path)
        if rec is None or rec.get("model") != "classical":
            continue
        rec["path"] = str(path)
        rows.append(_row(rec))
    return pd.DataFrame(rows, columns=["corpus", "feature_set", "fold", "kernel", "C", "val_accuracy",
                                       "test_accuracy", "test_uar", "test_macro_f1", "n_features",
                                       "wall_time_s", "path"])


def classical_table(folder: str | os.PathLike | None = None) -> pd.DataFrame:
    """Mean ± std over folds (ddof=1, in %) of test accuracy and UAR per corpus and feature set.

    Parameters
    ----------
    folder : path, optional
        Records folder (default ``results/classical``); every finished record below it counts.

    Returns
    -------
    pandas.DataFrame
        Columns ``corpus, feature_set, kernel, folds, acc_mean, acc_std, uar_mean, uar_std``
        (numbers, %) and ``accuracy``, ``UAR`` (formatted ``"mean ± std"``). The std is NaN
        for a single fold.
    """
    runs = load_classical_records(folder)
    cols = ["corpus", "feature_set", "kernel", "folds", "acc_mean", "acc_std", "uar_mean", "uar_std",
            "accuracy", "UAR"]
    if runs.empty:
        return pd.DataFrame(columns=cols)

    table = summarise(runs, ["corpus", "feature_set", "kernel"])
    table["accuracy"] = [fmt(m, s) for m, s in zip(table.acc_mean, table.acc_std)]
    table["UAR"] = [fmt(m, s) for m, s in zip(table.uar_mean, table.uar_std)]
    return table[cols]
