"""Saved networks, and the emotion of new recordings: ``sier predict MODEL PATH...``.

A run with ``RunOptions.save_model`` (``-p save_model True`` in ``04_train``) saves its selected
weights beside its record as ``<name>.pt`` (:func:`save_network`), with everything needed to use
them again: the run configuration, the emotion labels in output order, the training speakers'
standardisation statistics, the feature parameters and the padded input length the network was
trained on. :func:`load_network` reads it back; :func:`recording_features` turns a recording
into the network's input by the run's own preprocessing (:mod:`sierlib.features`: read as mono
at the feature rate whatever the file's rate and channels, high-pass, trim, zero-pad, or cut, to
the trained length, features) and standardisation; :func:`predict_files` gives every class's
probability for each file.

``sier predict MODEL PATH... [--out predictions.csv]`` takes audio files and folders (searched
recursively for .wav, .flac, .ogg and .mp3), prints one line per file (file, predicted emotion,
its probability), shows a progress bar for folders and writes every class's probability to the
``--out`` CSV. A file that cannot be read, or holds too little sound, is reported by name and
skipped; the rest are still predicted, and the exit status is 0 only if every file was.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .audio import CorpusError
from .config import DEFAULTS, RunConfig
from .feature_stats import standardise
from .features import feature_map, preprocess_file
from .paths import LOCAL_RUNS, atomic_write
from .registry import is_manifest
from .train import build_model, predict, resolve_device

NETWORK_FORMAT = 1
NETWORK_KIND = "sier-network"
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
# The "corpus" of a recording to predict, in messages: "recording file folder/x.wav is empty ..."
RECORDING = "recording"


def save_network(path: str | os.PathLike, *, config: RunConfig, state_dict: dict, data: dict, feats,
                 record: dict) -> Path:
    """Write a run's selected network with everything needed to use it again, atomically.

    Parameters
    ----------
    path : path
        The ``.pt`` file (:func:`sierlib.records.model_path`: beside the run's record).
    config : RunConfig
        The run's configuration.
    state_dict : dict
        The selected weights.
    data : dict
        The fold (:func:`sierlib.dataset.fold_data`): emotions, training speakers, and the
        standardiser fitted on them.
    feats : Features
        The corpus's features: their parameters and padded length are the network's input.
    record : dict
        The run's record, for provenance (metrics, commit, versions, manifest).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    content = {
        "kind": NETWORK_KIND, "format": NETWORK_FORMAT, "name": config.name, "config": config.to_dict(),
        "encoder_sizes": config.encoder_sizes, "emotions": list(data["emotions"]),
        "train_speakers": list(data["train_speakers"]), "n_features": int(feats.X.shape[1]),
        "feature_params": dict(feats.params),
        # the corpus was zero-padded to its longest trimmed recording, in samples at the feature rate
        "padded_samples": int(np.max(feats.n_samples)), "n_frames": int(feats.X.shape[-1]),
        "mean": torch.from_numpy(np.asarray(data["mean"], dtype=np.float32)),
        "std": torch.from_numpy(np.asarray(data["std"], dtype=np.float32)),
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        # provenance, as plain JSON types (torch.load(weights_only=True) refuses e.g. torch's version class)
        **json.loads(json.dumps({k: record.get(k) for k in ("test_accuracy", "test_uar", "val_accuracy", "best_epoch",
                                                           "manifest", "git_commit", "versions", "finished_at")})),
    }
    with atomic_write(path, "wb") as f:
        torch.save(content, f)
    return Path(path)


@dataclass
class Network:
    """A saved network, ready to predict (:func:`load_network`)."""
    model: torch.nn.Module      # in eval mode, on ``device``
    name: str                   # the run's name
    config: dict                # the run's configuration, as saved
    emotions: list              # output order
    feature_params: dict
    padded_samples: int         # input length in samples at feature_params["sr"]
    n_frames: int
    mean: np.ndarray            # standardiser of the training speakers, (n_rows, 1)
    std: np.ndarray
    device: torch.device
    path: Path


def _architecture(saved: dict) -> RunConfig:
    """The configuration to build a saved network from. A network depends on its corpus only
    through the numbers of emotions and training speakers, which the file holds, and a manifest
    corpus need not exist where the network predicts; so a manifest run's network is built
    from the same settings on the default corpus (and fold)."""
    config = dict(saved["config"])
    if is_manifest(config["corpus"]):
        config.update(corpus=DEFAULTS["corpus"], fold=DEFAULTS["fold"])
    return RunConfig.from_dict(config)


