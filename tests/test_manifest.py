"""Corpora of your own (sierlib.manifest): the table's checks, metadata, names and folds.

Fast: the manifests name files of the synthetic corpus; nothing is trained here (see
test_predict.py for a manifest run and predictions).
"""
import csv
import shutil
from pathlib import Path

import pytest

from sierlib.config import RunConfig
from sierlib.corpora import corpus_info, load_metadata
from sierlib.folds import make_folds
from sierlib.manifest import ManifestError, load_manifest, read_manifest
from sierlib.records import record_path

HEADER = ("file", "speaker", "gender", "emotion")


def write_manifest(path: Path, rows, header=HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def rows(synthetic_meta):
    """Every synthetic recording by absolute path: 3 male and 3 female speakers, 7 emotions."""
    return [[p, s, g, e] for p, s, g, e in synthetic_meta[["path", "speaker", "gender", "emotion"]].itertuples(index=False)]


@pytest.fixture
def copied(synthetic_meta, tmp_path):
    """A manifest in a folder whose name holds a space, naming copies of the synthetic files
    under other names by relative paths, with an extra column; 3 emotions, 2 files each."""
    root = tmp_path / "my corpus"
    out = []
    for r in synthetic_meta[synthetic_meta.emotion.isin(["anger", "sadness", "neutral"])].itertuples():
        if sum(1 for o in out if o[1] == f"spk {r.speaker}" and o[3] == r.emotion) == 2:
            continue
        rel = f"voice {r.speaker}/{r.emotion} {len(out)}.wav"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(r.path, root / rel)
        out.append([rel, f"spk {r.speaker}", r.gender.upper(), r.emotion, "s1"])
    return write_manifest(root / "my set.csv", out, HEADER + ("session",))


def test_a_manifest_is_a_corpus(copied, monkeypatch, synthetic_meta):
    monkeypatch.chdir(copied.parent.parent)
    config = RunConfig(corpus="my corpus/my set.csv", fold=2)
    assert config.corpus == str(copied.resolve())  # one absolute path, from any folder
    assert config.name.startswith("my set-2dcnn_bigru-L1-gamma3.33-fold2-seed0-")
    assert record_path(config).parent.name == "my set"
    info = corpus_info(config.corpus)
    assert (info.name, info.emotions, info.n_folds) == ("my set", ("anger", "neutral", "sadness"), 3)
    meta = load_metadata(config.corpus)
    # the built-in loaders' columns (but the corpus's own fields): what features and folds read
    assert set(synthetic_meta.columns) - {"text", "version"} <= set(meta.columns)
    assert len(meta) == 36 and meta.utterance.is_unique and (meta.duration > 0).all()
    assert set(meta.gender) == {"male", "female"} and set(meta.session) == {"s1"}
    assert meta.loc[0, "utterance"].startswith("voice ") and meta.loc[0, "line"] == 2
    folds = make_folds(meta)
    for _, f in folds[folds.role != "train"].groupby(["fold", "role"]):
        assert sorted(f.gender) == ["female", "male"]


def test_names_follow_the_manifests_content_not_its_path(copied, tmp_path):
    name = RunConfig(corpus=copied).name
    moved = tmp_path / "elsewhere" / "my set.csv"
    moved.parent.mkdir()
    shutil.copy(copied, moved)
    assert RunConfig(corpus=moved).name == name  # same content: same runs
    other = tmp_path / "other" / "my set.csv"  # same stem, other content: other names
    lines = copied.read_text().splitlines()
    other.parent.mkdir()
    other.write_text("\n".join(lines[:1] + lines[1:][::-1]) + "\n")
    assert RunConfig(corpus=other).name != name and RunConfig(corpus=other).name.startswith("my set-")


def test_missing_or_misnamed_manifest(tmp_path, rows):
    with pytest.raises(ValueError, match=r"corpus: the manifest 'nowhere/x.csv' does not exist"):
        RunConfig(corpus="nowhere/x.csv")
    with pytest.raises(ValueError, match=r"name of the built-in corpus 'emodb'; rename the file"):
        RunConfig(corpus=write_manifest(tmp_path / "emodb.csv", rows))


def _drop_speaker(rows, gender):
    speaker = next(r[1] for r in rows if r[2] == gender)
    return [r for r in rows if r[1] != speaker]


def _one_speaker_class(rows):
    keep = next(r[1] for r in rows if r[3] == "fear")
    return [r for r in rows if r[3] != "fear" or r[1] == keep]


# each bad manifest, and the words of its error: the line and the fix
BAD_TABLES = {
    "unknown gender": (lambda rows: [rows[0][:2] + ["m"] + rows[0][3:]] + rows[1:],
                       r"line 2: unknown gender 'm'\. Write male or female"),
    "speaker with both genders": (lambda rows: rows[:5] + [rows[5][:2] + ["female" if rows[5][2] == "male" else "male",
                                                                         rows[5][3]]] + rows[6:],
                                  r"speaker '\w+' is male on line \d+ and female on line \d+\. Give each speaker one gender"),
    "fewer than 3 speakers of a gender": (lambda rows: _drop_speaker(rows, "male"),
                                          r"has 2 male .* and 3 female .* at least 3 of each gender"),
    "a class with no training example": (_one_speaker_class,
                                         r"emotion 'fear' has no training example in folds \d, \d: only speaker \w+ "
                                         r"recorded it .* Add 'fear' recordings by other speakers, or remove its lines"),
    "duplicate rows": (lambda rows: rows + [rows[2]], r"lines 4 and 128 both name the recording .*Remove one of them"),
    "an empty field": (lambda rows: [rows[0][:3] + [""]] + rows[1:], r"line 2: the emotion field is empty"),
}


@pytest.mark.parametrize("case", list(BAD_TABLES))
def test_every_bad_table_gets_its_named_error(case, rows, tmp_path):
    change, message = BAD_TABLES[case]
    path = write_manifest(tmp_path / "bad set.csv", change(rows))
    with pytest.raises(ManifestError, match=message) as err:
        read_manifest(path)
    assert str(path) in str(err.value)
    # a sweep's plan (and a run, when it loads its corpus) fails with the same words; the run's
    # configuration itself reads no corpus
    with pytest.raises(ValueError, match=message):
        corpus_info(path)


def test_a_missing_column_is_named(tmp_path, rows):
    path = write_manifest(tmp_path / "x.csv", [r[:3] for r in rows], header=HEADER[:3])
    with pytest.raises(ManifestError, match=r"no column 'emotion'.*The header must name file, speaker, gender, emotion"):
        read_manifest(path)


def test_missing_and_unreadable_recordings_are_named_by_line(tmp_path, rows):
    missing = write_manifest(tmp_path / "a.csv", [["gone/nothing.wav"] + rows[0][1:]] + rows[1:])
    with pytest.raises(ManifestError, match=r"line 2: the recording 'gone/nothing.wav' does not exist .*"
                                            r"Correct the path or remove the line"):
        load_manifest(missing)
    (tmp_path / "noise.wav").write_bytes(b"not audio at all" * 100)
    unreadable = write_manifest(tmp_path / "b.csv", rows[:3] + [["noise.wav"] + rows[3][1:]] + rows[4:])
    with pytest.raises(ManifestError, match=r"line 5: .*noise.wav cannot be read as audio .*remove its line"):
        load_metadata(str(unreadable))


def test_a_manifest_fold_table_goes_with_your_own_runs_not_the_reference_ones(tmp_path, rows):
    """Your own corpus never leaves a file among the committed fold tables: `git status` stays as it was."""
    import subprocess

    from sierlib.folds import write_fold_table
    from sierlib.paths import FOLDS_DIR, LOCAL_FOLDS, REPO_ROOT

    def status():
        return subprocess.run(["git", "status", "--porcelain", "--", "results"], cwd=REPO_ROOT, capture_output=True,
                              text=True).stdout

    path = write_manifest(tmp_path / "my own set.csv", rows)
    before = status()
    written = write_fold_table(make_folds(read_manifest(path)), str(path))
    try:
        assert written == LOCAL_FOLDS / "my own set.csv" and not (FOLDS_DIR / "my own set.csv").exists()
        assert status() == before
    finally:
        written.unlink()
