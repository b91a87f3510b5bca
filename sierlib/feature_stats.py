"""Statistics of frame features: the standardiser of a fold (fitted on its training speakers'
frames only) and the views that notebooks 01 and 02 show (silence margins, padding, per-utterance
means, per-coefficient statistics). Features themselves come from :mod:`sierlib.features`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from joblib import delayed

from .audio import read_audio
from .features import Features, highpass, run_parallel, trim_silence
from .registry import FEATURE_DEFAULTS, check_feature_params


def _trim_bounds(path: str, corpus: str, sr: int, top_db: float, highpass_hz: float | None,
                 n_fft: int, hop_length: int) -> tuple[int, int, int]:
    y = read_audio(path, sr=sr, corpus=corpus)
    y = highpass(y, sr, highpass_hz)
    _, (start, end) = trim_silence(y, top_db, n_fft, hop_length)
    return len(y), start, end


def silence_margins(meta: pd.DataFrame, *, sr: int = FEATURE_DEFAULTS["sr"], top_db: float = FEATURE_DEFAULTS["top_db"],
                    highpass_hz: float | None = FEATURE_DEFAULTS["highpass_hz"], n_fft: int = FEATURE_DEFAULTS["n_fft"], hop_length: int = FEATURE_DEFAULTS["hop_length"],
                    n_jobs: int = -1, progress: bool = True) -> pd.DataFrame:
    """Leading and trailing silence that the trimming step cuts from each recording.

    Runs steps 1-3 of the pipeline (read at ``sr``, high-pass, trim) exactly as
    :func:`extract_features` does, but keeps only where the speech starts and ends.

    Parameters
    ----------
    meta : pandas.DataFrame
        Metadata from :func:`sierlib.corpora.load_metadata` (one or more corpora).
    sr, top_db, highpass_hz, n_fft, hop_length
        Feature parameters, as for :func:`extract_features` (``n_fft`` and ``hop_length`` are
        the frame and hop of the trimming).
    n_jobs : int
        Processes (-1: all cores; 1: a plain loop in this process).
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per utterance, in meta's order, with ``utterance, corpus, speaker, gender,
        emotion``, ``n_samples`` (length read at ``sr``), ``start`` and ``end`` (the kept samples
        ``[start, end)``), ``trimmed_samples`` (``end - start``, the length that
        :attr:`Features.n_samples` holds) and ``leading_s``, ``trailing_s``, ``speech_s`` in seconds.
    """
    params = check_feature_params(sr=sr, n_fft=n_fft, hop_length=hop_length, top_db=top_db,
                                  highpass_hz=highpass_hz)
    items = [delayed(_trim_bounds)(p, c, params["sr"], params["top_db"], params["highpass_hz"],
                                   params["n_fft"], params["hop_length"])
             for p, c in zip(meta["path"], meta["corpus"])]
    bounds = np.array(run_parallel(n_jobs, "read, filter, trim", items, progress), dtype=np.int64).reshape(-1, 3)
    out = meta[["utterance", "corpus", "speaker", "gender", "emotion"]].reset_index(drop=True).copy()
    out["n_samples"], out["start"], out["end"] = bounds[:, 0], bounds[:, 1], bounds[:, 2]
    out["trimmed_samples"] = out["end"] - out["start"]
    out["leading_s"] = out["start"] / sr
    out["trailing_s"] = (out["n_samples"] - out["end"]) / sr
    out["speech_s"] = out["trimmed_samples"] / sr
    return out


def padding_fraction(n_samples, hop_length: int = FEATURE_DEFAULTS["hop_length"], length: int | None = None) -> np.ndarray:
    """Share of each MFCC map's frames that lie in the zero padding, from trimmed lengths.

    The same quantity as :attr:`Features.padding_fraction`, computed without the MFCC maps (for
    instance from ``silence_margins(...)["trimmed_samples"]``).

    Parameters
    ----------
    n_samples : array_like of int
        Trimmed length of each recording, in samples.
    hop_length : int
        Hop of the MFCC frames.
    length : int, optional
        Padded length in samples; defaults to the longest recording (as :func:`extract_features`
        pads).

    Returns
    -------
    numpy.ndarray
        One share in [0, 1) per recording.
    """
    n = np.asarray(n_samples, dtype=np.int64)
    length = int(n.max()) if length is None else int(length)
    n_frames = length // hop_length + 1  # centred frames, as librosa computes them
    return 1.0 - np.minimum(1.0, (n // hop_length + 1) / n_frames)


def frame_mask(lengths, n_frames: int) -> np.ndarray:
    """Boolean ``(n_utterances, n_frames)``: True at the first ``lengths[i]`` frames of row i."""
    return np.arange(n_frames)[None, :] < np.asarray(lengths)[:, None]


def fit_standardiser(X_train: np.ndarray, lengths=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-coefficient mean and std of the training frames. Fit on the training speakers of a
    fold only.

    Parameters
    ----------
    X_train : numpy.ndarray
        ``(n_utterances, n_rows, n_frames)``.
    lengths : array_like of int, optional
        Speech frames of each utterance (:attr:`Features.n_frames`): the statistics are over
        these frames only. None: over all frames, padding included (as the padded network sees
        them).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Mean and std, float32, each ``(n_rows, 1)``; std at least 1e-6.
    """
    if lengths is None:
        mean = X_train.mean(axis=(0, 2), keepdims=True)[0]
        std = X_train.std(axis=(0, 2), keepdims=True)[0]
    else:
        speech = X_train.transpose(1, 0, 2)[:, frame_mask(lengths, X_train.shape[-1])]  # (n_rows, n_speech_frames)
        mean, std = speech.mean(axis=1, keepdims=True), speech.std(axis=1, keepdims=True)
    return mean.astype(np.float32), np.maximum(std, 1e-6).astype(np.float32)


