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

import numpy as np
import pandas as pd

from .corpora import REPO_ROOT, corpus_info, corpus_name

ROLES = ("train", "val", "test")
FOLDS_DIR = REPO_ROOT / "results" / "folds"  # the fold tables (a manifest corpus's too, by its stem)


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


def write_fold_table(folds: pd.DataFrame, corpus: str, out_dir: str | os.PathLike | None = None) -> Path:
    """Write ``results/folds/<corpus>.csv`` (columns fold, speaker, gender, role; a manifest
    corpus's table is named by the manifest's stem)."""
    from .records import write_csv_atomic

    out_dir = Path(out_dir) if out_dir is not None else FOLDS_DIR
    return write_csv_atomic(folds, out_dir / f"{corpus_name(corpus)}.csv")


def fold_grid(folds: pd.DataFrame) -> pd.DataFrame:
    """Speaker x fold table of roles, for display."""
    return folds.pivot(index=["gender", "speaker"], columns="fold", values="role")


def fold_data(meta: pd.DataFrame, feats, fold: int, folds: pd.DataFrame | None = None, masked: bool = False,
              per_speaker: bool = False, speed_feats: dict | None = None) -> dict:
    """Standardised tensors and labels of one fold, ready for training.

    The standardiser's statistics come from the fold's training speakers only; with ``masked``
    from their speech frames only, and the zero padding stays exactly 0 (the length-aware
    network's input). With ``per_speaker`` every speaker, the test speakers included, is
    standardised with the statistics of its own utterances instead: the "offline" setting of
    other papers, which uses the test speakers' (unlabelled) audio; ``mean``/``std`` are then
    None. ``speed_feats`` (``{speed: Features}``, speed-perturbed copies of the corpus; masked
    only) adds ``speed_X`` ``(1 + n_speeds, n_train, rows, frames)`` and ``speed_lengths`` to the
    training role: row 0 is ``X`` itself, the others the perturbed copies, standardised with the
    same statistics and zero-padded to the widest. Returns ``{"emotions", "train_speakers", "mean", "std", "train", "val",
    "test"}``; each role holds ``X`` (float32 tensor), ``lengths`` (true frames per utterance),
    ``y`` (emotion indices in the corpus's label order), ``speakers``, and the training role also
    ``s`` (speaker indices for the adversary).
    """
    import torch

    from .features import fit_standardiser, standardise

    emotions = list(corpus_info(str(meta["corpus"].iloc[0])).emotions)
    folds = make_folds(meta) if folds is None else folds
    parts = split_metadata(meta, folds, fold)
    train_speakers = fold_speakers(folds, fold)["train"]
    emo_index = {e: i for i, e in enumerate(emotions)}
    unknown = set(meta["emotion"]) - set(emo_index)
    if unknown:
        raise ValueError(f"unknown emotion labels {sorted(unknown)}; this corpus has {', '.join(emotions)}")
    lengths = {role: feats.select(m, feats.n_frames) for role, m in parts.items()}
    if per_speaker:
        # each speaker's own statistics (over its unperturbed utterances)
        mean = std = None
        speaker_stats = {spk: fit_standardiser(feats.select(m_spk), feats.select(m_spk, feats.n_frames) if masked else None)
                         for spk, m_spk in meta.groupby("speaker")}
    else:
        mean, std = fit_standardiser(feats.select(parts["train"]), lengths["train"] if masked else None)

    def standardised(f, m, n):
        if not per_speaker:
            return standardise(f.select(m), mean, std, n)
        X = np.empty((len(m), f.X.shape[1], f.X.shape[2]), dtype=np.float32)
        for spk in m["speaker"].unique():
            rows = (m["speaker"] == spk).to_numpy()
            X[rows] = standardise(f.select(m[rows]), *speaker_stats[spk], None if n is None else n[rows])
        return X

    out = {"emotions": emotions, "train_speakers": train_speakers, "mean": mean, "std": std}
    for role, m in parts.items():
        X = standardised(feats, m, lengths[role] if masked else None)
        out[role] = {"X": torch.from_numpy(X), "lengths": torch.from_numpy(lengths[role].astype("int64")),
                     "y": torch.tensor([emo_index[e] for e in m["emotion"]]),
                     "speakers": m["speaker"].tolist()}
    if speed_feats:
        if not masked:
            raise ValueError("speed_feats needs masked=True: perturbed utterances have lengths of their own")
        m = parts["train"]
        copies = [(out["train"]["X"].numpy(), lengths["train"])]
        for f in speed_feats.values():
            n = f.select(m, f.n_frames)
            copies.append((standardised(f, m, n), n))
        width = max(x.shape[-1] for x, _ in copies)
        out["train"]["speed_X"] = torch.from_numpy(np.stack([np.pad(x, ((0, 0), (0, 0), (0, width - x.shape[-1])))
                                                             for x, _ in copies]))
        out["train"]["speed_lengths"] = torch.from_numpy(np.stack([n for _, n in copies]).astype("int64"))
    spk_index = {s: i for i, s in enumerate(train_speakers)}
    out["train"]["s"] = torch.tensor([spk_index[s] for s in out["train"]["speakers"]])
    return out
