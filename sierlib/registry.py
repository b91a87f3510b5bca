"""What exists, as plain data: the corpora, the encoders and the feature parameters.

These registries sit below the run configuration, so that a :class:`~sierlib.config.RunConfig`
checks its corpus, encoder and feature parameters without importing torch or reading a corpus.
The code that uses an entry lives above: corpus loaders in :mod:`sierlib.corpora`, encoder
classes in :mod:`sierlib.encoders` and :mod:`sierlib.model` (a test checks that both lists agree),
feature extraction in :mod:`sierlib.features`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


# --- corpora ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CorpusInfo:
    """What the protocol needs to know of a corpus.

    ``emotions`` is the label order of the network's outputs (and of confusion matrices);
    ``n_folds`` is the number of leave-two-speakers-out folds (None: as many as the corpus's
    speakers of each gender, for the synthetic corpus whose size is chosen when it is made)."""
    name: str
    title: str
    emotions: tuple[str, ...]
    n_folds: int | None


# The corpora: the only list of their names. Leave-two-speakers-out, gender-balanced folds:
# 10 Emo-DB speakers give 5 folds, 24 RAVDESS actors 12.
CORPORA = {c.name: c for c in (
    CorpusInfo("emodb", "Emo-DB", ("anger", "boredom", "disgust", "fear", "happiness", "sadness", "neutral"), 5),
    CorpusInfo("ravdess", "RAVDESS",
               ("anger", "calm", "disgust", "fear", "happiness", "sadness", "neutral", "surprise"), 12),
    CorpusInfo("synthetic", "synthetic (not a real corpus)",
               ("anger", "boredom", "disgust", "fear", "happiness", "sadness", "neutral"), None),
)}
PRETTY = {name: c.title for name, c in CORPORA.items()}
# The paper's corpora: the real ones, with a downloader and checksums, Tables 1-2 and cross-corpus tests.
PAPER_CORPORA = ("emodb", "ravdess")
# Expected size of each complete corpus (files, speakers); the synthetic corpus carries its own.
EXPECTED = {"emodb": (535, 10), "ravdess": (1440, 24)}


def check_corpus_name(corpus) -> str:
    if not isinstance(corpus, str) or corpus not in CORPORA:
        raise ValueError(f"corpus must be one of {', '.join(map(repr, CORPORA))}; got {corpus!r}")
    return corpus


def is_manifest(corpus) -> bool:
    """True when ``corpus`` is the path of a manifest CSV (a corpus of your own, see
    :mod:`sierlib.manifest`) rather than the name of a built-in corpus."""
    return isinstance(corpus, (str, os.PathLike)) and str(corpus).lower().endswith(".csv")


def corpus_name(corpus) -> str:
    """The short name of a corpus, for run names, folders and file names: a built-in corpus's
    name, or a manifest's file stem (``path/to/my corpus.csv`` -> ``my corpus``)."""
    return Path(corpus).stem if is_manifest(corpus) else str(corpus)


# --- encoders --------------------------------------------------------------------------------
@dataclass(frozen=True)
class EncoderInfo:
    """An encoder by the name a run records: its title in tables, the feature kind it reads and,
    for the earlier encoders of Table 2, its assumed sizes (the keyword defaults of its class,
    JSON-ready; recorded with every run and part of the run's name hash)."""
    name: str
    title: str
    feature_kind: str
    sizes: dict | None = None


ENCODER_INFO = {e.name: e for e in (
    EncoderInfo("2dcnn_bigru", "2D CNN biGRU (MFCC)", "mfcc"),
    EncoderInfo("tdnn_bilstm", "TDNN biLSTM (MFCC)", "mfcc",
                {"tdnn_dim": 64, "contexts": [[5, 1], [3, 2], [3, 3], [1, 1]], "lstm_hidden": 128}),
    EncoderInfo("1dcnn_gru", "1D CNN GRU (log-Mel, energy, pitch)", "fbank_energy_pitch",
                {"n_conv_layers": 2, "n_filters": 128, "kernel_size": 5, "pool": 2, "gru_hidden": 256}),
)}


# --- feature parameters ----------------------------------------------------------------------
FEATURE_VERSION = 1  # bump when the pipeline changes in a way the parameters do not capture
FEATURE_DEFAULTS = {"sr": 22050, "n_mfcc": 20, "n_fft": 2048, "hop_length": 512, "top_db": 30.0,
                    "highpass_hz": 80.0}
