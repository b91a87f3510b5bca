"""Corpus loaders: Emo-DB, RAVDESS and the synthetic test corpus, as one metadata table.

Labels come from the file names (see ``../shared/data/README.md`` or the corpora's own
documentation). Every problem with a corpus on disk -- a missing folder, a missing, empty,
truncated or unreadable file, an unknown emotion code, audio that cannot carry emotion (non-finite
samples, digital silence, under :data:`MIN_SPEECH_S` of sound) -- raises :class:`CorpusError` with
the file's name and what to do about it, never a traceback from inside an audio library.
"""
from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from tqdm.auto import tqdm

REPO_ROOT = Path(__file__).resolve().parent.parent


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

EMODB_EMOTIONS = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear",
                  "F": "happiness", "T": "sadness", "N": "neutral"}
EMODB_GENDER = {"03": "male", "10": "male", "11": "male", "12": "male", "15": "male",
                "08": "female", "09": "female", "13": "female", "14": "female", "16": "female"}
RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happiness", "04": "sadness",
                    "05": "anger", "06": "fear", "07": "disgust", "08": "surprise"}

# Expected size of each complete corpus (files, speakers); the synthetic corpus carries its own.
EXPECTED = {"emodb": (535, 10), "ravdess": (1440, 24)}
AUDIO_SUFFIXES = (".wav", ".flac")
# Shortest recording accepted, in seconds of sound once leading and trailing silence are trimmed.
# A quarter of a second holds about one syllable, the least that can carry emotion; the corpora's
# shortest recordings keep 1.13 s (Emo-DB) and 1.07 s (RAVDESS) after trimming, so only a broken
# or wrong file falls below it.
MIN_SPEECH_S = 0.25

_EMODB_NAME = re.compile(r"^(?P<speaker>\d\d)(?P<text>[ab]\d\d)(?P<code>[A-Za-z])(?P<version>[a-z])$")
_RAVDESS_NAME = re.compile(
    r"^(?P<modality>\d\d)-(?P<channel>\d\d)-(?P<code>\d\d)-(?P<intensity>\d\d)-"
    r"(?P<statement>\d\d)-(?P<repetition>\d\d)-(?P<actor>\d\d)$")


class CorpusError(RuntimeError):
    """A corpus on disk is missing, incomplete or damaged. The message says which file and the fix."""


def data_root(data_root: str | os.PathLike | None = None) -> Path:
    """The folder that holds ``emodb/``, ``ravdess/`` (and ``synthetic/``).

    Taken from the argument, else the environment variable ``SIER_DATA``, else ``data/`` in the
    repository (git-ignored).
    """
    if data_root is None:
        data_root = os.environ.get("SIER_DATA") or (REPO_ROOT / "data")
    return Path(data_root).expanduser().resolve()


def corpus_dir(corpus: str, root: str | os.PathLike | None = None) -> Path:
    check_corpus_name(corpus)
    return data_root(root) / corpus


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


def corpus_info(corpus: str) -> CorpusInfo:
    """The registry entry of a corpus, or the :class:`CorpusInfo` of a manifest CSV (read and
    checked, see :func:`sierlib.manifest.manifest_info`); ValueError naming the known corpora
    for any other name."""
    if is_manifest(corpus):
        from .manifest import manifest_info

        return manifest_info(corpus)
    return CORPORA[check_corpus_name(corpus)]


def _fix_hint(corpus: str) -> str:
    if corpus == "synthetic":
        return "Regenerate it with `sier synthetic` (sierlib.synthetic.make_synthetic_corpus)."
    if is_manifest(corpus):
        return f"Replace the file, or correct or remove its line in the manifest {corpus}."
    if corpus not in CORPORA:  # a recording outside any corpus (sier predict)
        return "Check the file (any format libsndfile reads: WAV, FLAC, OGG, MP3), or leave it out."
    return (f"Re-download it with `sier download {corpus}` (checksums verified), or point SIER_DATA "
            f"at a complete copy.")


