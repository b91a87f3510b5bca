"""Speaker-independent folds (paper section 4.1): leave-two-speakers-out, gender balanced.

Each fold tests on one male and one female speaker, validates on the next male and female, and
trains on the rest: Emo-DB gives 5 folds of 6 / 2 / 2 speakers, RAVDESS 12 folds of 20 / 2 / 2.
Males and females are each sorted by id and paired by rank, so fold k tests on the k-th male and
k-th female and validates on the (k+1)-th (cyclically). Every speaker is a test speaker in
exactly one fold (and a validation speaker in exactly one), and the folds are deterministic.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .paths import FOLDS_DIR, LOCAL_FOLDS, write_csv_atomic
from .registry import corpus_name, is_manifest

ROLES = ("train", "val", "test")


def make_folds(meta: pd.DataFrame) -> pd.DataFrame:
    """Fold table with columns ``fold, speaker, gender, role`` (one row per fold and speaker).

    The number of folds is the number of speakers of each gender (5 for Emo-DB, 12 for RAVDESS).
    """
    speakers = meta[["speaker", "gender"]].drop_duplicates().sort_values("speaker")
    if speakers["speaker"].duplicated().any():
        raise ValueError("a speaker appears with two genders in the metadata")
    males = sorted(speakers.loc[speakers.gender == "male", "speaker"])
    females = sorted(speakers.loc[speakers.gender == "female", "speaker"])
    if len(males) != len(females) or len(males) < 3:
        raise ValueError(f"gender-balanced leave-two-speakers-out folds need equal numbers (>= 3) of "
                         f"male and female speakers; got {len(males)} male, {len(females)} female")
    n = len(males)
    rows = []
    for k in range(n):
        role_of = {}
        for group in (males, females):
            role_of[group[k]] = "test"
            role_of[group[(k + 1) % n]] = "val"
        for spk, gender in speakers.itertuples(index=False):
            rows.append({"fold": k, "speaker": spk, "gender": gender, "role": role_of.get(spk, "train")})
    return pd.DataFrame(rows)


def n_folds(folds: pd.DataFrame) -> int:
    return int(folds["fold"].nunique())


def fold_speakers(folds: pd.DataFrame, fold: int) -> dict[str, list[str]]:
    """``{"train": [...], "val": [...], "test": [...]}`` speaker ids of one fold."""
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < n_folds(folds):
        raise ValueError(f"fold must be an int in 0..{n_folds(folds) - 1}; got {fold!r}")
    f = folds[folds["fold"] == fold]
    return {role: sorted(f.loc[f.role == role, "speaker"]) for role in ROLES}


def split_metadata(meta: pd.DataFrame, folds: pd.DataFrame, fold: int) -> dict[str, pd.DataFrame]:
    """The metadata rows of each role in one fold."""
    spk = fold_speakers(folds, fold)
    return {role: meta[meta["speaker"].isin(s)].reset_index(drop=True) for role, s in spk.items()}


def cross_corpus_split(meta: pd.DataFrame, folds: pd.DataFrame, fold: int, emotions,
                       test_meta: pd.DataFrame) -> tuple[list[str], dict[str, pd.DataFrame], dict[str, list]]:
    """A cross-corpus fold: the emotions of ``emotions`` (``meta``'s label order) that
    ``test_meta``'s corpus has too; training on every speaker of ``meta`` but the fold's
    validation pair (its test pair joins the training speakers), validating on that pair, testing
    on every speaker of ``test_meta``, each role's rows kept to the shared emotions. Returns
    ``(shared emotions, rows of each role, speakers of each role)``."""
    shared = [e for e in emotions if e in set(test_meta["emotion"])]
    if len(shared) < 2:
        raise ValueError(f"the test corpus shares {len(shared)} emotion(s) with {meta['corpus'].iloc[0]!r}; "
                         f"a cross-corpus run needs at least 2")
    parts, spk = split_metadata(meta, folds, fold), fold_speakers(folds, fold)
    parts = {"train": pd.concat([parts["train"], parts["test"]], ignore_index=True), "val": parts["val"],
             "test": test_meta}
    parts = {role: m[m["emotion"].isin(shared)].reset_index(drop=True) for role, m in parts.items()}
    speakers = {"train": spk["train"] + spk["test"], "val": spk["val"], "test": sorted(test_meta["speaker"].unique())}
    return shared, parts, speakers


def write_fold_table(folds: pd.DataFrame, corpus: str, out_dir: str | os.PathLike | None = None) -> Path:
    """Write a corpus's fold table (columns fold, speaker, gender, role) to ``out_dir``, by default
    ``results/folds/<corpus>.csv`` for a built-in corpus (committed) and
    ``results/local/folds/<stem>.csv`` for a manifest corpus (git-ignored: a corpus of your own
    never leaves a file among the reference tables)."""
    if out_dir is None:
        out_dir = LOCAL_FOLDS if is_manifest(corpus) else FOLDS_DIR
    return write_csv_atomic(folds, out_dir / f"{corpus_name(corpus)}.csv")


def fold_grid(folds: pd.DataFrame) -> pd.DataFrame:
    """Speaker x fold table of roles, for display."""
    return folds.pivot(index=["gender", "speaker"], columns="fold", values="role")
