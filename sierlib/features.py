"""Preprocessing and frame features (paper section 4.1), cached on disk.

Pipeline for every recording of a corpus:

1. read as mono at ``sr`` Hz (stereo files are averaged; default 22050 Hz, librosa's default
   rate: the paper's frame of 2048 samples and hop of 512 are librosa's defaults too, which
   suggests its default rate; at 22050 Hz they are 93 ms and 23 ms);
2. **noise filter**: a zero-phase 4th-order Butterworth high-pass at ``highpass_hz`` (80 Hz),
   removing the hum and rumble below the voice range. Both corpora are studio recordings with
   little broadband noise, so we do not apply spectral subtraction, which would colour the voice;
   ``highpass_hz=None`` turns the filter off;
3. **trim** leading and trailing silence: frames more than ``top_db`` dB (30) below the loudest
   frame are cut from both ends (``librosa.effects.trim``, frame 2048, hop 512);
4. **zero-pad** every recording at the end to the longest trimmed recording of the corpus;
5. **MFCC**: 20 coefficients, n_fft 2048, hop 512, Hann window (librosa defaults otherwise:
   128 mel bands, centred frames).

A recording that cannot carry emotion -- non-finite samples, digital silence, or less than
:data:`sierlib.audio.MIN_SPEECH_S` seconds left after step 3 -- stops the extraction with a
CorpusError that names it.

The result is one array ``(n_utterances, n_mfcc, n_frames)``. It is cached under the cache
folder (``SIER_CACHE`` or ``cache/`` in the repository), keyed by the corpus, the content
(sha256) of every file and every parameter above; the file is written to a temporary name and
renamed, so a crash never leaves an entry that reads as valid.

A second feature kind, ``kind="fbank_energy_pitch"``, is the input of the 1D CNN GRU encoder of
the paper's Table 2 ("LogMFB, energy, pitch", after Li et al. 2020). Steps 1-4 are the same; step
5 is replaced by, per frame (same n_fft, hop and centred frames, so the same ``n_frames``):

- rows ``0 .. n_mels-1``: **log-Mel filterbank energies**, ``n_mels`` (40) bands of the Hann
  power spectrum (librosa's Slaney mel scale, 0 Hz to sr/2), in dB with the same floor as inside
  librosa's MFCC (``power_to_db``: amin 1e-10, at most 80 dB below the recording's loudest value);
- row ``n_mels``: **log frame energy**, the sum of squares of the frame's ``n_fft`` raw samples
  (no window, as Kaldi's raw energy), in dB with the same floor;
- row ``n_mels + 1``: **pitch**, F0 in Hz from ``librosa.yin`` over 60-400 Hz on the same frames.
  YIN always returns a value, also in silence and unvoiced sounds, so a frame counts as voiced
  only when the normalised cross-correlation of the frame with itself shifted by the YIN period
  is at least 0.5 (an NCCF voicing test, in the spirit of RAPT's and Kaldi's trackers);
  unvoiced frames, and the zero padding, get F0 = 0 (as openSMILE's F0 does), so the row
  carries the voicing decision too.

The pitch settings (60 Hz, 400 Hz, 0.5) are constants of this module, :data:`PITCH`; they enter
the cache key of this kind but not its parameter dict. The result is ``(n_utterances, n_mels +
2, n_frames)``: 42 rows by default.

For the default kind ``"mfcc"`` the parameter dict has no ``"kind"`` key (as before this second
kind existed); the other kind adds ``"kind"`` and ``"n_mels"`` (and drops ``n_mfcc``).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock
from joblib import Parallel, delayed
from scipy.signal import butter, sosfiltfilt
from tqdm.auto import tqdm

from .audio import check_speech, read_audio
from .download import check_published
from .paths import atomic_write, cache_dir, sha256_file
from .registry import (DEFAULT_N_MELS, FEATURE_DEFAULTS, FEATURE_VERSION, LOGMEL_N_MELS, PITCH, check_feature_params,
                       corpus_name, feature_kind)

def highpass(y: np.ndarray, sr: int, cutoff_hz: float | None, order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth high-pass (the 'background noise' filter); None returns y."""
    if cutoff_hz is None:
        return y

    sos = butter(order, cutoff_hz, btype="highpass", fs=sr, output="sos")
    return sosfiltfilt(sos, y).astype(np.float32)


