"""Cross-corpus runs (RunConfig.test_corpus): the data of a fold, a real run, the SVM peer on the
same split, and the study's table (sierlib.crosscorpus)."""
import numpy as np
import pandas as pd
import pytest

from sierlib import classical
from sierlib.config import RunConfig, RunOptions
from sierlib.crosscorpus import cross_plan, cross_rows, cross_table, write_cross_tables
from sierlib.dataset import fold_data
from sierlib.experiments import run
from sierlib.features import extract_features
from sierlib.folds import fold_speakers, make_folds
from sierlib.records import write_record
from sierlib.stats import main_table_runs, records_frame

SHARED = ["anger", "disgust", "fear", "happiness", "sadness", "neutral"]


def test_a_cross_corpus_config_names_both_corpora_and_refuses_what_it_cannot_do():
    c = RunConfig(corpus="emodb", test_corpus="ravdess", gamma=None, lengths="masked")
    assert c.name.startswith("emodb-to-ravdess-2dcnn_bigru-L1-gammanone-fold0-seed0-")
    for bad in ({"test_corpus": "emodb"}, {"corpus": "synthetic"}, {"normalisation": "per_speaker_offline"},
                {"lengths": "padded"}, {"speaker_holdout": 0.2}):
        with pytest.raises(ValueError, match="test_corpus='(emodb|ravdess)' needs corpus"):
            RunConfig(**{"corpus": "emodb", "test_corpus": "ravdess", "lengths": "masked", **bad})
    with pytest.raises(ValueError, match="test_corpus must be None, 'emodb' or 'ravdess'"):
        RunConfig(test_corpus="iemocap")


def test_the_fold_trains_on_all_but_the_validation_pair_and_tests_the_other_corpus(emodb_meta, ravdess_meta):
    params = RunConfig(lengths="masked", highpass_hz=None).feature_params
    feats_e, feats_r = (extract_features(m, progress=False, **params) for m in (emodb_meta, ravdess_meta))
    folds = make_folds(emodb_meta)
    data = fold_data(emodb_meta, feats_e, 2, folds, masked=True, test_set=(ravdess_meta, feats_r))
    assert data["emotions"] == SHARED  # Emo-DB's order, without boredom (and RAVDESS's calm, surprise)
    spk = fold_speakers(folds, 2)
    assert set(data["train"]["speakers"]) == set(spk["train"]) | set(spk["test"])
    assert set(data["val"]["speakers"]) == set(spk["val"])
    assert set(data["test"]["speakers"]) == set(ravdess_meta.speaker)
    assert len(data["test"]["y"]) == int(ravdess_meta.emotion.isin(SHARED).sum()) == 1056
    assert {r: data[r]["X"].shape[-1] for r in ("train", "val", "test")} == {r: data["train"]["X"].shape[-1]
                                                                              for r in ("train", "val", "test")}
    # the standardiser is the training utterances' own: their speech frames have mean 0
    X, n = data["train"]["X"].numpy(), data["train"]["lengths"].numpy()
    frames = np.concatenate([x[:, :k] for x, k in zip(X, n)], axis=1)
    assert np.abs(frames.mean(axis=1)).max() < 1e-3
    assert len(data["train"]["s"]) == len(X) and int(data["train"]["s"].max()) == 7  # 8 training speakers


def test_a_cross_corpus_run_records_the_other_corpus_as_its_test_set(real_data, tmp_path):
    config = RunConfig(corpus="emodb", test_corpus="ravdess", gamma=3.33, lengths="masked", highpass_hz=None,
                       n_filters=8, gru_hidden=8, fc_hidden=8, epochs=1, fold=1)
    rec = run(config, RunOptions(out_dir=tmp_path, torch_threads=1), progress=False)
    assert rec["emotions"] == SHARED and rec["n_utterances"]["test"] == 1056 and len(rec["speakers"]["test"]) == 24
    assert (tmp_path / "emodb" / f"{config.name}.json").is_file()
    assert main_table_runs(records_frame([rec])).empty  # never in the main tables