def load_network(path: str | os.PathLike, device: str = "cpu") -> Network:
    """Read a network saved by a run with ``save_model`` (see :func:`save_network`).

    Raises ValueError, naming the file, if it is missing or not such a network, or if this
    version of sierlib builds the network differently.
    """
    path = Path(path)
    fix = "save one with -p save_model True (04_train), or RunOptions(save_model=True)"
    if not path.is_file():
        raise ValueError(f"the network file {path} does not exist; {fix}")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torch file of something else, or not a torch file
        raise ValueError(f"{path} cannot be read as a saved network ({type(exc).__name__}: {exc}); {fix}") from None
    if not isinstance(saved, dict) or saved.get("kind") != NETWORK_KIND:
        raise ValueError(f"{path} is not a network saved by sierlib; {fix}")
    if saved["format"] > NETWORK_FORMAT:
        raise ValueError(f"{path} was saved by a newer sierlib (network format {saved['format']}); update sierlib")
    config = _architecture(saved)
    if config.encoder_sizes != saved["encoder_sizes"]:
        raise ValueError(f"{path} was trained with encoder sizes {saved['encoder_sizes']}, but this sierlib builds "
                         f"{config.encoder_sizes}; use the sierlib version it was saved with "
                         f"(commit {saved.get('git_commit')})")
    n_speakers = len(saved["train_speakers"])
    model = build_model(config, len(saved["emotions"]), n_speakers, saved["n_features"])
    model.load_state_dict(saved["state_dict"])
    dev = resolve_device(device)
    model.to(dev).eval()
    return Network(model=model, name=saved["name"], config=saved["config"], emotions=list(saved["emotions"]),
                   feature_params=saved["feature_params"], padded_samples=int(saved["padded_samples"]),
                   n_frames=int(saved["n_frames"]), mean=saved["mean"].numpy(), std=saved["std"].numpy(),
                   device=dev, path=path)


def _check_sound(y: np.ndarray, path, params: dict) -> None:
    """Too little sound for a prediction: digital silence, or less than one analysis frame once
    trimmed. (Feature extraction may reject short recordings itself, with a stricter floor.)"""
    sr, n_fft = params["sr"], params["n_fft"]
    if not np.any(y):
        raise CorpusError(f"{RECORDING} file {path} is digitally silent (every sample is 0) once trimmed.")
    if len(y) < n_fft:
        raise CorpusError(f"{RECORDING} file {path} holds only {len(y) / sr:.3f} s of sound once its silence is "
                          f"trimmed; at least one analysis frame ({n_fft / sr:.3f} s) is needed.")


def recording_features(path: str | os.PathLike, network: Network) -> tuple[np.ndarray, dict]:
    """The network's input for one recording: the run's preprocessing and standardisation.

    Parameters
    ----------
    path : path
        An audio file (any rate, mono or stereo, any format libsndfile reads).
    network : Network

    Returns
    -------
    X : numpy.ndarray
        ``(1, n_rows, n_frames)``, float32, standardised with the training speakers' statistics
        (and, if the run said so, with the utterance's own: ``utterance_norm``).
    info : dict
        ``seconds`` (of sound once trimmed) and ``cut`` (True when the recording was longer
        than the trained input and only its beginning was used).

    Raises
    ------
    CorpusError
        Naming the file, when it cannot be read or holds too little sound.
    """
    p = network.feature_params
    y = preprocess_file(str(path), RECORDING, p["sr"], p["top_db"], p["highpass_hz"], p["n_fft"], p["hop_length"])
    _check_sound(y, path, p)
    # As the network was trained: zero-padded (or cut) to the trained length; a length-aware
    # network also gets the true frame count (Features.n_frames' rule) and exactly-0 padding.
    X = feature_map(y, network.padded_samples, p)[None]
    if X.shape[-1] != network.n_frames:
        raise ValueError(f"{network.path}: features of {X.shape[-1]} frames, but the network was trained on "
                         f"{network.n_frames}; the file is inconsistent")
    frames = min(min(len(y), network.padded_samples) // p["hop_length"] + 1, network.n_frames)
    masked = network.config.get("lengths", "padded") == "masked"
    X = standardise(X, network.mean, network.std, np.array([frames]) if masked else None,
                    network.config.get("utterance_norm", "none"))
    return X, {"seconds": len(y) / p["sr"], "cut": len(y) > network.padded_samples, "frames": frames}


def network_outputs(network: Network, X: np.ndarray, frames=None) -> tuple[np.ndarray, np.ndarray]:
    """The emotion probabilities (softmax, ``(n, n_emotions)`` in the order of
    ``network.emotions``) and the pooled embeddings (``(n, embedding size)``, the input of both
    classifiers) of inputs ``X`` (from :func:`recording_features`; ``frames``: their true frame
    counts, used by a length-aware network), in eval mode."""
    lengths = None
    if network.config.get("lengths", "padded") == "masked":
        lengths = torch.as_tensor(np.asarray(frames if frames is not None else [X.shape[-1]] * len(X)), dtype=torch.long)
    logits, _, emb = predict(network.model, torch.from_numpy(X), device=network.device, lengths=lengths)
    return torch.softmax(logits, dim=1).numpy(), emb.numpy()


def probabilities(network: Network, X: np.ndarray, frames=None) -> np.ndarray:
    """Softmax of the network's emotion outputs for inputs ``X`` (see :func:`network_outputs`)."""
    return network_outputs(network, X, frames)[0]


def find_audio(paths) -> tuple[list[Path], list[tuple[str, str]]]:
    """The audio files named by ``paths``: files as given, folders searched recursively for
    .wav, .flac, .ogg and .mp3 (sorted). Returns ``(files, problems)``: each problem is a path
    that does not exist or a folder without audio, with the reason."""
    files, problems, seen = [], [], set()
    for arg in paths:
        p = Path(arg).expanduser()
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix.lower() in AUDIO_SUFFIXES and q.is_file())
            if not found:
                problems.append((str(p), f"the folder holds no {', '.join(AUDIO_SUFFIXES)} files"))
        elif p.is_file():
            found = [p]
        else:
            problems.append((str(p), "no such file or folder"))
            found = []
        for q in found:
            if q.resolve() not in seen:  # a file named twice is predicted once
                seen.add(q.resolve())
                files.append(q)
    return files, problems


