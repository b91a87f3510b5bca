"""The front end and the pooling as run parameters (issue 29): the window, the hop and the number
of MFCCs; per-utterance normalisation; attentive statistics pooling."""
import numpy as np
import pytest
import torch

from sierlib.config import RunConfig, RunOptions
from sierlib.dataset import fold_data
from sierlib.experiments import run
from sierlib.feature_stats import standardise
from sierlib.features import extract_features
from sierlib.layers import AttentiveStatsPool, stats_pool
from sierlib.predict import load_network, recording_features
from sierlib.folds import make_folds, split_metadata

TINY = dict(n_filters=8, gru_hidden=8, fc_hidden=8, batch_size=8, epochs=1, lengths="masked")


def test_the_front_end_fields_reach_the_features_and_the_name():
    paper = RunConfig()
    assert paper.feature_params == {"sr": 22050, "n_mfcc": 20, "n_fft": 2048, "hop_length": 512, "top_db": 30.0,
                                    "highpass_hz": 80.0}  # as every committed record has it
    c = RunConfig(n_mfcc=40, n_fft=512, hop_length=220)
    assert (c.feature_params["n_mfcc"], c.feature_params["n_fft"], c.feature_params["hop_length"]) == (40, 512, 220)
    assert len({paper.name, c.name, RunConfig(pooling="attentive").name,
                RunConfig(lengths="masked", utterance_norm="mean").name, RunConfig(lengths="masked").name}) == 5
    with pytest.raises(ValueError, match="hop_length=1024 is longer than the window n_fft=512"):
        RunConfig(n_fft=512, hop_length=1024)
    with pytest.raises(ValueError, match="utterance_norm='mean' .* set lengths='masked'"):
        RunConfig(utterance_norm="mean")
    with pytest.raises(ValueError, match="pooling='attentive'"):
        RunConfig(encoder="tdnn_bilstm", pooling="attentive")
    with pytest.raises(ValueError, match="n_mfcc=40: this run \\(encoder '1dcnn_gru'"):
        RunConfig(encoder="1dcnn_gru", n_mfcc=40)
    with pytest.raises(ValueError, match="utterance_norm must be"):
        RunConfig(lengths="masked", utterance_norm="cmvn")


def test_per_utterance_normalisation_uses_the_speech_frames_only():
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(4, 5, 30)).astype(np.float32)
    lengths = np.array([30, 12, 7, 1])
    mean, std = np.zeros((5, 1)), np.ones((5, 1))
    for mode in ("mean", "mean_var"):
        out = standardise(X, mean, std, lengths, mode)
        for x, n in zip(out, lengths):
            assert np.all(x[:, n:] == 0)  # the padding stays exactly 0
            np.testing.assert_allclose(x[:, :n].mean(axis=1), 0, atol=1e-5)
            if mode == "mean_var" and n > 1:
                np.testing.assert_allclose(x[:, :n].std(axis=1), 1, atol=1e-4)
        # a frame of another utterance, or of the padding, changes nothing
        X2 = X.copy()
        X2[1, :, 12:] = 99.0
        np.testing.assert_array_equal(standardise(X2, mean, std, lengths, mode)[1], out[1])
    np.testing.assert_array_equal(standardise(X, mean, std, lengths, "none"), standardise(X, mean, std, lengths))
    with pytest.raises(ValueError, match="needs the utterances' lengths"):
        standardise(X, mean, std, None, "mean")


def test_attentive_pooling_ignores_padding_and_is_stats_pooling_when_it_attends_evenly():
    torch.manual_seed(0)
    pool = AttentiveStatsPool(6, hidden=4)
    h = torch.randn(3, 10, 6)
    lengths = torch.tensor([10, 4, 7])
    padded = h.clone()
    padded[1, 4:] = 50.0
    np.testing.assert_allclose(pool(padded, lengths).detach(), pool(h, lengths).detach(), atol=1e-6)
    np.testing.assert_allclose(pool(h[1:2, :4]).detach(), pool(h, lengths)[1:2].detach(), atol=1e-6)
    with torch.no_grad():  # constant scores: uniform weights
        pool.score[2].weight.zero_()
    np.testing.assert_allclose(pool(h, lengths).detach(), stats_pool(h, lengths), atol=1e-5)


def test_a_run_with_every_new_option_and_its_saved_network(synthetic_meta, synthetic_root, tmp_path, monkeypatch):
    monkeypatch.setenv("SIER_CACHE", str(tmp_path / "cache"))
    config = RunConfig(corpus="synthetic", fold=1, gamma=None, n_mfcc=13, n_fft=512, hop_length=256,
                       utterance_norm="mean_var", pooling="attentive", **TINY)
    record, model = run(config, RunOptions(out_dir=tmp_path / "runs", save_model=True, data_root=str(synthetic_root)),
                        progress=False, return_model=True)
    assert record["features"]["n_mfcc"] == 13 and record["features"]["hop_length"] == 256
    assert any(k.startswith("encoder.pool.score") for k in model.state_dict())
    # a saved network applies the same per-utterance normalisation to a new recording
    network = load_network(record["model"])
    feats = extract_features(synthetic_meta, progress=False, **config.feature_params)
    folds = make_folds(synthetic_meta)
    data = fold_data(synthetic_meta, feats, 1, folds, masked=True, utterance_norm="mean_var")
    test = split_metadata(synthetic_meta, folds, 1)["test"]
    X, info = recording_features(test["path"].iloc[0], network)
    np.testing.assert_allclose(X[0], data["test"]["X"][0].numpy(), atol=1e-4)


def test_deltas_are_librosas_and_ignore_the_padding():
    librosa = pytest.importorskip("librosa")
    from sierlib.layers import deltas

    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 4, 12)).astype(np.float32)
    d = deltas(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(d, librosa.feature.delta(x, width=5, mode="nearest", axis=-1), atol=1e-5)
    lengths = torch.tensor([12, 7])
    padded = torch.from_numpy(x.copy())
    padded[1, :, 7:] = 0.0
    short = deltas(padded[1:, :, :7]).numpy()
    d2 = deltas(padded, lengths).numpy()
    np.testing.assert_allclose(d2[1, :, :7], short[0], atol=1e-6)  # as if the utterance ended there
    assert np.all(d2[1, :, 7:] == 0) and np.allclose(d2[0], d[0])


def test_the_log_mel_front_end_feeds_three_channels(synthetic_meta, synthetic_root, tmp_path, monkeypatch):
    monkeypatch.setenv("SIER_CACHE", str(tmp_path / "cache"))
    config = RunConfig(corpus="synthetic", fold=0, gamma=2.5, front_end="logmel_deltas", **TINY)
    assert config.feature_params["kind"] == "logmel" and config.feature_params["n_mels"] == 64
    with pytest.raises(ValueError, match="n_mfcc=40: this run"):
        RunConfig(front_end="logmel_deltas", n_mfcc=40)
    record, model = run(config, RunOptions(out_dir=tmp_path / "runs", data_root=str(synthetic_root)),
                        progress=False, return_model=True)
    assert record["features"]["kind"] == "logmel"
    assert model.encoder.cnn[0][0].in_channels == 3