def _relname(path: Path) -> str:
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
    what = f"{PRETTY.get(corpus, corpus)} file {_relname(path)}"
    if not path.is_file():
        raise CorpusError(f"{what} is missing ({path}). {_fix_hint(corpus)}")
    if path.stat().st_size == 0:
        raise CorpusError(f"{what} is empty (0 bytes). {_fix_hint(corpus)}")
    problem = wav_truncation(path) if path.suffix.lower() == ".wav" else None
    if problem:
        raise CorpusError(f"{what} is truncated: {problem}. {_fix_hint(corpus)}")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises RuntimeError / LibsndfileError / TypeError
        raise CorpusError(f"{what} cannot be read as audio ({exc}). {_fix_hint(corpus)}") from None
    if info.frames <= 0:
        raise CorpusError(f"{what} holds no audio samples. {_fix_hint(corpus)}")
    if path.suffix.lower() == ".flac":
        problem = flac_truncation(path, info.frames)
        if problem:
            raise CorpusError(f"{what} is truncated: {problem}. {_fix_hint(corpus)}")
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


def read_audio(path: str | os.PathLike, sr: int | None = 22050, corpus: str = "emodb") -> np.ndarray:
    """Read one file (.wav or .flac) as mono float32 at ``sr`` Hz (None keeps the file's rate).

    Stereo files are downmixed by averaging the channels. Raises CorpusError (naming the file)
    for a missing, empty, truncated or undecodable file, and for non-finite samples (NaN or
    infinity, which a float WAV can hold): they would otherwise reach the resampler or the
    features, which fail without naming the file or silently trim the recording to nothing.
    """
    path = Path(path)
    info = check_audio_file(path, corpus)
    what = f"{PRETTY.get(corpus, corpus)} file {_relname(path)}"
    try:
        y, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise CorpusError(f"{what} cannot be decoded ({exc}). {_fix_hint(corpus)}") from None
    if len(y) < info.frames:
        raise CorpusError(f"{what} is truncated: {len(y)} of {info.frames} samples could be "
                          f"decoded. {_fix_hint(corpus)}")
    if not np.isfinite(y).all():
        raise CorpusError(f"{what} holds non-finite samples (NaN or infinity), so no feature can be "
                          f"computed from it. {_fix_hint(corpus)}")
    y = y.mean(axis=1) if y.shape[1] > 1 else y[:, 0]
    if sr is not None and sr != file_sr:
        import librosa  # imported lazily: librosa is slow to import and only needed here

        y = librosa.resample(y, orig_sr=file_sr, target_sr=sr, res_type="soxr_hq")
    return np.ascontiguousarray(y, dtype=np.float32)


def sounding_span(y: np.ndarray, top_db: float = 30.0) -> tuple[int, int]:
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
    what = f"{PRETTY.get(corpus, corpus)} file {_relname(Path(path))}"
    if not np.any(y):
        raise CorpusError(f"{what} is digitally silent (every sample is 0), so it cannot carry "
                          f"emotion. {_fix_hint(corpus)}")
    if len(y) < MIN_SPEECH_S * sr:
        raise CorpusError(f"{what} holds only {len(y) / sr:.2f} s of sound once its leading and "
                          f"trailing silence are trimmed; at least {MIN_SPEECH_S} s is needed to "
                          f"carry emotion. {_fix_hint(corpus)}")


def check_recordings(meta: pd.DataFrame, *, top_db: float = 30.0, progress: bool = True) -> None:
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


