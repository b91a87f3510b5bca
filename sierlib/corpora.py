"""Corpus loaders: Emo-DB, RAVDESS, the synthetic test corpus and manifests of your own, as one
metadata table (:func:`load_metadata`), and a corpus's :class:`~sierlib.registry.CorpusInfo`
(:func:`corpus_info`). The one place that tells a built-in corpus from a manifest when loading.

Labels come from the file names (see ``../shared/data/README.md`` or the corpora's own
documentation). Every problem with a corpus on disk -- a missing folder, a missing, extra, empty,
truncated or unreadable file, an unknown emotion code, audio that cannot carry emotion -- raises
:class:`~sierlib.audio.CorpusError` with the file's name and what to do about it.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import soundfile as sf

from .audio import AUDIO_SUFFIXES, CorpusError, check_audio_file, fix_hint, listed, relname
from .download import read_checksums
from .manifest import load_manifest, manifest_info
from .paths import data_root
from .registry import CORPORA, EXPECTED, PRETTY, CorpusInfo, check_corpus_name, is_manifest

EMODB_EMOTIONS = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear",
                  "F": "happiness", "T": "sadness", "N": "neutral"}
EMODB_GENDER = {"03": "male", "10": "male", "11": "male", "12": "male", "15": "male",
                "08": "female", "09": "female", "13": "female", "14": "female", "16": "female"}
RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happiness", "04": "sadness",
                    "05": "anger", "06": "fear", "07": "disgust", "08": "surprise"}


_EMODB_NAME = re.compile(r"^(?P<speaker>\d\d)(?P<text>[ab]\d\d)(?P<code>[A-Za-z])(?P<version>[a-z])$")
_RAVDESS_NAME = re.compile(
    r"^(?P<modality>\d\d)-(?P<channel>\d\d)-(?P<code>\d\d)-(?P<intensity>\d\d)-"
    r"(?P<statement>\d\d)-(?P<repetition>\d\d)-(?P<actor>\d\d)$")


def corpus_dir(corpus: str, root: str | os.PathLike | None = None) -> Path:
    check_corpus_name(corpus)
    return data_root(root) / corpus


def corpus_info(corpus: str) -> CorpusInfo:
    """The registry entry of a corpus, or the :class:`CorpusInfo` of a manifest CSV (read and
    checked, see :func:`sierlib.manifest.manifest_info`); ValueError naming the known corpora
    for any other name."""
    if is_manifest(corpus):
        return manifest_info(corpus)
    return CORPORA[check_corpus_name(corpus)]


def _parse_emodb(path: Path, corpus: str) -> dict:
    m = _EMODB_NAME.match(path.stem)
    if not m:
        raise CorpusError(f"{PRETTY[corpus]} file {relname(path)} does not follow the naming "
                          f"scheme SSTTTEV (e.g. 03a01Fa.wav). Remove it or {fix_hint(corpus)}")
    code, speaker = m["code"], m["speaker"]
    if code not in EMODB_EMOTIONS:
        raise CorpusError(f"{PRETTY[corpus]} file {relname(path)} has unknown emotion code "
                          f"{code!r}; known codes are {', '.join(EMODB_EMOTIONS)}. {fix_hint(corpus)}")
    genders = EMODB_GENDER if corpus == "emodb" else None
    if genders is not None and speaker not in genders:
        raise CorpusError(f"Emo-DB file {relname(path)} names unknown speaker {speaker!r}. "
                          f"{fix_hint(corpus)}")
    return {"speaker": speaker, "gender": genders[speaker] if genders else None,
            "emotion": EMODB_EMOTIONS[code], "emotion_code": code,
            "text": m["text"], "version": m["version"]}


def _parse_ravdess(path: Path) -> dict:
    m = _RAVDESS_NAME.match(path.stem)
    if not m:
        raise CorpusError(f"RAVDESS file {relname(path)} does not follow the naming scheme "
                          f"MM-VV-EE-II-SS-RR-AA (e.g. 03-01-06-01-02-01-12.wav). Remove it or "
                          f"{fix_hint('ravdess')}")
    if m["code"] not in RAVDESS_EMOTIONS:
        raise CorpusError(f"RAVDESS file {relname(path)} has unknown emotion code {m['code']!r}; "
                          f"known codes are 01-08. {fix_hint('ravdess')}")
    if (m["modality"], m["channel"]) != ("03", "01"):
        raise CorpusError(f"RAVDESS file {relname(path)} is not audio-only speech (modality 03, "
                          f"channel 01). Use Audio_Speech_Actors_01-24.zip. {fix_hint('ravdess')}")
    actor = int(m["actor"])
    if not 1 <= actor <= 24 or path.parent.name != f"Actor_{m['actor']}":
        raise CorpusError(f"RAVDESS file {relname(path)} names actor {m['actor']} but lies in "
                          f"{path.parent.name}/. {fix_hint('ravdess')}")
    return {"speaker": m["actor"], "gender": "male" if actor % 2 else "female",
            "emotion": RAVDESS_EMOTIONS[m["code"]], "emotion_code": m["code"],
            "intensity": "normal" if m["intensity"] == "01" else "strong",
            "statement": m["statement"], "repetition": int(m["repetition"])}


def _expected_names(corpus: str) -> list[str] | None:
    """Relative paths (without suffix) of every audio file of a complete corpus, from the
    checksum lists shipped in sierlib, so a missing file can be named."""
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
        return load_manifest(corpus, check=check)
    corpus = check_corpus_name(corpus)
    root = corpus_dir(corpus, data_root)
    if not root.is_dir():
        raise CorpusError(
            f"{PRETTY[corpus]} was not found at {root}. Set SIER_DATA (or data_root=) to the folder "
            f"that holds {corpus}/, or {fix_hint(corpus)[0].lower() + fix_hint(corpus)[1:]}")
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
            shown = listed(missing)
            raise CorpusError(f"{PRETTY[corpus]} at {root} is incomplete: {len(missing)} of "
                              f"{len(expected)} audio files are missing ({shown}). {fix_hint(corpus)}")
    rows = []
    genders = _synthetic_genders(root) if corpus == "synthetic" else None
    for p in files:
        row = _parse_ravdess(p) if corpus == "ravdess" else _parse_emodb(p, corpus)
        if genders is not None:
            if row["speaker"] not in genders:
                raise CorpusError(f"synthetic file {relname(p)} names a speaker missing from "
                                  f"speakers.csv. {fix_hint(corpus)}")
            row["gender"] = genders[row["speaker"]]
        if check:
            info = check_audio_file(p, corpus)
        else:
            info = sf.info(str(p))
        row.update(utterance=p.stem, path=str(p), corpus=corpus, duration=info.frames / info.samplerate,
                   sample_rate=info.samplerate, channels=info.channels)
        rows.append(row)
    if not rows:
        raise CorpusError(f"{PRETTY[corpus]} at {root} holds no audio files. {fix_hint(corpus)}")
    df = pd.DataFrame(rows)
    if check and corpus in EXPECTED:
        n_files, n_speakers = EXPECTED[corpus]
        if len(df) != n_files or df["speaker"].nunique() != n_speakers:
            known = set(expected or ())
            extra = [p.relative_to(root).as_posix() for p in files
                     if p.relative_to(root).with_suffix("").as_posix() not in known]
            named = f" Not part of it: {listed(extra)}." if extra else ""
            raise CorpusError(f"{PRETTY[corpus]} at {root} has {len(df)} files from "
                              f"{df['speaker'].nunique()} speakers; a complete copy has {n_files} "
                              f"files from {n_speakers}.{named} {fix_hint(corpus)}")
    first = ["utterance", "path", "corpus", "speaker", "gender", "emotion", "emotion_code",
             "duration", "sample_rate", "channels"]
    return df[first + [c for c in df.columns if c not in first]].reset_index(drop=True)


def _synthetic_genders(root: Path) -> dict:
    table = root / "speakers.csv"
    if not table.is_file():
        raise CorpusError(f"synthetic corpus at {root} has no speakers.csv. {fix_hint('synthetic')}")
    df = pd.read_csv(table, dtype=str)
    return dict(zip(df["speaker"], df["gender"]))


def corpus_summary(meta: pd.DataFrame) -> pd.DataFrame:
    """Counts of utterances per emotion and gender, with speakers and total duration."""
    table = pd.crosstab(meta["emotion"], meta["gender"], margins=True, margins_name="all")
    return table