def trim_silence(y: np.ndarray, top_db: float = FEATURE_DEFAULTS["top_db"], frame_length: int = FEATURE_DEFAULTS["n_fft"],
                 hop_length: int = FEATURE_DEFAULTS["hop_length"]) -> tuple[np.ndarray, tuple[int, int]]:
    """Cut leading and trailing frames quieter than ``top_db`` below the peak; returns (y, (start, end))."""
    import librosa  # heavy (numba) and optional where features come from a pack

    trimmed, idx = librosa.effects.trim(y, top_db=top_db, frame_length=frame_length, hop_length=hop_length)
    return trimmed, (int(idx[0]), int(idx[1]))


def preprocess_file(path: str, corpus: str, sr: int, top_db: float, highpass_hz: float | None,
                    n_fft: int = FEATURE_DEFAULTS["n_fft"], hop_length: int = FEATURE_DEFAULTS["hop_length"], speed: float = 1.0) -> np.ndarray:
    """Read, filter and trim one recording (steps 1-3); with ``speed`` != 1, then play it that
    much faster (:func:`change_speed`).

    Raises CorpusError, naming the file, for non-finite samples, digital silence or less than
    :data:`sierlib.audio.MIN_SPEECH_S` seconds left after trimming.
    """
    y = read_audio(path, sr=sr, corpus=corpus)
    y = highpass(y, sr, highpass_hz)
    y, _ = trim_silence(y, top_db, n_fft, hop_length)
    check_speech(y, sr, path=path, corpus=corpus)
    return change_speed(y, sr, speed)


def change_speed(y: np.ndarray, sr: int, speed: float) -> np.ndarray:
    """Speed perturbation as Kaldi's (sox ``speed``): resample to ``sr / speed`` and play at
    ``sr``, so the recording is ``speed`` times faster and its pitch that much higher."""
    if speed == 1:
        return y
    import librosa  # heavy (numba) and optional where features come from a pack

    return librosa.resample(y, orig_sr=sr, target_sr=int(round(sr / speed))).astype(np.float32)


def mfcc(y: np.ndarray, sr: int = FEATURE_DEFAULTS["sr"], n_mfcc: int = 20, n_fft: int = FEATURE_DEFAULTS["n_fft"],
         hop_length: int = FEATURE_DEFAULTS["hop_length"]) -> np.ndarray:
    """MFCC of a (padded) signal: array (n_mfcc, n_frames), float32."""
    import librosa  # heavy (numba) and optional where features come from a pack

    return librosa.feature.mfcc(y=y, sr=sr, n_mfcc=n_mfcc, n_fft=n_fft, hop_length=hop_length,
                                window="hann").astype(np.float32)


def _pad_mfcc(y: np.ndarray, length: int, params: dict) -> np.ndarray:
    padded = np.zeros(length, dtype=np.float32)
    padded[: len(y)] = y
    return mfcc(padded, params["sr"], params["n_mfcc"], params["n_fft"], params["hop_length"])


