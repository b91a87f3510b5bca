"""A corpus of your own, end to end: a manifest of copied recordings trains with a saved network,
and `sier predict` gives new recordings exactly the probabilities that the run's evaluation gives.

The recordings are 3 male and 3 female Emo-DB speakers (anger, sadness, neutral; 2 takes each)
when the real corpora are present, else the synthetic corpus's, copied under other names into a
folder whose path holds spaces.
"""
import csv
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

import sierlib.folds
from sierlib.config import RunConfig, RunOptions
from sierlib.corpora import load_metadata
from sierlib.dataset import fold_data, load_corpus_features
from sierlib.experiments import run
from sierlib.folds import split_metadata
from sierlib.cli import main as sier
from sierlib.predict import load_network, probabilities, recording_features
from sierlib.train import predict

TINY = dict(n_filters=8, gru_hidden=8, fc_hidden=8, batch_size=8, epochs=2)
EMOTIONS = ("anger", "neutral", "sadness")


@pytest.fixture(scope="module")
def manifest(request, tmp_path_factory) -> Path:
    emodb = Path(os.environ.get("SIER_DATA") or "/nonexistent") / "emodb"
    if emodb.is_dir():
        meta = load_metadata("emodb", emodb.parent)
        meta = meta[meta.speaker.isin(["03", "10", "11", "08", "09", "13"])]
    else:
        meta = request.getfixturevalue("synthetic_meta")
    root = tmp_path_factory.mktemp("byo") / "my recordings"
    rows = []
    for (speaker, emotion), takes in meta[meta.emotion.isin(EMOTIONS)].groupby(["speaker", "emotion"]):
        for i, r in enumerate(takes.sort_values("utterance").head(2).itertuples()):
            rel = f"speaker {speaker}/{emotion} take {i}{Path(r.path).suffix}"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(r.path, root / rel)
            rows.append([rel, f"s{speaker}", r.gender, emotion])
    with open(root / "emo copies.csv", "w", newline="") as f:
        csv.writer(f).writerows([["file", "speaker", "gender", "emotion"]] + rows)
    return root / "emo copies.csv"


@pytest.fixture(scope="module")
def trained(manifest, tmp_path_factory):
    """One fold, 2 epochs, a tiny network, saved; the fold's data as the run saw it."""
    tmp = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIER_CACHE", str(tmp / "feature cache"))
        mp.setattr(sierlib.folds, "LOCAL_FOLDS", tmp / "fold tables")
        config = RunConfig(corpus=manifest, fold=1, **TINY)
        options = RunOptions(device="cpu", out_dir=str(tmp / "runs out"), save_model=True)
        record, model = run(config, options, progress=False, return_model=True)
        meta, feats = load_corpus_features(config, progress=False)
    return SimpleNamespace(config=config, record=record, model=model, meta=meta,
                           data=fold_data(meta, feats, config.fold), tmp=tmp)


@pytest.mark.slow
def test_a_manifest_corpus_trains_on_balanced_speaker_disjoint_folds(trained, manifest):
    rec = trained.record
    assert rec["name"].startswith("emo copies-2dcnn_bigru-L1-gamma3.33-fold1-seed0-")
    assert rec["emotions"] == list(EMOTIONS) and len(rec["curves"]) == 2
    assert rec["config"]["corpus"] == str(manifest) and rec["manifest"]["path"] == str(manifest)
    assert len(rec["manifest"]["sha256"]) == 64
    assert Path(rec["path"]).parent.name == "emo copies" and Path(rec["model"]) == Path(rec["path"]).with_suffix(".pt")
    folds = pd.read_csv(trained.tmp / "fold tables" / "emo copies.csv", dtype=str)
    assert folds.fold.nunique() == 3
    for _, f in folds.groupby("fold"):
        assert f.speaker.is_unique and len(f) == 6  # every speaker has one role in each fold
        for role in ("test", "val", "train"):
            assert sorted(f.loc[f.role == role, "gender"]) == ["female", "male"]
    assert folds.loc[folds.role == "test", "speaker"].is_unique  # every speaker is tested once
    fold1 = folds[folds.fold == "1"]
    assert {r: sorted(fold1.loc[fold1.role == r, "speaker"]) for r in ("train", "val", "test")} == rec["speakers"]


