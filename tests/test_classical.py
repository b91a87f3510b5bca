"""The openSMILE + SVM baseline on the synthetic corpus: features, cache, folds, records."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("opensmile")

from sierlib import classical  # noqa: E402
from sierlib.cli import main as sier  # noqa: E402
from sierlib.folds import fold_speakers, make_folds, split_metadata  # noqa: E402
from sierlib.records import read_record  # noqa: E402


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("classical-cache")


@pytest.fixture(scope="module")
def egemaps(synthetic_meta, cache):
    return classical.opensmile_functionals(synthetic_meta, "eGeMAPSv02", cache=cache, n_jobs=1,
                                           progress=False)


def test_functionals_shape_and_alignment(synthetic_meta, egemaps):
    assert egemaps.shape == (len(synthetic_meta), 88)
    assert egemaps.index.tolist() == synthetic_meta["utterance"].tolist()
    assert egemaps.columns.tolist() == classical.feature_names("eGeMAPSv02")
    assert np.isfinite(egemaps.to_numpy()).all()
    assert egemaps.attrs["from_cache"] is False and egemaps.attrs["extraction_s"] > 0
    # different recordings give different vectors
    assert egemaps.drop_duplicates().shape[0] == len(synthetic_meta)


def test_second_call_is_a_cache_hit(synthetic_meta, egemaps, cache, monkeypatch):
    def no_extraction(*args, **kwargs):
        raise AssertionError("extracted again instead of reading the cache")

    monkeypatch.setattr(classical, "_functionals_one", no_extraction)
    shuffled = synthetic_meta.sample(frac=1.0, random_state=0)
    again = classical.opensmile_functionals(shuffled, "eGeMAPSv02", cache=cache, n_jobs=1, progress=False)
    assert again.attrs["from_cache"] is True
    assert again.index.tolist() == shuffled["utterance"].tolist()  # rows follow meta's order
    pd.testing.assert_frame_equal(again.loc[egemaps.index], egemaps)
    assert not list(cache.glob("*.tmp"))


def test_functionals_match_opensmile_directly(synthetic_meta, egemaps):
    import opensmile

    from sierlib.audio import read_audio

    row = synthetic_meta.iloc[5]
    smile = opensmile.Smile(feature_set="eGeMAPSv02", feature_level="Functionals")
    direct = smile.process_signal(read_audio(row.path, sr=16000, corpus="synthetic"), 16000)
    np.testing.assert_allclose(egemaps.loc[row.utterance].to_numpy(), direct.to_numpy()[0], rtol=1e-6)


def test_bad_feature_set_raises_naming_it(synthetic_meta, tmp_path):
    with pytest.raises(ValueError, match="eGeMAPSv99"):
        classical.opensmile_functionals(synthetic_meta, "eGeMAPSv99", cache=tmp_path, n_jobs=1, progress=False)
    with pytest.raises(ValueError, match="not_a_set"):
        classical.run_classical("synthetic", 0, "not_a_set", meta=synthetic_meta, save=False)
    assert not list(tmp_path.iterdir())


def test_fold_run_writes_a_finished_record(synthetic_meta, egemaps, tmp_path):
    rec = classical.run_classical("synthetic", 1, "eGeMAPSv02", meta=synthetic_meta, feats=egemaps,
                                  out_dir=tmp_path)
    path = tmp_path / "synthetic" / "synthetic-eGeMAPSv02-fold1.json"
    assert rec["path"] == str(path)
    on_disk = read_record(path)
    assert on_disk is not None and on_disk["status"] == "finished"
    p = on_disk["params"]
    assert (p["corpus"], p["fold"], p["feature_set"], p["kernel"]) == ("synthetic", 1, "eGeMAPSv02", "linear")
    assert p["C"] in p["C_grid"] and p["C_grid"] == sorted(classical.C_GRID)
    assert [r["C"] for r in on_disk["val_accuracy_per_C"]] == p["C_grid"]
    best = max(r["val_accuracy"] for r in on_disk["val_accuracy_per_C"])
    assert on_disk["val_accuracy"] == best
    # ties go to the smaller C
    assert p["C"] == min(r["C"] for r in on_disk["val_accuracy_per_C"] if r["val_accuracy"] == best)
    spk = on_disk["speakers"]
    assert spk == fold_speakers(make_folds(synthetic_meta), 1)
    assert set(spk["test"]).isdisjoint(spk["train"]) and set(spk["test"]).isdisjoint(spk["val"])
    assert set(spk["val"]).isdisjoint(spk["train"])
    n = on_disk["n_utterances"]
    assert n["train"] + n["val"] + n["test"] == len(synthetic_meta)
    assert np.array(on_disk["test_confusion"]).sum() == n["test"]
    assert 0 <= on_disk["test_uar"] <= 1 and 0 <= on_disk["test_accuracy"] <= 1
    assert on_disk["test_accuracy"] > 1 / 7  # the synthetic emotions are easy to tell apart
    assert "opensmile" in on_disk["versions"] and on_disk["n_features"] == 88


def test_precomputed_linear_kernel_equals_sklearn_linear(synthetic_meta, egemaps):
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from sierlib.corpora import corpus_info

    rec = classical.run_classical("synthetic", 0, "eGeMAPSv02", meta=synthetic_meta, feats=egemaps,
                                  C_grid=(0.1,), save=False)
    parts = split_metadata(synthetic_meta, make_folds(synthetic_meta), 0)
    idx = {e: i for i, e in enumerate(corpus_info("synthetic").emotions)}
    X = {r: egemaps.loc[m.utterance].to_numpy(np.float64) for r, m in parts.items()}
    y = {r: np.array([idx[e] for e in m.emotion]) for r, m in parts.items()}
    sc = StandardScaler().fit(X["train"])
    ref = SVC(C=0.1, kernel="linear").fit(sc.transform(X["train"]), y["train"])
    assert rec["test_accuracy"] == pytest.approx(np.mean(ref.predict(sc.transform(X["test"])) == y["test"]))


def test_standardiser_sees_training_speakers_only(synthetic_meta, egemaps, monkeypatch):
    from sklearn.preprocessing import StandardScaler

    seen = []
    original_fit = StandardScaler.fit

    def spy(self, X, *args, **kwargs):
        seen.append(np.array(X, copy=True))
        return original_fit(self, X, *args, **kwargs)

    monkeypatch.setattr(StandardScaler, "fit", spy)
    rec = classical.run_classical("synthetic", 2, "eGeMAPSv02", meta=synthetic_meta, feats=egemaps, save=False)
    assert len(seen) == 1
    train = split_metadata(synthetic_meta, make_folds(synthetic_meta), 2)["train"]
    assert set(train.speaker) == set(rec["speakers"]["train"])
    np.testing.assert_array_equal(seen[0], egemaps.loc[train.utterance].to_numpy(np.float64))


def test_crash_while_writing_leaves_no_finished_record(synthetic_meta, egemaps, tmp_path, monkeypatch):
    import sierlib.records

    real_dump = json.dump

    def crashing_dump(obj, f, **kwargs):
        f.write(json.dumps(obj, **kwargs)[:200])  # half a record reaches the disk, then the crash
        raise KeyboardInterrupt

    monkeypatch.setattr(sierlib.records.json, "dump", crashing_dump)
    with pytest.raises(KeyboardInterrupt):
        classical.run_classical("synthetic", 0, "eGeMAPSv02", meta=synthetic_meta, feats=egemaps,
                                out_dir=tmp_path)
    monkeypatch.setattr(sierlib.records.json, "dump", real_dump)
    folder = tmp_path / "synthetic"
    assert read_record(folder / "synthetic-eGeMAPSv02-fold0.json") is None
    leftovers = list(folder.iterdir()) if folder.exists() else []
    assert leftovers == []  # not even the temporary file
    assert classical.load_classical_records(tmp_path).empty


def test_run_all_skips_finished_and_table(synthetic_meta, egemaps, cache, tmp_path, monkeypatch):
    runs = classical.run_classical_all("synthetic", ["eGeMAPSv02"], meta=synthetic_meta, cache=cache,
                                       out_dir=tmp_path, n_jobs=1, progress=False)
    assert runs["fold"].tolist() == [0, 1, 2] and (runs["feature_set"] == "eGeMAPSv02").all()

    def no_run(*args, **kwargs):
        raise AssertionError("a finished fold was run again")

    monkeypatch.setattr(classical, "run_classical", no_run)
    again = classical.run_classical_all("synthetic", ["eGeMAPSv02"], meta=synthetic_meta, cache=cache,
                                        out_dir=tmp_path, n_jobs=1, progress=False)
    pd.testing.assert_frame_equal(again, runs)

    table = classical.classical_table(tmp_path)
    assert len(table) == 1
    row = table.iloc[0]
    assert (row.corpus, row.feature_set, row.folds) == ("synthetic", "eGeMAPSv02", 3)
    assert row.acc_mean == pytest.approx(100 * runs.test_accuracy.mean())
    assert row.acc_std == pytest.approx(100 * runs.test_accuracy.std(ddof=1))
    assert row.uar_mean == pytest.approx(100 * runs.test_uar.mean())
    assert row.accuracy == f"{row.acc_mean:.1f} ± {row.acc_std:.1f}"


def test_cli_table_only(tmp_path, capsys):
    sier(["classical", "--table-only", "--out-dir", str(tmp_path)])
    assert "mean ± std over folds" in capsys.readouterr().out


@pytest.mark.slow
def test_command_line_runs_a_fold_with_parallel_extraction(tmp_path):
    """``sier classical`` with joblib workers: they unpickle the extraction function from sierlib.classical."""
    import subprocess
    import sys

    from sierlib.corpora import load_metadata
    from sierlib.paths import REPO_ROOT
    from sierlib.synthetic import make_synthetic_corpus

    make_synthetic_corpus(tmp_path / "data", n_speakers=6, n_per_emotion=1, seed=1)
    out = subprocess.run(
        [sys.executable, "-m", "sierlib.cli", "classical", "--corpus", "synthetic", "--feature-sets", "eGeMAPSv02",
         "--folds", "0", "--n-jobs", "2", "--data-root", str(tmp_path / "data"), "--cache", str(tmp_path / "cache"),
         "--out-dir", str(tmp_path / "out")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert read_record(tmp_path / "out" / "synthetic" / "synthetic-eGeMAPSv02-fold0.json") is not None
    assert "synthetic" in out.stdout and "eGeMAPSv02" in out.stdout
    # what the workers extracted equals what this process extracts for the same files
    meta = load_metadata("synthetic", tmp_path / "data")
    [cached] = (tmp_path / "cache").glob("synthetic-opensmile-eGeMAPSv02-*.npz")
    with np.load(cached) as z:
        X = pd.DataFrame(z["X"], index=z["utterances"])
    for row in meta.iloc[[0, 20, 41]].itertuples():
        here = classical._functionals_one(row.path, "synthetic", "eGeMAPSv02")
        np.testing.assert_array_equal(X.loc[row.utterance].to_numpy(), here)