def pitch_track(y: np.ndarray, sr: int = FEATURE_DEFAULTS["sr"], n_fft: int = FEATURE_DEFAULTS["n_fft"], hop_length: int = FEATURE_DEFAULTS["hop_length"],
                fmin: float = PITCH["fmin"], fmax: float = PITCH["fmax"],
                voicing_threshold: float = PITCH["voicing_threshold"]) -> tuple[np.ndarray, np.ndarray]:
    """F0 per centred frame and its voicing strength.

    Parameters
    ----------
    y : numpy.ndarray
        Mono signal.
    sr, n_fft, hop_length : int
        Sample rate, frame length (also YIN's frame) and hop; frames are centred with zero
        padding, as librosa's STFT frames them.
    fmin, fmax : float
        YIN search range in Hz.
    voicing_threshold : float
        A frame is voiced when its NCCF at the YIN period is at least this.

    Returns
    -------
    f0 : numpy.ndarray
        F0 in Hz per frame (float32), 0 where the frame is unvoiced (or silent).
    nccf : numpy.ndarray
        Normalised cross-correlation of each frame with itself shifted by the YIN period
        (float32, in [-1, 1]; 0 for a silent frame).
    """
    import librosa  # heavy (numba) and optional where features come from a pack

    f0 = librosa.yin(y, fmin=fmin, fmax=fmax, sr=sr, frame_length=n_fft, hop_length=hop_length,
                     center=True, pad_mode="constant")
    frames = librosa.util.frame(np.pad(y, n_fft // 2), frame_length=n_fft, hop_length=hop_length)
    lags = np.clip(np.rint(sr / np.where(np.isfinite(f0), f0, fmax)).astype(int), 1, n_fft - 1)
    nccf = np.zeros(len(f0), dtype=np.float64)
    for i, lag in enumerate(lags):
        a, b = frames[:-lag, i].astype(np.float64), frames[lag:, i].astype(np.float64)
        den = np.sqrt(np.dot(a, a) * np.dot(b, b))
        nccf[i] = np.dot(a, b) / den if den > 1e-20 else 0.0
    voiced = nccf >= voicing_threshold
    return np.where(voiced, f0, 0.0).astype(np.float32), nccf.astype(np.float32)


def fbank_energy_pitch(y: np.ndarray, sr: int = FEATURE_DEFAULTS["sr"], n_mels: int = DEFAULT_N_MELS, n_fft: int = FEATURE_DEFAULTS["n_fft"],
                       hop_length: int = FEATURE_DEFAULTS["hop_length"]) -> np.ndarray:
    """Log-Mel filterbank energies, log frame energy and F0 of a (padded) signal.

    Returns an array ``(n_mels + 2, n_frames)``, float32: ``n_mels`` log-Mel rows (dB), one log
    energy row (dB) and one F0 row (Hz, 0 when unvoiced); see the module docstring. Frames are
    those of :func:`mfcc` (centred, n_fft, hop_length), so both kinds have the same ``n_frames``.
    """
    import librosa  # heavy (numba) and optional where features come from a pack

    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop_length, window="hann",
                                         center=True, pad_mode="constant", power=2.0, n_mels=n_mels)
    log_mel = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=80.0)
    frames = librosa.util.frame(np.pad(y, n_fft // 2), frame_length=n_fft, hop_length=hop_length)
    energy = librosa.power_to_db(np.sum(frames.astype(np.float64) ** 2, axis=0), ref=1.0, amin=1e-10, top_db=80.0)
    f0, _ = pitch_track(y, sr, n_fft, hop_length)
    return np.vstack([log_mel, energy[None, :], f0[None, :]]).astype(np.float32)


def log_mel(y: np.ndarray, sr: int = FEATURE_DEFAULTS["sr"], n_mels: int = LOGMEL_N_MELS,
            n_fft: int = FEATURE_DEFAULTS["n_fft"], hop_length: int = FEATURE_DEFAULTS["hop_length"]) -> np.ndarray:
    """Log-Mel filterbank energies (dB, floored 80 dB below 1) of a (padded) signal:
    ``(n_mels, n_frames)``, float32, on the frames of :func:`mfcc`. Kind ``"logmel"``, the input
    of the log-Mel front end (its Δ and ΔΔ are taken in the network, :func:`sierlib.layers.deltas`)."""
    import librosa  # heavy (numba) and optional where features come from a pack

    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop_length, window="hann",
                                         center=True, pad_mode="constant", power=2.0, n_mels=n_mels)
    return librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=80.0).astype(np.float32)


def _pad_logmel(y: np.ndarray, length: int, params: dict) -> np.ndarray:
    padded = np.zeros(length, dtype=np.float32)
    padded[: len(y)] = y
    return log_mel(padded, params["sr"], params["n_mels"], params["n_fft"], params["hop_length"])


def _pad_fbank(y: np.ndarray, length: int, params: dict) -> np.ndarray:
    padded = np.zeros(length, dtype=np.float32)
    padded[: len(y)] = y
    return fbank_energy_pitch(padded, params["sr"], params["n_mels"], params["n_fft"], params["hop_length"])


def feature_map(y: np.ndarray, length: int, params: dict) -> np.ndarray:
    """Steps 4-5 for one trimmed recording: zero-pad it at the end to ``length`` samples and
    compute the feature map of ``params``' kind, ``(n_rows, length // hop_length + 1)``.

    A recording longer than ``length`` keeps its first ``length`` samples: a saved network
    (:mod:`sierlib.predict`) sees new recordings at the length it was trained on."""
    pad = {"mfcc": _pad_mfcc, "fbank_energy_pitch": _pad_fbank, "logmel": _pad_logmel}[feature_kind(params)]
    return pad(y[:length], length, params)