@pytest.mark.slow
def test_predicting_a_file_gives_the_runs_evaluation(trained):
    network = load_network(trained.record["model"])
    assert network.emotions == list(EMOTIONS)
    test = split_metadata(trained.meta, sierlib.folds.make_folds(trained.meta), 1)["test"]
    logits, _, _ = predict(trained.model, trained.data["test"]["X"])
    expected = torch.softmax(logits, dim=1).numpy()
    for i, path in enumerate(test["path"]):
        X, info = recording_features(path, network)
        np.testing.assert_allclose(X[0], trained.data["test"]["X"][i].numpy(), atol=1e-5)
        np.testing.assert_allclose(probabilities(network, X)[0], expected[i], atol=1e-5)
        assert not info["cut"]


@pytest.mark.slow
def test_predict_a_folder_with_a_broken_file(trained, tmp_path, capsys):
    folder = tmp_path / "to predict"
    (folder / "sub dir").mkdir(parents=True)
    first, second = trained.meta["path"][:2]
    shutil.copy(first, folder / "plain copy.wav")
    y, sr = sf.read(second, dtype="float32")
    stereo = np.stack([y, 0.5 * y], axis=1)
    sf.write(folder / "sub dir" / "stereo 44k.flac", np.repeat(stereo, 2, axis=0), 2 * sr)  # another rate, 2 channels
    sf.write(folder / "sub dir" / "vorbis.ogg", y, sr)
    (folder / "sub dir" / "broken.wav").write_bytes(b"RIFF" + bytes(range(256)) * 4)
    sf.write(folder / "short.wav", 0.1 * np.sin(np.arange(300, dtype=np.float32) / 5), 16000)
    (folder / "notes.txt").write_text("not audio: not searched")
    out = tmp_path / "out dir" / "predictions.csv"
    out.parent.mkdir()
    assert sier(["predict", trained.record["model"], str(folder), "--out", str(out)]) == 1  # not every file predicted
    stdout, stderr = capsys.readouterr()
    table = pd.read_csv(out)
    assert sorted(Path(f).name for f in table.file) == ["plain copy.wav", "stereo 44k.flac", "vorbis.ogg"]
    probs = table[[f"p_{e}" for e in EMOTIONS]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert list(table.emotion) == [EMOTIONS[k] for k in probs.argmax(axis=1)]
    assert len(stdout.strip().splitlines()) == 3 and "\t" in stdout
    assert "broken.wav" in stderr and "short.wav" in stderr and "3 predicted, 2 skipped" in stderr
    assert sier(["predict", trained.record["model"], str(folder / "plain copy.wav")]) == 0


@pytest.mark.slow
def test_embed_writes_what_the_network_computes_in_evaluation_mode(trained, tmp_path, capsys):
    """`sier embed`: one row per recording, the pooled embedding of the run's network in eval mode
    (to 1e-5), the emotion columns on request, and a bad file named and skipped."""
    from sierlib.predict import embed_files, predict_recording

    test = split_metadata(trained.meta, sierlib.folds.make_folds(trained.meta), 1)["test"]
    _, _, emb = predict(trained.model, trained.data["test"]["X"])
    network = load_network(trained.record["model"])
    table, skipped = embed_files(network, list(test["path"]))
    assert skipped == [] and list(table.file) == list(test["path"])
    e_cols = [c for c in table.columns if c.startswith("e") and c[1:].isdigit()]
    assert len(e_cols) == emb.shape[1] == network.model.encoder.out_features
    np.testing.assert_allclose(table[e_cols].to_numpy(), emb.numpy(), atol=1e-5)
    assert predict_recording(network, test["path"].iloc[0])["emotion"] in EMOTIONS
    # the command: a broken file is named and skipped, the exit status says so
    (tmp_path / "broken.wav").write_bytes(b"RIFF" + bytes(range(256)) * 4)
    out = tmp_path / "embeddings.csv"
    assert sier(["embed", trained.record["model"], test["path"].iloc[0], str(tmp_path / "broken.wav"),
                 "--out", str(out), "--probabilities"]) == 1
    written = pd.read_csv(out)
    assert len(written) == 1 and "p_anger" in written and "e0" in written
    np.testing.assert_allclose(written[e_cols].to_numpy()[0], emb.numpy()[0], atol=1e-5)
    assert "broken.wav" in capsys.readouterr().err


def test_load_network_names_a_bad_file(tmp_path):
    with pytest.raises(ValueError, match=r"does not exist; save one with -p save_model True"):
        load_network(tmp_path / "none.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"other.pt is not a network saved by sierlib"):
        load_network(tmp_path / "other.pt")
    assert sier(["predict", str(tmp_path / "none.pt"), str(tmp_path)]) == 2