FEATURE_KINDS = ("mfcc", "fbank_energy_pitch", "logmel")
DEFAULT_N_MELS = 40
LOGMEL_N_MELS = 64  # Mel bands of the log-Mel front end (RunConfig.front_end = "logmel_deltas")
# Pitch tracking of kind "fbank_energy_pitch": YIN search range (Hz) and the NCCF voicing threshold.
# Part of that kind's cache key (change them and the cache recomputes); "v" versions the recipe.
PITCH = {"fmin": 60.0, "fmax": 400.0, "voicing_threshold": 0.5, "v": 1}


def check_feature_params(sr=FEATURE_DEFAULTS["sr"], n_mfcc=None, n_fft=FEATURE_DEFAULTS["n_fft"],
                         hop_length=FEATURE_DEFAULTS["hop_length"], top_db=FEATURE_DEFAULTS["top_db"],
                         highpass_hz=FEATURE_DEFAULTS["highpass_hz"], kind="mfcc", n_mels=None, speed=1.0) -> dict:
    """Validate the feature parameters; returns them as a dict (the cache key's content).

    ``kind="mfcc"`` (default): ``n_mfcc`` defaults to 20 and ``n_mels`` must be left out; the dict
    is ``{sr, n_mfcc, n_fft, hop_length, top_db, highpass_hz}``, with no ``kind`` key, exactly as
    before other kinds existed (cache keys and run names depend on it).
    ``kind="fbank_energy_pitch"``: ``n_mels`` defaults to 40 and ``n_mfcc`` must be left out; the
    dict is ``{kind, sr, n_mels, n_fft, hop_length, top_db, highpass_hz}``.
    ``kind="logmel"`` (log-Mel filterbank energies only): the same, ``n_mels`` defaulting to 64.
    ``speed`` (speed perturbation, a factor in [0.5, 2]) adds a ``speed`` key only when it is not
    1, so the dicts (and cache keys) of unperturbed features stay as they were.
    """
    if kind not in FEATURE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(FEATURE_KINDS)}; got {kind!r}")
    if kind == "mfcc":
        if n_mels is not None:
            raise ValueError(f"n_mels applies to kind='fbank_energy_pitch' only; got n_mels={n_mels!r} with kind='mfcc'")
        n_rows = ("n_mfcc", FEATURE_DEFAULTS["n_mfcc"] if n_mfcc is None else n_mfcc)
    else:
        if n_mfcc is not None:
            raise ValueError(f"n_mfcc applies to kind='mfcc' only; got n_mfcc={n_mfcc!r} with kind={kind!r}")
        n_rows = ("n_mels", (LOGMEL_N_MELS if kind == "logmel" else DEFAULT_N_MELS) if n_mels is None else n_mels)
    for name, value, lo in [("sr", sr, 1000), n_rows + (1,), ("n_fft", n_fft, 16), ("hop_length", hop_length, 1)]:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
            raise ValueError(f"{name} must be an integer >= {lo}; got {value!r}")
    if isinstance(top_db, bool) or not isinstance(top_db, (int, float)) or top_db <= 0:
        raise ValueError(f"top_db must be a positive number of decibels; got {top_db!r}")
    if highpass_hz is not None and (isinstance(highpass_hz, bool) or not isinstance(highpass_hz, (int, float))
                                    or not 0 < highpass_hz < sr / 2):
        raise ValueError(f"highpass_hz must be None or a frequency in (0, sr/2); got {highpass_hz!r}")
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not 0.5 <= speed <= 2:
        raise ValueError(f"speed must be a factor in [0.5, 2] (1: unperturbed); got {speed!r}")
    common = {"sr": int(sr), n_rows[0]: int(n_rows[1]), "n_fft": int(n_fft), "hop_length": int(hop_length),
              "top_db": float(top_db), "highpass_hz": None if highpass_hz is None else float(highpass_hz),
              **({"speed": float(speed)} if speed != 1 else {})}
    if kind == "mfcc":
        return common
    if kind == "fbank_energy_pitch" and n_fft - 1 <= 2 * sr / PITCH["fmin"]:
        raise ValueError(f"n_fft must exceed 2 * sr / {PITCH['fmin']:g} Hz + 1 = {2 * sr / PITCH['fmin'] + 1:.0f} "
                         f"so that two periods of the lowest pitch fit into a frame; got n_fft={n_fft!r}")
    return {"kind": kind, **common}


def feature_kind(params: dict) -> str:
    """The kind of a feature parameter dict: ``"mfcc"`` when it has no ``"kind"`` key."""
    return params.get("kind", "mfcc")