def _parse_emodb(path: Path, corpus: str) -> dict:
    m = _EMODB_NAME.match(path.stem)
    if not m:
        raise CorpusError(f"{PRETTY[corpus]} file {_relname(path)} does not follow the naming "
                          f"scheme SSTTTEV (e.g. 03a01Fa.wav). Remove it or {_fix_hint(corpus)}")
    code, speaker = m["code"], m["speaker"]
    if code not in EMODB_EMOTIONS:
        raise CorpusError(f"{PRETTY[corpus]} file {_relname(path)} has unknown emotion code "
                          f"{code!r}; known codes are {', '.join(EMODB_EMOTIONS)}. {_fix_hint(corpus)}")
    genders = EMODB_GENDER if corpus == "emodb" else None
    if genders is not None and speaker not in genders:
        raise CorpusError(f"Emo-DB file {_relname(path)} names unknown speaker {speaker!r}. "
                          f"{_fix_hint(corpus)}")
    return {"speaker": speaker, "gender": genders[speaker] if genders else None,
            "emotion": EMODB_EMOTIONS[code], "emotion_code": code,
            "text": m["text"], "version": m["version"]}


def _parse_ravdess(path: Path) -> dict:
    m = _RAVDESS_NAME.match(path.stem)
    if not m:
        raise CorpusError(f"RAVDESS file {_relname(path)} does not follow the naming scheme "
                          f"MM-VV-EE-II-SS-RR-AA (e.g. 03-01-06-01-02-01-12.wav). Remove it or "
                          f"{_fix_hint('ravdess')}")
    if m["code"] not in RAVDESS_EMOTIONS:
        raise CorpusError(f"RAVDESS file {_relname(path)} has unknown emotion code {m['code']!r}; "
                          f"known codes are 01-08. {_fix_hint('ravdess')}")
    if (m["modality"], m["channel"]) != ("03", "01"):
        raise CorpusError(f"RAVDESS file {_relname(path)} is not audio-only speech (modality 03, "
                          f"channel 01). Use Audio_Speech_Actors_01-24.zip. {_fix_hint('ravdess')}")
    actor = int(m["actor"])
    if not 1 <= actor <= 24 or path.parent.name != f"Actor_{m['actor']}":
        raise CorpusError(f"RAVDESS file {_relname(path)} names actor {m['actor']} but lies in "
                          f"{path.parent.name}/. {_fix_hint('ravdess')}")
    return {"speaker": m["actor"], "gender": "male" if actor % 2 else "female",
            "emotion": RAVDESS_EMOTIONS[m["code"]], "emotion_code": m["code"],
            "intensity": "normal" if m["intensity"] == "01" else "strong",
            "statement": m["statement"], "repetition": int(m["repetition"])}


def _expected_names(corpus: str) -> list[str] | None:
    """Relative paths (without suffix) of every audio file of a complete corpus, from the
    checksum lists shipped in sierlib, so a missing file can be named."""
    from .download import read_checksums

    if corpus == "emodb":
        return sorted(p[:-4] for p in read_checksums("emodb") if p.startswith("wav/"))
    if corpus == "ravdess":
        return sorted(p[:-4] for p in read_checksums("ravdess"))
    return None


def _audio_files(root: Path, corpus: str) -> list[Path]:
    if corpus in ("emodb", "synthetic"):
        candidates = (root / "wav").glob("*")
    else:
        candidates = root.glob("Actor_*/*")
    files = [p for p in candidates if p.suffix.lower() in AUDIO_SUFFIXES]
    # A corpus may be stored as .wav (as distributed) or .flac (re-encoded losslessly); one
    # recording in both forms would be counted twice, so prefer the original .wav.
    by_stem = {}
    for p in sorted(files, key=lambda p: (p.suffix.lower() != ".wav", str(p))):
        by_stem.setdefault(p.with_suffix(""), p)
    return sorted(by_stem.values())