def standardise(X: np.ndarray, mean: np.ndarray, std: np.ndarray, lengths=None, utterance_norm: str = "none") -> np.ndarray:
    """``(X - mean) / std`` as float32; with ``lengths`` (speech frames per utterance), the
    padding after them is exactly 0 afterwards, as the length-aware network expects.

    ``utterance_norm`` (needs ``lengths``): ``"mean"`` then removes each utterance's own mean of
    every row over its speech frames, ``"mean_var"`` also divides by its own standard deviation
    (floored at 1e-3): statistics of the utterance alone, which a test utterance has too."""
    out = ((X - mean) / std).astype(np.float32)
    if lengths is None:
        if utterance_norm != "none":
            raise ValueError(f"utterance_norm={utterance_norm!r} needs the utterances' lengths")
        return out
    mask = frame_mask(lengths, X.shape[-1])[:, None, :]
    if utterance_norm in ("mean", "mean_var"):
        n = np.maximum(np.asarray(lengths), 1).astype(np.float64)[:, None, None]
        own_mean = np.where(mask, out, 0).sum(axis=-1, keepdims=True) / n
        out = out - own_mean
        if utterance_norm == "mean_var":
            own_std = np.sqrt(np.where(mask, out ** 2, 0).sum(axis=-1, keepdims=True) / n)
            out = out / np.maximum(own_std, 1e-3)
        out = out.astype(np.float32)
    elif utterance_norm != "none":
        raise ValueError(f"utterance_norm must be 'none', 'mean' or 'mean_var'; got {utterance_norm!r}")
    return np.where(mask, out, np.float32(0.0))


def speech_mask(feats: Features) -> np.ndarray:
    """Which frames of each feature map hold speech rather than zero padding.

    Parameters
    ----------
    feats : Features

    Returns
    -------
    numpy.ndarray
        Boolean array ``(n_utterances, n_frames)``: True for the frames of the trimmed recording
        (the first ``n_samples // hop_length + 1``, as :attr:`Features.padding_fraction` counts).
    """
    return frame_mask(feats.n_frames, feats.X.shape[-1])


def utterance_means(feats: Features, speech_only: bool = True) -> np.ndarray:
    """Mean of each MFCC coefficient over each utterance's frames.

    Parameters
    ----------
    feats : Features
    speech_only : bool
        Average over the speech frames only (default), or over all frames, padding included.

    Returns
    -------
    numpy.ndarray
        Array ``(n_utterances, n_mfcc)``, rows in the order of ``feats.utterances``.
    """
    if not speech_only:
        return feats.X.mean(axis=2)
    mask = speech_mask(feats)[:, None, :]
    return (feats.X * mask).sum(axis=2) / mask.sum(axis=2)


def coefficient_stats(feats: Features) -> pd.DataFrame:
    """Mean and standard deviation of each MFCC coefficient over a corpus's frames.

    Parameters
    ----------
    feats : Features

    Returns
    -------
    pandas.DataFrame
        One row per coefficient (index ``coefficient``, 0-based) with ``mean_all, std_all`` over
        all frames, padding included (what :func:`fit_standardiser` fits), and ``mean_speech,
        std_speech`` over the speech frames only (see :func:`speech_mask`).
    """
    mean_all, std_all = (a.ravel() for a in fit_standardiser(feats.X))
    speech = feats.X.transpose(1, 0, 2)[:, speech_mask(feats)]  # (n_mfcc, n_speech_frames)
    return pd.DataFrame({"mean_all": mean_all, "std_all": std_all,
                         "mean_speech": speech.mean(axis=1), "std_speech": speech.std(axis=1)},
                        index=pd.RangeIndex(feats.X.shape[1], name="coefficient")).astype(np.float64)
