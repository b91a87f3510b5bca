"""Reading and checking one recording: every problem with an audio file on disk -- missing, empty,
truncated or unreadable, non-finite samples, digital silence, under :data:`MIN_SPEECH_S` of sound
-- raises :class:`CorpusError` with the file's name and what to do about it, never a traceback
from inside an audio library. The corpus loaders (:mod:`sierlib.corpora`, :mod:`sierlib.manifest`)
and feature extraction build on it.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from tqdm.auto import tqdm

from .registry import CORPORA, FEATURE_DEFAULTS, PRETTY, is_manifest

AUDIO_SUFFIXES = (".wav", ".flac")
# Shortest recording accepted, in seconds of sound once leading and trailing silence are trimmed.
# A quarter of a second holds about one syllable, the least that can carry emotion; the corpora's
# shortest recordings keep 1.13 s (Emo-DB) and 1.07 s (RAVDESS) after trimming, so only a broken
# or wrong file falls below it.
MIN_SPEECH_S = 0.25


class CorpusError(RuntimeError):
    """A corpus on disk is missing, incomplete or damaged. The message says which file and the fix."""


def fix_hint(corpus: str) -> str:
    if corpus == "synthetic":
        return "Regenerate it with `sier synthetic` (sierlib.synthetic.make_synthetic_corpus)."
    if is_manifest(corpus):
        return f"Replace the file, or correct or remove its line in the manifest {corpus}."
    if corpus not in CORPORA:  # a recording outside any corpus (sier predict)
        return "Check the file (any format libsndfile reads: WAV, FLAC, OGG, MP3), or leave it out."
    return (f"Re-download it with `sier download {corpus}` (checksums verified), or point SIER_DATA "
            f"at a complete copy.")


def listed(names: list[str], shown: int = 5) -> str:
    """A few names for a message, then how many more."""
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def relname(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def wav_truncation(path: str | os.PathLike) -> str | None:
    """Describe how a RIFF/WAVE file is truncated, or return None if its data chunk is whole.

    libsndfile silently shortens a WAV whose header promises more audio than the file holds, so
    a cut-off download would otherwise load as a shorter recording. We compare the data chunk's
    declared size with the bytes actually present.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None  # not a RIFF/WAVE file: soundfile will judge it
        offset = 12
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return f"the file ends after {size} bytes, before its audio data begins"
            cid, csize = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            offset += 8
            if cid == b"data":
                present = size - offset
                if present < csize:
                    return f"its header promises {csize} bytes of audio but only {present} are present"
                return None
            offset += csize + (csize & 1)
            f.seek(offset)


def check_audio_file(path: str | os.PathLike, corpus: str = "emodb") -> sf._SoundFileInfo:
    """Header-level check of one audio file; returns its soundfile info or raises CorpusError."""
    path = Path(path)
    what = f"{PRETTY.get(corpus, corpus)} file {relname(path)}"
    if not path.is_file():
        raise CorpusError(f"{what} is missing ({path}). {fix_hint(corpus)}")
    if path.stat().st_size == 0:
        raise CorpusError(f"{what} is empty (0 bytes). {fix_hint(corpus)}")
    problem = wav_truncation(path) if path.suffix.lower() == ".wav" else None
    if problem:
        raise CorpusError(f"{what} is truncated: {problem}. {fix_hint(corpus)}")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises RuntimeError / LibsndfileError / TypeError
        raise CorpusError(f"{what} cannot be read as audio ({exc}). {fix_hint(corpus)}") from None
    if info.frames <= 0:
        raise CorpusError(f"{what} holds no audio samples. {fix_hint(corpus)}")
    if path.suffix.lower() == ".flac":
        problem = flac_truncation(path, info.frames)
        if problem:
            raise CorpusError(f"{what} is truncated: {problem}. {fix_hint(corpus)}")
    return info


def flac_truncation(path: str | os.PathLike, frames: int) -> str | None:
    """Describe how a FLAC file is truncated, or return None if its last samples decode.

    A FLAC header states the total number of samples whether or not the audio behind it is all
    there, so a cut-off file passes ``sf.info``. Seeking to the end and decoding the last few
    samples finds the cut at the cost of one FLAC frame (under a millisecond), not the whole file.
    """
    try:
        with sf.SoundFile(str(path)) as f:
            f.seek(max(frames - 16, 0))
            got = len(f.read(16))
    except Exception as exc:  # libsndfile: "flac decoder lost sync", "psf_fseek() failed"
        return f"its header promises {frames} samples but the end cannot be decoded ({exc})"
    if got < min(16, frames):
        return f"its header promises {frames} samples but the last ones are missing"
    return None