def load_metadata(corpus: str = "emodb", data_root: str | os.PathLike | None = None,
                  check: bool = True) -> pd.DataFrame:
    """Load one corpus's metadata table.

    Parameters
    ----------
    corpus : {"emodb", "ravdess", "synthetic"} or the path of a manifest CSV
        A manifest (:mod:`sierlib.manifest`) names its own files; ``data_root`` does not apply.
    data_root : path, optional
        Folder holding the corpora; defaults to ``SIER_DATA`` or ``data/`` in the repository.
    check : bool
        Check that the corpus is complete (every expected file present) and every file's header
        is sound (not empty, not truncated, readable). Raises CorpusError otherwise.

    Returns
    -------
    pandas.DataFrame
        One row per utterance, sorted by path, with columns ``utterance, path, corpus, speaker,
        gender, emotion, emotion_code, duration, sample_rate, channels`` and the corpus's own
        fields (Emo-DB: ``text, version``; RAVDESS: ``intensity, statement, repetition``).
    """
    if is_manifest(corpus):  # a corpus of your own: its files are named in the CSV, not under data_root
        from .manifest import load_manifest

        return load_manifest(corpus, check=check)
    corpus = check_corpus_name(corpus)
    root = corpus_dir(corpus, data_root)
    if not root.is_dir():
        raise CorpusError(
            f"{PRETTY[corpus]} was not found at {root}. Set SIER_DATA (or data_root=) to the folder "
            f"that holds {corpus}/, or {_fix_hint(corpus)[0].lower() + _fix_hint(corpus)[1:]}")
    files = _audio_files(root, corpus)
    expected = _expected_names(corpus) if check else None
    if expected is not None:
        # as_posix: the expected names use "/", which str() of a relative path does not on Windows
        have = {p.relative_to(root).with_suffix("").as_posix() for p in files}
        missing = [e for e in expected if e not in have]
        if missing:
            # name the missing files in full, with the suffix the rest of this copy uses
            suffixes = [p.suffix.lower() for p in files]
            suffix = max(AUDIO_SUFFIXES, key=suffixes.count) if suffixes else ".wav"
            missing = [e + suffix for e in missing]
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise CorpusError(f"{PRETTY[corpus]} at {root} is incomplete: {len(missing)} of "
                              f"{len(expected)} audio files are missing ({shown}). {_fix_hint(corpus)}")
    rows = []
    genders = _synthetic_genders(root) if corpus == "synthetic" else None
    for p in files:
        row = _parse_ravdess(p) if corpus == "ravdess" else _parse_emodb(p, corpus)
        if genders is not None:
            if row["speaker"] not in genders:
                raise CorpusError(f"synthetic file {_relname(p)} names a speaker missing from "
                                  f"speakers.csv. {_fix_hint(corpus)}")
            row["gender"] = genders[row["speaker"]]
        if check:
            info = check_audio_file(p, corpus)
        else:
            info = sf.info(str(p))
        row.update(utterance=p.stem, path=str(p), corpus=corpus, duration=info.frames / info.samplerate,
                   sample_rate=info.samplerate, channels=info.channels)
        rows.append(row)
    if not rows:
        raise CorpusError(f"{PRETTY[corpus]} at {root} holds no audio files. {_fix_hint(corpus)}")
    df = pd.DataFrame(rows)
    if check and corpus in EXPECTED:
        n_files, n_speakers = EXPECTED[corpus]
        if len(df) != n_files or df["speaker"].nunique() != n_speakers:
            raise CorpusError(f"{PRETTY[corpus]} at {root} has {len(df)} files from "
                              f"{df['speaker'].nunique()} speakers; a complete copy has {n_files} "
                              f"files from {n_speakers}. {_fix_hint(corpus)}")
    first = ["utterance", "path", "corpus", "speaker", "gender", "emotion", "emotion_code",
             "duration", "sample_rate", "channels"]
    return df[first + [c for c in df.columns if c not in first]].reset_index(drop=True)


def _synthetic_genders(root: Path) -> dict:
    table = root / "speakers.csv"
    if not table.is_file():
        raise CorpusError(f"synthetic corpus at {root} has no speakers.csv. {_fix_hint('synthetic')}")
    df = pd.read_csv(table, dtype=str)
    return dict(zip(df["speaker"], df["gender"]))


def corpus_summary(meta: pd.DataFrame) -> pd.DataFrame:
    """Counts of utterances per emotion and gender, with speakers and total duration."""
    table = pd.crosstab(meta["emotion"], meta["gender"], margins=True, margins_name="all")
    return table
