import json

import numpy as np
import pytest

import sierlib.records as records
from sierlib.config import RunConfig, RunOptions
from sierlib.experiments import run as run_config
from sierlib.records import git_commit, read_record

SMALL = dict(n_filters=8, gru_hidden=8, fc_hidden=8, epochs=3, batch_size=8)


def run(meta, feats, tmp_path, save=True, device="auto", **kw):
    config = RunConfig(corpus="synthetic", **{"gamma": 2.5, **SMALL, **kw})
    return run_config(config, RunOptions(out_dir=str(tmp_path), device=device), meta=meta, feats=feats,
                      progress=False, save=save)


@pytest.mark.slow
def test_a_run_writes_a_complete_record(synthetic_meta, synthetic_feats, tmp_path):
    rec = run(synthetic_meta, synthetic_feats, tmp_path)
    path = tmp_path / "synthetic" / f"{rec['name']}.json"
    on_disk = read_record(path)
    assert on_disk is not None and on_disk["test_accuracy"] == rec["test_accuracy"]
    for key in ["config", "features", "test_accuracy", "test_uar", "test_macro_f1", "test_confusion", "val_accuracy",
                "best_epoch", "train_speaker_accuracy_final", "curves", "wall_time_s", "device", "versions",
                "git_commit", "speakers"]:
        assert key in on_disk, key
    assert on_disk["synthetic"] is True
    assert np.array(on_disk["test_confusion"]).sum() == on_disk["n_utterances"]["test"]
    assert len(on_disk["curves"]) == 3 and 0 < on_disk["curves"][-1]["lambda"] < 1
    # the checkpoint is chosen on validation accuracy, never on test
    best = max(on_disk["curves"], key=lambda c: c["val_emotion_accuracy"])
    assert on_disk["val_accuracy"] == best["val_emotion_accuracy"]
    assert set(on_disk["speakers"]["test"]).isdisjoint(on_disk["speakers"]["train"] + on_disk["speakers"]["val"])
    assert [f.name for f in path.parent.iterdir()] == [path.name]  # no temporary files left


@pytest.mark.slow
def test_same_seed_same_metrics_on_cpu(synthetic_meta, synthetic_feats, tmp_path):
    a = run(synthetic_meta, synthetic_feats, tmp_path, seed=3, save=False, device="cpu")
    b = run(synthetic_meta, synthetic_feats, tmp_path, seed=3, save=False, device="cpu")
    assert a["curves"] == b["curves"] and a["test_confusion"] == b["test_confusion"]
    c = run(synthetic_meta, synthetic_feats, tmp_path, seed=4, save=False, device="cpu")
    assert c["curves"] != a["curves"]


@pytest.mark.slow
def test_without_al_and_speaker_accuracy(synthetic_meta, synthetic_feats, tmp_path):
    rec = run(synthetic_meta, synthetic_feats, tmp_path, gamma=None, save=False)
    assert rec["train_speaker_accuracy_final"] is None and "train_speaker_loss" not in rec["curves"][0]
    assert all(c["lambda"] == 0.0 for c in rec["curves"])
    rec = run(synthetic_meta, synthetic_feats, tmp_path, gamma=3.33, save=False)
    assert 0.0 <= rec["train_speaker_accuracy_final"] <= 1.0


@pytest.mark.slow
def test_a_crashed_write_leaves_no_finished_record(synthetic_meta, synthetic_feats, tmp_path, monkeypatch):
    def crash(obj, f, **kw):
        f.write('{"status": "finished", "test_acc')
        raise OSError("disk full")

    monkeypatch.setattr(records.json, "dump", crash)
    with pytest.raises(OSError):
        run(synthetic_meta, synthetic_feats, tmp_path, epochs=1)
    leftovers = list((tmp_path / "synthetic").iterdir())
    assert leftovers == []


def test_read_record_rejects_unfinished_or_broken_files(tmp_path):
    (tmp_path / "a.json").write_text('{"status": "finished", "test_acc')
    (tmp_path / "b.json").write_text(json.dumps({"status": "running"}))
    assert read_record(tmp_path / "a.json") is None
    assert read_record(tmp_path / "b.json") is None
    assert read_record(tmp_path / "missing.json") is None


@pytest.mark.real
@pytest.mark.slow
def test_two_epochs_on_real_emodb(emodb_meta, tmp_path):
    from sierlib.features import extract_features

    feats = extract_features(emodb_meta, progress=False)
    rec = run_config(RunConfig(fold=2, gamma=3.33, epochs=2), RunOptions(out_dir=str(tmp_path)), meta=emodb_meta,
                     feats=feats, progress=False)
    assert rec["speakers"]["test"] == ["11", "13"]
    assert rec["n_utterances"]["train"] + rec["n_utterances"]["val"] + rec["n_utterances"]["test"] == 535
    assert rec["test_accuracy"] > 1 / 7  # better than chance after two epochs


def test_git_commit_is_dirty_only_for_run_code(tmp_path):
    import subprocess

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "sierlib").mkdir()
    (tmp_path / "sierlib" / "model.py").write_text("x = 1\n")
    (tmp_path / "README.md").write_text("readme\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    clean = git_commit(tmp_path)
    assert clean and len(clean) == 40
    (tmp_path / "README.md").write_text("edited\n")  # docs and results do not change what a run executes
    assert git_commit(tmp_path) == clean
    (tmp_path / "sierlib" / "model.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == clean + "-dirty"
