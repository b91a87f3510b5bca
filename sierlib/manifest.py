"""Corpora of your own: a manifest CSV that names the recordings and their labels.

A manifest is a UTF-8 CSV file with a header and one line per recording::

    file,speaker,gender,emotion
    alice/happy_01.wav,alice,female,happiness
    alice/sad_01.wav,alice,female,sadness
    /data/bob/take 3.flac,bob,male,anger
    carol/01.ogg,carol,female,neutral

- ``file``: the recording, relative to the CSV's folder or absolute (any format libsndfile
  reads: WAV, FLAC, OGG, MP3; any sample rate, mono or stereo);
- ``speaker``: any id (compared as text);
- ``gender``: ``male`` or ``female`` (the folds pair one of each);
- ``emotion``: any label; the network's classes are the labels of the CSV, sorted.

Other columns are kept as metadata. Wherever a corpus name is accepted (``RunConfig.corpus``,
``-p corpus`` of ``04_train``, ``sier sweep --corpus``, ``sier summary``) the path of a
manifest is too, and the corpus is then treated exactly as the built-in ones: same
preprocessing and feature cache, leave-two-speakers-out folds built by
:func:`sierlib.folds.make_folds` (fold k tests on the k-th male and k-th female speaker in id
order, so a manifest needs as many female as male speakers, at least 3 of each). The corpus's
short name is the CSV's stem (:func:`sierlib.registry.corpus_name`); its identity is the CSV's
absolute path, and run names hash the CSV's content (:func:`manifest_sha256`).

Every problem raises :class:`ManifestError` naming the manifest, the line and the fix: a
missing column, an empty field, an unknown gender, duplicate lines, a speaker with two genders,
too few or unbalanced speakers, a class with no training example in some fold (these are
checked from the table alone, when a run's configuration is made), and a missing or unreadable
recording (checked when the corpus is loaded).
"""
from __future__ import annotations

import csv
import functools
import hashlib
import os
from pathlib import Path

import pandas as pd
import soundfile as sf

from .audio import CorpusError, check_audio_file
from .folds import make_folds
from .registry import CORPORA, CorpusInfo, is_manifest

COLUMNS = ("file", "speaker", "gender", "emotion")
GENDERS = ("male", "female")
# Columns that load_manifest computes; a manifest may not bring its own.
COMPUTED = ("utterance", "path", "corpus", "emotion_code", "duration", "sample_rate", "channels", "line")


class ManifestError(CorpusError, ValueError):
    """A manifest is malformed or names a bad recording; the message names the manifest, the
    line and the fix. A ValueError too, so that a run's configuration reports it as a bad
    parameter."""


def manifest_path(corpus: str | os.PathLike) -> Path:
    """The absolute path of a manifest (``~`` expanded; relative to the current folder)."""
    if not is_manifest(corpus):
        raise ValueError(f"a manifest is a .csv file; got {str(corpus)!r}")
    return Path(corpus).expanduser().resolve()


def _stat_key(path: Path) -> tuple[str, int, int]:
    """The key of the caches below: a manifest edited in place is read again."""
    try:
        st = path.stat()
    except OSError:
        raise ManifestError(f"the manifest {path} does not exist or cannot be read. Check the path "
                            f"(a relative path is taken from the current folder, {Path.cwd()}).") from None
    if not path.is_file():
        raise ManifestError(f"the manifest {path} is not a file. Give the path of the CSV itself.")
    return str(path), st.st_mtime_ns, st.st_size


def manifest_sha256(corpus: str | os.PathLike) -> str:
    """The sha256 of a manifest's bytes (hex). Run names hash this, not the path: a corpus moved
    together with its recordings keeps its runs' names, and an edited manifest gets new ones."""
    return _sha256(*_stat_key(manifest_path(corpus)))


@functools.lru_cache(maxsize=32)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_manifest(corpus: str | os.PathLike) -> pd.DataFrame:
    """A manifest's table, checked without opening any recording.

    Parameters
    ----------
    corpus : path
        The manifest CSV.

    Returns
    -------
    pandas.DataFrame
        One row per recording with ``file, speaker, gender, emotion`` (stripped; gender in lower
        case), ``path`` (the recording's absolute path), ``line`` (its line in the CSV) and the
        manifest's other columns, all as text.

    Raises
    ------
    ManifestError
        For a missing column, an empty field, an unknown gender, two lines naming one
        recording, a speaker with two genders, fewer than 3 speakers of a gender or unequal
        numbers of male and female speakers, or a class with no training example in some fold.
    """
    return _read(*_stat_key(manifest_path(corpus))).copy()