def read_audio(path: str | os.PathLike, sr: int | None = FEATURE_DEFAULTS["sr"], corpus: str = "emodb") -> np.ndarray:
    """Read one file (.wav or .flac) as mono float32 at ``sr`` Hz (None keeps the file's rate).

    Stereo files are downmixed by averaging the channels. Raises CorpusError (naming the file)
    for a missing, empty, truncated or undecodable file, and for non-finite samples (NaN or
    infinity, which a float WAV can hold): they would otherwise reach the resampler or the
    features, which fail without naming the file or silently trim the recording to nothing.
    """
    path = Path(path)
    info = check_audio_file(path, corpus)
    what = f"{PRETTY.get(corpus, corpus)} file {relname(path)}"
    try:
        y, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise CorpusError(f"{what} cannot be decoded ({exc}). {fix_hint(corpus)}") from None
    if len(y) < info.frames:
        raise CorpusError(f"{what} is truncated: {len(y)} of {info.frames} samples could be "
                          f"decoded. {fix_hint(corpus)}")
    if not np.isfinite(y).all():
        raise CorpusError(f"{what} holds non-finite samples (NaN or infinity), so no feature can be "
                          f"computed from it. {fix_hint(corpus)}")
    y = y.mean(axis=1) if y.shape[1] > 1 else y[:, 0]
    if sr is not None and sr != file_sr:
        import librosa  # imported lazily: librosa is slow to import and only needed here

        y = librosa.resample(y, orig_sr=file_sr, target_sr=sr, res_type="soxr_hq")
    return np.ascontiguousarray(y, dtype=np.float32)


def sounding_span(y: np.ndarray, top_db: float = FEATURE_DEFAULTS["top_db"]) -> tuple[int, int]:
    """Samples ``[start, end)`` left once leading and trailing silence are cut.

    The rule of ``librosa.effects.trim`` with the pipeline's frames (2048 samples every 512,
    centred): frames whose RMS lies more than ``top_db`` dB below the loudest frame's are
    silence. Written with numpy, so that checking a whole corpus needs neither librosa's import
    nor its numba compilation, and summed over blocks of one hop (a frame is four blocks), which
    is five times faster than framing the signal.
    """
    hop = 512
    n_frames = 1 + len(y) // hop
    # centred frames: half a frame (two blocks) of zeros before the signal, and enough after it
    padded = np.zeros((n_frames + 3) * hop)
    padded[2 * hop: 2 * hop + len(y)] = y
    blocks = (padded ** 2).reshape(-1, hop).sum(axis=1)
    power = (blocks[:-3] + blocks[1:-2] + blocks[2:-1] + blocks[3:]) / (4 * hop)
    power = np.maximum(power, 1e-10)  # librosa's floor (amin 1e-5 on the RMS)
    loud = np.flatnonzero(10 * np.log10(power / power.max()) > -top_db)  # at least the loudest frame
    return int(loud[0] * hop), min(len(y), int((loud[-1] + 1) * hop))


def check_speech(y: np.ndarray, sr: int, *, path: str | os.PathLike, corpus: str = "emodb") -> None:
    """Raise CorpusError (naming ``path``) when a trimmed recording cannot carry emotion.

    Parameters
    ----------
    y : numpy.ndarray
        The recording after its leading and trailing silence were trimmed.
    sr : int
        Its sample rate.
    path, corpus
        The file it came from and its corpus, for the message.

    Digital silence (every sample 0, which trimming keeps whole) and fewer than
    :data:`MIN_SPEECH_S` seconds of sound are errors.
    """
    what = f"{PRETTY.get(corpus, corpus)} file {relname(Path(path))}"
    if not np.any(y):
        raise CorpusError(f"{what} is digitally silent (every sample is 0), so it cannot carry "
                          f"emotion. {fix_hint(corpus)}")
    if len(y) < MIN_SPEECH_S * sr:
        raise CorpusError(f"{what} holds only {len(y) / sr:.2f} s of sound once its leading and "
                          f"trailing silence are trimmed; at least {MIN_SPEECH_S} s is needed to "
                          f"carry emotion. {fix_hint(corpus)}")


def check_recordings(meta: pd.DataFrame, *, top_db: float = FEATURE_DEFAULTS["top_db"], progress: bool = True) -> None:
    """Read every recording of ``meta`` once and check that it can carry emotion.

    Each file is read at its own rate; non-finite samples, digital silence and fewer than
    :data:`MIN_SPEECH_S` seconds of sound after trimming (:func:`sounding_span`) raise
    CorpusError naming the file. Feature extraction checks the same on the signal it trims, at
    its own rate and parameters. Decoding dominates the time (see the README).

    Parameters
    ----------
    meta : pandas.DataFrame
        Metadata from :func:`load_metadata` (one or more corpora).
    top_db : float
        Silence threshold of the trimming, in dB below the loudest frame.
    progress : bool
        Show a progress bar.
    """
    rows = list(zip(meta["path"], meta["corpus"], meta["sample_rate"]))
    for path, corpus, sr in tqdm(rows, desc="check audio", unit="file", disable=not progress):
        y = read_audio(path, sr=None, corpus=corpus)
        start, end = sounding_span(y, top_db)
        check_speech(y[start:end], int(sr), path=path, corpus=corpus)