@dataclass
class Features:
    """Feature maps of a corpus (MFCC, or log-Mel + energy + pitch), aligned with ``utterances``."""
    X: np.ndarray                 # (n, n_mfcc or n_mels + 2, n_frames) float32
    utterances: np.ndarray        # utterance ids, same order as X
    n_samples: np.ndarray         # trimmed length of each recording, in samples at params["sr"]
    params: dict = field(default_factory=dict)
    from_cache: bool = False

    @property
    def padding_fraction(self) -> np.ndarray:
        """Share of each feature map's frames that lie in the zero padding."""
        hop = self.params["hop_length"]
        return 1.0 - np.minimum(1.0, (self.n_samples // hop + 1) / self.X.shape[-1])

    @property
    def n_frames(self) -> np.ndarray:
        """True number of frames of each feature map, before the zero padding (int64): the
        centred frames of the trimmed recording, ``n_samples // hop_length + 1``, at most the
        padded width. :func:`speech_mask` marks these frames."""
        n = np.asarray(self.n_samples, dtype=np.int64) // self.params["hop_length"] + 1
        return np.minimum(n, self.X.shape[-1])

    def select(self, meta: pd.DataFrame, values: np.ndarray | None = None) -> np.ndarray:
        """Rows of X (or of ``values``, one per utterance, e.g. :attr:`n_frames`) for the
        utterances of ``meta``, in meta's order."""
        index = {u: i for i, u in enumerate(self.utterances)}
        missing = [u for u in meta["utterance"] if u not in index]
        if missing:
            raise KeyError(f"no features for {len(missing)} utterances, e.g. {missing[:3]}")
        return (self.X if values is None else values)[[index[u] for u in meta["utterance"]]]


def file_digests(meta: pd.DataFrame) -> dict[str, str]:
    """The sha256 of every recording of ``meta``, by path: read once, for the cache key and for
    the check against the published corpus (:func:`sierlib.download.check_published`)."""
    return {path: sha256_file(path) for path in meta["path"]}


def cache_key(meta: pd.DataFrame, params: dict, digests: dict[str, str] | None = None) -> str:
    """Cache file stem: the corpus and a hash of every file's content (its sha256, with its
    utterance id) and every parameter (``digests``: the sha256 by path, computed when not given).

    Keying by content rather than by names and durations means a file replaced under the same
    name, even with the same length, is never served its old features. Hashing both corpora
    whole takes a fraction of a second (see the README), so nothing is memoised.
    """
    corpus = str(meta["corpus"].iloc[0])
    digests = file_digests(meta) if digests is None else digests
    listing = sorted(zip(meta["utterance"], (digests[p] for p in meta["path"])))
    content = {"corpus": corpus, "files": listing, "params": params, "v": FEATURE_VERSION}
    if feature_kind(params) == "fbank_energy_pitch":
        content["pitch"] = PITCH  # only for this kind
    blob = json.dumps(content, sort_keys=True)
    return f"{corpus_name(corpus)}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


@functools.cache
def warm_numba_cache() -> None:
    """Compile, or load, every numba function of librosa's that the pipeline runs, in this process.

    librosa compiles such functions with ``cache=True`` (most as it imports its modules) and
    writes them to its ``__pycache__`` folders, or to ``NUMBA_CACHE_DIR``. numba numbers a
    function's cache files as it writes them, so two processes compiling on a cold cache at once
    can leave an index that points at the other's machine code: after a first ``make run`` with
    two workers, ``librosa.util.localmin`` (inside ``librosa.yin``) segfaulted on every run in
    that environment until the files were deleted. Running every step of both feature kinds once
    on a short tone, here and under a lock shared by all processes on this machine, means one
    extraction writes the cache while any other waits, and workers started afterwards only read
    it. (Code that runs librosa otherwise, such as a notebook, is not covered by the lock.)
    """

    with FileLock(Path(tempfile.gettempdir()) / "sierlib-numba-warmup.lock"):
        sr = FEATURE_DEFAULTS["sr"]
        tone = (0.5 * np.sin(2 * np.pi * 220 * np.arange(sr // 2) / sr)).astype(np.float32)
        y = np.pad(tone, sr // 4)  # silence around it, for the trimming to cut
        y, _ = trim_silence(highpass(y, sr, FEATURE_DEFAULTS["highpass_hz"]))
        mfcc(y, sr)
        fbank_energy_pitch(y, sr)


def run_parallel(n_jobs: int, desc: str, items: list, progress: bool):
    """Run delayed calls with joblib and one progress bar; n_jobs=1 stays in this process.

    librosa's numba cache is filled first (:func:`warm_numba_cache`), in this process, so that
    no two workers ever write it at once.
    """
    warm_numba_cache()
    if n_jobs == 1:
        return [f(*a, **k) for f, a, k in tqdm(items, desc=desc, disable=not progress)]
    gen = Parallel(n_jobs=n_jobs, return_as="generator", batch_size=8)(items)
    return list(tqdm(gen, total=len(items), desc=desc, disable=not progress))


def extract_features(meta: pd.DataFrame, *, sr: int = FEATURE_DEFAULTS["sr"], n_mfcc: int | None = None, n_fft: int = FEATURE_DEFAULTS["n_fft"],
                     hop_length: int = FEATURE_DEFAULTS["hop_length"], top_db: float = FEATURE_DEFAULTS["top_db"], highpass_hz: float | None = FEATURE_DEFAULTS["highpass_hz"],
                     kind: str = "mfcc", n_mels: int | None = None, speed: float = 1.0,
                     cache: str | os.PathLike | None = None, use_cache: bool = True,
                     n_jobs: int = -1, progress: bool = True) -> Features:
    """Preprocess a whole corpus and compute its feature maps (see the module docstring).

    Parameters
    ----------
    meta : DataFrame from :func:`sierlib.corpora.load_metadata` (one corpus, all utterances:
        padding is to the longest recording in ``meta``).
    sr, n_mfcc, n_fft, hop_length, top_db, highpass_hz : feature parameters (``n_mfcc``: 20 when
        left out, MFCC kind only).
    kind : ``"mfcc"`` (default; ``(n, n_mfcc, n_frames)``), ``"logmel"`` (``(n, n_mels, n_frames)``) or
        ``"fbank_energy_pitch"``
        (``(n, n_mels + 2, n_frames)``: log-Mel, log energy, F0).
    n_mels : Mel bands of kind ``"fbank_energy_pitch"`` (40 when left out) or ``"logmel"`` (64).
    speed : speed perturbation factor (:func:`change_speed`; 1: none). Padding is to the longest
        recording at this speed, so perturbed features are wider or narrower than the others.
    cache : folder for the cache (default ``SIER_CACHE`` or ``cache/``).
    use_cache : read and write the cache; False always recomputes and writes nothing.
    n_jobs : processes for extraction (-1: all cores; 1: a plain loop in this process).
    progress : show progress bars.
    """
    params = check_feature_params(sr, n_mfcc, n_fft, hop_length, top_db, highpass_hz, kind, n_mels, speed)
    if meta["corpus"].nunique() != 1:
        raise ValueError("extract_features takes one corpus at a time")
    corpus = str(meta["corpus"].iloc[0])
    digests = file_digests(meta)  # every file read once: for the published-corpus check and the cache key
    check_published(meta, digests)  # Emo-DB and RAVDESS must be the published recordings
    path = cache_dir(cache) / f"{cache_key(meta, params, digests)}.npz" if use_cache else None
    if use_cache and path.is_file():
        return load_features(path, params)
    step1 = [(delayed(preprocess_file)(p, corpus, sr, top_db, highpass_hz, n_fft, hop_length, speed))
             for p in meta["path"]]
    signals = run_parallel(n_jobs, f"{corpus_name(corpus)}: read, filter, trim", step1, progress)
    length = max(len(y) for y in signals)
    step2 = [delayed(feature_map)(y, length, params) for y in signals]
    desc = f"{corpus_name(corpus)}: pad, " + {"mfcc": "MFCC", "fbank_energy_pitch": "log-Mel + energy + pitch",
                                              "logmel": "log-Mel"}[feature_kind(params)]
    X = np.stack(run_parallel(n_jobs, desc, step2, progress))
    feats = Features(X, meta["utterance"].to_numpy(dtype=str), np.array([len(y) for y in signals]),
                     params)
    if use_cache:
        save_features(feats, path)
    return feats


def save_features(feats: Features, path: str | os.PathLike, compress: bool = False) -> Path:
    """Write features (maps, utterance ids, trimmed lengths, parameters) to one ``.npz``,
    atomically: the feature cache and the packs of :func:`sierlib.workers.write_pack`
    (``compress``: the zero padding shrinks an Emo-DB file from 16 to about 5 MB)."""

    save = np.savez_compressed if compress else np.savez
    with atomic_write(path, "wb") as f:
        save(f, X=feats.X, utterances=feats.utterances, n_samples=feats.n_samples, params=json.dumps(feats.params))
    return Path(path)


def load_features(path: str | os.PathLike, params: dict | None = None) -> Features:
    """Features written by :func:`save_features`. With ``params``, a file holding other feature
    parameters is refused (ValueError naming both)."""
    with np.load(path, allow_pickle=False) as z:
        stored = json.loads(str(z["params"]))
        if params is not None and stored != params:
            raise ValueError(f"{path} holds features {stored}, not the {params} asked for")
        return Features(z["X"], z["utterances"], z["n_samples"], stored, from_cache=True)