def test_the_svm_peer_runs_on_the_same_split(real_data, tmp_path, monkeypatch):
    def functionals(meta, feature_set, **kwargs):  # stands in for openSMILE: the split is what is tested
        rng = np.random.default_rng(len(meta))
        return pd.DataFrame(rng.normal(size=(len(meta), 5)), index=meta["utterance"].tolist())
    monkeypatch.setattr(classical, "opensmile_functionals", functionals)
    rec = classical.run_classical("ravdess", 3, "ComParE_2016", test_corpus="emodb", out_dir=tmp_path)
    assert rec["name"] == "ravdess-to-emodb-ComParE_2016-fold3" and rec["emotions"] == SHARED
    assert len(rec["speakers"]["train"]) == 22 and len(rec["speakers"]["test"]) == 10
    assert rec["n_utterances"]["test"] == 535 - 81  # Emo-DB without boredom
    assert (tmp_path / "ravdess" / "ravdess-to-emodb-ComParE_2016-fold3.json").is_file()
    with pytest.raises(ValueError, match="test_corpus='ravdess'"):
        classical.run_classical("ravdess", 3, "ComParE_2016", test_corpus="ravdess", out_dir=tmp_path)


def _record(gamma, fold, seed, acc):
    config = RunConfig(corpus="ravdess", test_corpus="emodb", gamma=gamma, fold=fold, seed=seed, lengths="masked")
    # the test set: 3 utterances of the first emotion, 1 of the second
    m = {"test_accuracy": acc, "test_uar": acc, "val_accuracy": 0.5, "test_confusion": [[2, 1], [0, 1]]}
    return {"status": "finished", "name": config.name, "config": config.to_dict(), **m, "selections": {"swa": m}}


def test_the_table_pairs_al_with_without_and_both_with_the_svm(tmp_path):
    plan = cross_plan({"lengths": "masked"}, "ravdess", 2.5, seeds=(0, 1), folds=(0, 1))
    assert len(plan) == 8 and {c.test_corpus for c in plan} == {"emodb"} and {c.gamma for c in plan} == {None, 2.5}
    for fold in range(4):
        for seed in (0, 1):
            write_record(_record(None, fold, seed, 0.40), tmp_path / "runs")
            write_record(_record(2.5, fold, seed, 0.45 + 0.01 * seed), tmp_path / "runs")
        svm = {"status": "finished", "name": f"ravdess-to-emodb-ComParE_2016-fold{fold}", "test_accuracy": 0.5,
               "test_uar": 0.5, "val_accuracy": 0.6,
               "params": {"corpus": "ravdess", "test_corpus": "emodb", "fold": fold, "feature_set": "ComParE_2016"}}
        (tmp_path / "classical" / "ravdess").mkdir(parents=True, exist_ok=True)
        pd.Series(svm).to_json(tmp_path / "classical" / "ravdess" / f"{svm['name']}.json")
    rows = cross_rows(tmp_path)
    assert len(rows) == 20
    table = cross_table(rows).set_index("model")
    al = table.loc["AL γ 2.5"]
    assert al.runs == 8 and al.vs_without_AL_diff == pytest.approx(5.5) and al.vs_without_AL_p == pytest.approx(0.125)
    assert al.vs_SVM_diff == pytest.approx(-4.5) and table.loc["without AL"].vs_SVM_diff == pytest.approx(-10)
    assert pd.isna(table.loc["ComParE_2016 + SVM"].get("vs_SVM_diff", np.nan))
    written = write_cross_tables(tmp_path, tmp_path)
    assert "| RAVDESS | Emo-DB | AL γ 2.5 | 8 | 4 | 2 |" in written[1].read_text()
    # an accuracy is read against always answering the largest class, not only against 1/6
    assert "always answering the test corpus's largest class scores RAVDESS → Emo-DB 75.0 %" in written[1].read_text()
