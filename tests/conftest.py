"""Shared fixtures: the real corpora (skipped when absent) and a small synthetic corpus."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from sierlib.corpora import load_metadata
from sierlib.features import extract_features
from sierlib.synthetic import make_synthetic_corpus


def real_data_root() -> Path | None:
    root = os.environ.get("SIER_DATA")
    if root and (Path(root) / "emodb").is_dir() and (Path(root) / "ravdess").is_dir():
        return Path(root).resolve()
    return None


@pytest.fixture(scope="session")
def real_data() -> Path:
    root = real_data_root()
    if root is None:
        pytest.skip("real corpora not found: set SIER_DATA to the folder holding emodb/ and ravdess/")
    return root


@pytest.fixture(scope="session")
def emodb_meta(real_data):
    return load_metadata("emodb", real_data)


@pytest.fixture(scope="session")
def ravdess_meta(real_data):
    return load_metadata("ravdess", real_data)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """6 speakers (3 male, 3 female) x 7 emotions x 3 utterances, generated in about a second."""
    root = tmp_path_factory.mktemp("data")
    make_synthetic_corpus(root, n_speakers=6, n_per_emotion=3, seed=0)
    return root


@pytest.fixture(scope="session")
def synthetic_meta(synthetic_root):
    return load_metadata("synthetic", synthetic_root)


@pytest.fixture(scope="session")
def synthetic_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def synthetic_feats(synthetic_meta, synthetic_cache):
    return extract_features(synthetic_meta, cache=synthetic_cache, n_jobs=1, progress=False)