def iter_outputs(network: Network, files, embed: bool = False):
    """For each file, ``(path, result, None)``, or ``(path, None, reason)`` when the file cannot
    be read or holds too little sound; one bad file never stops the others. ``result`` holds
    ``emotion, probability, seconds, cut`` and every class's probability (``p_<emotion>``), and
    with ``embed`` the pooled embedding as ``e0, e1, ...``."""
    for path in files:
        try:
            X, info = recording_features(path, network)
            probs, emb = network_outputs(network, X, [info.pop("frames")])
        except CorpusError as exc:
            yield path, None, str(exc)
            continue
        except Exception as exc:  # e.g. a decoder or resampler failing inside a library
            yield path, None, f"{type(exc).__name__}: {exc}"
            continue
        best = int(np.argmax(probs[0]))
        result = {"emotion": network.emotions[best], "probability": float(probs[0, best]), **info,
                  **{f"p_{e}": float(v) for e, v in zip(network.emotions, probs[0])}}
        if embed:
            result.update({f"e{i}": float(v) for i, v in enumerate(emb[0])})
        yield path, result, None


def iter_predictions(network: Network, files):
    """:func:`iter_outputs` without the embeddings."""
    return iter_outputs(network, files)


def output_table(rows: list[dict], network: Network, embed: bool = False, probabilities: bool = True) -> pd.DataFrame:
    """The rows of :func:`iter_outputs` (each with its ``file``) as a table: ``file, emotion,
    probability, seconds, cut, p_<emotion>...`` (``probabilities``) and ``e0...`` (``embed``)."""
    columns = ["file"] + (["emotion", "probability", "seconds", "cut"] + [f"p_{e}" for e in network.emotions]
                          if probabilities else ["seconds", "cut"])
    if embed:
        columns += [f"e{i}" for i in range(network.model.encoder.out_features)]
    return pd.DataFrame(rows, columns=columns)


def predict_files(network: Network, files) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Predict every file; returns a table (one row per predicted file: ``file, emotion,
    probability, seconds, cut, p_<emotion>...``) and the skipped files with their reasons."""
    return _collect(network, files, embed=False, probabilities=True)


def embed_files(network: Network, files, probabilities: bool = False) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """The pooled embedding of every file (``sier embed``): a table of ``file, seconds, cut,
    e0...`` (and the emotion columns of :func:`predict_files` with ``probabilities``), and the
    skipped files with their reasons. Same preprocessing and standardisation as a prediction."""
    return _collect(network, files, embed=True, probabilities=probabilities)


def _collect(network: Network, files, embed: bool, probabilities: bool):
    rows, skipped = [], []
    for path, result, reason in iter_outputs(network, files, embed=embed):
        if result is None:
            skipped.append((str(path), reason))
        else:
            rows.append({"file": str(path), **result})
    return output_table(rows, network, embed=embed, probabilities=probabilities), skipped


def saved_networks(folder=None) -> list[Path]:
    """The networks saved by runs with ``save_model`` under ``folder`` (default your own runs,
    ``results/local/runs``), newest first."""
    folder = Path(folder) if folder is not None else LOCAL_RUNS
    return sorted(folder.glob("*/*.pt"), key=lambda p: p.stat().st_mtime, reverse=True) if folder.is_dir() else []


def predict_recording(network: Network, path) -> dict:
    """One recording's prediction (the ``result`` of :func:`iter_outputs`); CorpusError, naming the
    file, when it cannot be read or holds too little sound."""
    [(_, result, reason)] = list(iter_outputs(network, [Path(path)]))
    if result is None:
        raise CorpusError(reason)
    return result
