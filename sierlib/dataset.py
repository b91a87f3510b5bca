"""A fold's data, ready for a network: a corpus's metadata and features
(:func:`load_corpus_features`), and the standardised tensors of one fold (:func:`fold_data`),
with the standardiser fitted on the fold's training speakers only. The top of the data layer:
runs, probes and benchmarks start here.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .config import RunConfig
from .corpora import corpus_info, load_metadata
from .feature_stats import fit_standardiser, standardise
from .features import Features, extract_features
from .folds import cross_corpus_split, fold_speakers, make_folds, split_metadata


def load_corpus_features(config: RunConfig, data_root=None, progress: bool = True,
                         corpus: str | None = None) -> tuple[pd.DataFrame, Features]:
    """The metadata and the features (of the kind the config's encoder reads) of its corpus, or
    of ``corpus`` (e.g. its ``test_corpus``) at the config's feature parameters."""
    meta = load_metadata(config.corpus if corpus is None else corpus, data_root)
    return meta, extract_features(meta, progress=progress, **config.feature_params)


def holdout_split(train: pd.DataFrame, share: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the training speakers' rows into those trained on and a held-out ``share`` of each
    speaker's utterances, stratified by emotion (of each speaker x emotion group of n utterances,
    round(share n) are held out, at most n - 1), drawn with ``seed``. Returns ``(train, holdout)``."""
    rng = np.random.default_rng(seed)
    held = []
    for _, group in train.groupby(["speaker", "emotion"], sort=True):
        k = min(int(np.floor(share * len(group) + 0.5)), len(group) - 1)
        held += list(rng.choice(group.index.to_numpy(), size=k, replace=False)) if k > 0 else []
    keep = ~train.index.isin(held)
    return train[keep].reset_index(drop=True), train.loc[sorted(held)].reset_index(drop=True)


def fold_data(meta: pd.DataFrame, feats, fold: int, folds: pd.DataFrame | None = None, masked: bool = False,
              per_speaker: bool = False, speed_feats: dict | None = None, holdout: float = 0.0,
              holdout_seed: int = 0, test_set: tuple[pd.DataFrame, Features] | None = None,
              utterance_norm: str = "none") -> dict:
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
    ``s`` (speaker indices for the adversary). With ``holdout`` > 0 (a probe run) a stratified
    share of each training speaker's utterances (:func:`holdout_split`, drawn with
    ``holdout_seed``) is taken out of the training role into a ``holdout`` role, which also holds
    ``s``; the standardiser is fitted on the utterances that remain in training.

    With ``test_set`` (``(meta, Features)`` of another corpus, of the same feature parameters) the
    run is cross-corpus: only the emotions the two corpora share are kept (in this corpus's label
    order), the fold's test speakers join its training speakers, and the test role is every
    utterance of the other corpus with a shared emotion, standardised with the training speakers'
    statistics.

    ``utterance_norm`` (``"mean"``, ``"mean_var"``; needs ``masked``): after the standardiser,
    each utterance's own statistics are removed (:func:`sierlib.feature_stats.standardise`).
    """

    emotions = list(corpus_info(str(meta["corpus"].iloc[0])).emotions)
    unknown = set(meta["emotion"]) - set(emotions)
    if unknown:
        raise ValueError(f"unknown emotion labels {sorted(unknown)}; this corpus has {', '.join(emotions)}")
    folds = make_folds(meta) if folds is None else folds
    parts = split_metadata(meta, folds, fold)
    train_speakers = fold_speakers(folds, fold)["train"]
    source = {role: feats for role in ("train", "val", "test", "holdout")}
    if test_set is not None:
        if per_speaker:
            raise ValueError("per_speaker normalisation is not defined for a cross-corpus run")
        test_meta, source["test"] = test_set
        emotions, parts, speakers = cross_corpus_split(meta, folds, fold, emotions, test_meta)
        train_speakers = speakers["train"]
    if holdout:
        parts["train"], parts["holdout"] = holdout_split(parts["train"], holdout, holdout_seed)
    emo_index = {e: i for i, e in enumerate(emotions)}
    lengths = {role: source[role].select(m, source[role].n_frames) for role, m in parts.items()}
    if per_speaker:
        # each speaker's own statistics (over its unperturbed utterances)
        mean = std = None
        speaker_stats = {spk: fit_standardiser(feats.select(m_spk), feats.select(m_spk, feats.n_frames) if masked else None)
                         for spk, m_spk in meta.groupby("speaker")}
    else:
        mean, std = fit_standardiser(feats.select(parts["train"]), lengths["train"] if masked else None)

    if utterance_norm != "none" and not masked:
        raise ValueError(f"utterance_norm={utterance_norm!r} needs masked=True: it uses each utterance's speech frames")

    def standardised(f, m, n):
        if not per_speaker:
            return standardise(f.select(m), mean, std, n, utterance_norm)
        X = np.empty((len(m), f.X.shape[1], f.X.shape[2]), dtype=np.float32)
        for spk in m["speaker"].unique():
            rows = (m["speaker"] == spk).to_numpy()
            X[rows] = standardise(f.select(m[rows]), *speaker_stats[spk], None if n is None else n[rows], utterance_norm)
        return X

    out = {"emotions": emotions, "train_speakers": train_speakers, "mean": mean, "std": std}
    for role, m in parts.items():
        X = standardised(source[role], m, lengths[role] if masked else None)
        out[role] = {"X": torch.from_numpy(X), "lengths": torch.from_numpy(lengths[role].astype("int64")),
                     "y": torch.tensor([emo_index[e] for e in m["emotion"]]),
                     "speakers": m["speaker"].tolist()}
    if test_set is not None:  # one width for every role, as within a corpus (zero padding, outside the lengths)
        width = max(out[role]["X"].shape[-1] for role in parts)
        for role in parts:
            X = out[role]["X"]
            out[role]["X"] = torch.nn.functional.pad(X, (0, width - X.shape[-1]))
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
    for role in ("train", "holdout") if holdout else ("train",):
        out[role]["s"] = torch.tensor([spk_index[s] for s in out[role]["speakers"]])
    return out