@functools.lru_cache(maxsize=32)
def _read(path: str, mtime_ns: int, size: int) -> pd.DataFrame:
    csv_path = Path(path)
    if csv_path.stem in CORPORA:
        raise ManifestError(f"the manifest {csv_path} has the name of the built-in corpus {csv_path.stem!r}; "
                            f"rename the file (its name names the runs and their folder).")
    where = f"manifest {csv_path}"
    try:
        with open(csv_path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            rows = [(reader.line_num, r) for r in reader if any(v.strip() for v in r)]
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{where} is not UTF-8 text ({exc}). Save it as UTF-8 CSV.") from None
    except csv.Error as exc:
        raise ManifestError(f"{where} is not a readable CSV file ({exc}).") from None
    if header is None:
        raise ManifestError(f"{where} is empty. Its first line is the header {','.join(COLUMNS)}, then one "
                            f"line per recording.")
    header = [h.strip() for h in header]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ManifestError(f"{where} has no column {', '.join(map(repr, missing))} (its header: {header}). "
                            f"The header must name {', '.join(COLUMNS)}.")
    repeated = sorted({h for h in header if header.count(h) > 1})
    clash = [h for h in header if h in COMPUTED]
    if repeated or clash or "" in header:
        bad = repeated + clash + ([""] if "" in header else [])
        raise ManifestError(f"{where}: rename or remove the column(s) {bad} of its header "
                            f"(repeated or empty names, or names that sierlib computes: {', '.join(COMPUTED)}).")
    records, first_line = [], {}
    for line, values in rows:
        if len(values) > len(header):
            raise ManifestError(f"{where}, line {line}: {len(values)} fields but the header has {len(header)}. "
                                f"Quote a field that holds a comma.")
        row = {h: (values[i].strip() if i < len(values) else "") for i, h in enumerate(header)}
        for col in COLUMNS:
            if not row[col]:
                raise ManifestError(f"{where}, line {line}: the {col} field is empty. Fill it in or remove the line.")
        row["gender"] = row["gender"].lower()
        if row["gender"] not in GENDERS:
            raise ManifestError(f"{where}, line {line}: unknown gender {row['gender']!r}. Write male or female "
                                f"(the folds test one speaker of each).")
        # an absolute path replaces the folder in the join
        row["path"] = str((csv_path.parent / Path(row["file"]).expanduser()).resolve())
        if row["path"] in first_line:
            raise ManifestError(f"{where}: lines {first_line[row['path']]} and {line} both name the recording "
                                f"{row['path']}. Remove one of them.")
        first_line[row["path"]] = line
        row["line"] = line
        records.append(row)
    if not records:
        raise ManifestError(f"{where} has a header but no recordings. Add one line per recording.")
    table = pd.DataFrame(records)
    _check_speakers(table, where)
    _check_classes(table, where)
    return table


def _check_speakers(table: pd.DataFrame, where: str) -> None:
    """One gender per speaker; as many female as male speakers, and at least 3 of each."""
    for speaker, rows in table.groupby("speaker", sort=True):
        if rows["gender"].nunique() > 1:
            lines = {g: int(rows.loc[rows.gender == g, "line"].iloc[0]) for g in GENDERS}
            raise ManifestError(f"{where}: speaker {speaker!r} is male on line {lines['male']} and female on "
                                f"line {lines['female']}. Give each speaker one gender (or distinct ids).")
    speakers = table.drop_duplicates("speaker")
    by_gender = {g: sorted(speakers.loc[speakers.gender == g, "speaker"]) for g in GENDERS}
    counts = f"{len(by_gender['male'])} male ({', '.join(by_gender['male'])}) and {len(by_gender['female'])} " \
             f"female ({', '.join(by_gender['female'])})"
    if min(map(len, by_gender.values())) < 3:
        raise ManifestError(f"{where} has {counts} speakers. Leave-two-speakers-out folds test on one speaker of "
                            f"each gender, validate on another and train on the rest: add speakers so that "
                            f"there are at least 3 of each gender.")
    if len(by_gender["male"]) != len(by_gender["female"]):
        raise ManifestError(f"{where} has {counts} speakers. Fold k tests on the k-th male and the k-th female "
                            f"speaker, so both genders need as many speakers: add or leave out speakers.")


def _check_classes(table: pd.DataFrame, where: str) -> None:
    """Every emotion has training examples in every fold (else the network never sees it)."""
    folds = make_folds(table)
    train = folds[folds.role == "train"].groupby("fold")["speaker"].apply(set)
    for emotion, rows in table.groupby("emotion", sort=True):
        speakers = set(rows["speaker"])
        lacking = [int(k) for k, s in train.items() if not speakers & s]
        if lacking:
            raise ManifestError(
                f"{where}: emotion {emotion!r} has no training example in fold{'s' * (len(lacking) > 1)} "
                f"{', '.join(map(str, lacking))}: only speaker{'s' * (len(speakers) > 1)} "
                f"{', '.join(sorted(speakers))} recorded it (lines {', '.join(map(str, rows['line'][:5]))}"
                f"{', ...' if len(rows) > 5 else ''}), and a fold does not train on its test and validation "
                f"speakers. Add {emotion!r} recordings by other speakers, or remove its lines.")


def manifest_info(corpus: str | os.PathLike) -> CorpusInfo:
    """The :class:`~sierlib.registry.CorpusInfo` of a manifest: its stem, its sorted emotion
    labels and one fold per speaker of each gender. Reads and checks the table
    (:func:`read_manifest`), not the recordings."""
    path = manifest_path(corpus)
    table = read_manifest(path)
    return CorpusInfo(path.stem, f"{path.stem} (manifest {path.name})", tuple(sorted(set(table["emotion"]))),
                      int((table.drop_duplicates("speaker")["gender"] == "male").sum()))


def load_manifest(corpus: str | os.PathLike, check: bool = True) -> pd.DataFrame:
    """A manifest corpus's metadata table, as :func:`sierlib.corpora.load_metadata` returns for
    the built-in corpora.

    Parameters
    ----------
    corpus : path
        The manifest CSV.
    check : bool
        Check every recording's header (not empty, not truncated, readable); without it only
        its format is read.

    Returns
    -------
    pandas.DataFrame
        One row per recording, in the manifest's order, with ``utterance`` (the ``file`` field
        as written: unique within the manifest), ``path``, ``corpus`` (the manifest's absolute
        path), ``speaker, gender, emotion``, ``emotion_code`` (the label again: a manifest has no
        codes), ``duration, sample_rate, channels``, ``line`` and the manifest's other columns.

    Raises
    ------
    ManifestError
        For a bad table (:func:`read_manifest`) or a recording that is missing or unreadable,
        naming its line.
    """
    path = manifest_path(corpus)
    table = read_manifest(path)
    rows = []
    for row in table.to_dict("records"):
        audio = Path(row["path"])
        if not audio.is_file():
            raise ManifestError(f"manifest {path}, line {row['line']}: the recording {row['file']!r} does not exist "
                                f"(looked for {audio}; a relative path is read from the manifest's folder). "
                                f"Correct the path or remove the line.")
        try:
            info = check_audio_file(audio, str(path)) if check else sf.info(str(audio))
        except CorpusError as exc:
            raise ManifestError(f"manifest {path}, line {row['line']}: {exc}") from None
        except Exception as exc:  # soundfile's errors, when the header is not checked
            raise ManifestError(f"manifest {path}, line {row['line']}: the recording {row['file']!r} cannot be "
                                f"read as audio ({exc}). Replace it, or remove the line.") from None
        rows.append({**row, "utterance": Path(row["file"]).as_posix(), "corpus": str(path),
                     "emotion_code": row["emotion"], "duration": info.frames / info.samplerate,
                     "sample_rate": info.samplerate, "channels": info.channels})
    first = ["utterance", "path", "corpus", "speaker", "gender", "emotion", "emotion_code",
             "duration", "sample_rate", "channels", "line"]
    df = pd.DataFrame(rows)
    return df[first + [c for c in df.columns if c not in first and c != "file"]].reset_index(drop=True)
