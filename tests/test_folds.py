from pathlib import Path

import pandas as pd
import pytest

from sierlib.corpora import corpus_info
from sierlib.folds import fold_speakers, make_folds, split_metadata

REPO = Path(__file__).resolve().parent.parent


def check_invariants(folds: pd.DataFrame, n_speakers: int, n_folds: int, sizes: dict):
    assert folds.fold.nunique() == n_folds
    for k, f in folds.groupby("fold"):
        assert len(f) == n_speakers and f.speaker.is_unique  # each speaker has one role per fold
        for role, size in sizes.items():
            part = f[f.role == role]
            assert len(part) == size, (k, role)
            assert (part.gender == "male").sum() == (part.gender == "female").sum(), (k, role)
    tests = folds[folds.role == "test"].speaker
    assert tests.is_unique and tests.nunique() == n_speakers  # every speaker tested exactly once
    vals = folds[folds.role == "val"].speaker
    assert vals.is_unique


@pytest.mark.parametrize("corpus", ["emodb", "ravdess"])
def test_n_folds_matches_the_committed_fold_tables(corpus):
    committed = pd.read_csv(REPO / "results" / "folds" / f"{corpus}.csv")
    assert corpus_info(corpus).n_folds == committed.fold.nunique()


@pytest.mark.real
def test_emodb_folds(emodb_meta):
    folds = make_folds(emodb_meta)
    check_invariants(folds, 10, 5, {"train": 6, "val": 2, "test": 2})
    assert folds.equals(make_folds(emodb_meta.sample(frac=1, random_state=1)))  # deterministic


@pytest.mark.real
def test_ravdess_folds(ravdess_meta):
    check_invariants(make_folds(ravdess_meta), 24, 12, {"train": 20, "val": 2, "test": 2})


@pytest.mark.real
@pytest.mark.parametrize("corpus", ["emodb", "ravdess"])
def test_committed_fold_tables_are_what_the_code_makes(corpus, request):
    meta = request.getfixturevalue(f"{corpus}_meta")
    committed = pd.read_csv(REPO / "results" / "folds" / f"{corpus}.csv", dtype={"speaker": str})
    assert list(committed.columns) == ["fold", "speaker", "gender", "role"]
    pd.testing.assert_frame_equal(committed, make_folds(meta), check_dtype=False)


def test_split_keeps_speakers_apart(synthetic_meta):
    folds = make_folds(synthetic_meta)
    check_invariants(folds, 6, 3, {"train": 2, "val": 2, "test": 2})
    parts = split_metadata(synthetic_meta, folds, 1)
    sets = [set(p.speaker) for p in parts.values()]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert sum(len(p) for p in parts.values()) == len(synthetic_meta)


def test_bad_fold_and_unbalanced_speakers(synthetic_meta):
    folds = make_folds(synthetic_meta)
    for bad in (3, -1, "1", 1.0, True):
        with pytest.raises(ValueError, match="fold"):
            fold_speakers(folds, bad)
    with pytest.raises(ValueError, match="male and female"):
        make_folds(synthetic_meta[synthetic_meta.speaker != "21"])
