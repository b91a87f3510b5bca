"""The recipe's knobs (length-aware training, stride, selection, schedule, augmentation) as run
parameters: each trains, is recorded, is reproducible, and is validated by name."""
import numpy as np
import pytest
import torch

from sierlib.config import RunConfig, RunOptions
from sierlib.dataset import fold_data
from sierlib.experiments import run

TINY = dict(corpus="synthetic", gamma=2.5, n_filters=8, gru_hidden=8, fc_hidden=8, epochs=3, batch_size=8)


def train(meta, feats, **kw):
    return run(RunConfig(**{**TINY, **kw}), RunOptions(device="cpu"), meta=meta, feats=feats, save=False,
               progress=False)


@pytest.mark.parametrize("knobs", [dict(lengths="masked"), dict(conv_stride=1, conv_dropout=0.1),
                                   dict(lr_schedule="cosine", warmup_epochs=1),
                                   dict(time_masks=2, freq_masks=1, mixup_alpha=0.4, lengths="masked"),
                                   dict(selection="swa", swa_epochs=2), dict(selection="ema", n_cnn_layers=3,
                                                                              lengths="masked", conv_stride=1),
                                   dict(lengths="masked", speed_perturbation=0.1),
                                   dict(lengths="masked", normalisation="per_speaker_offline")])
@pytest.mark.slow
def test_each_knob_trains_records_all_selections_and_reproduces(knobs, synthetic_meta, synthetic_feats):
    a = train(synthetic_meta, synthetic_feats, **knobs)
    assert set(a["selections"]) == {"best_val", "swa", "ema"}
    chosen = a["selections"][knobs.get("selection", "best_val")]
    assert a["test_accuracy"] == chosen["test_accuracy"] and a["val_accuracy"] == chosen["val_accuracy"]
    assert all(0 <= s["test_accuracy"] <= 1 for s in a["selections"].values())
    assert a["config"] == RunConfig(**{**TINY, **knobs}).to_dict()
    b = train(synthetic_meta, synthetic_feats, **knobs)
    assert a["curves"] == b["curves"] and a["selections"] == b["selections"]


@pytest.mark.slow
def test_an_earlier_encoder_takes_the_recipe_but_its_2d_cnn_fields(synthetic_meta, synthetic_feats):
    from sierlib.recipe import recipe_config

    recipe = {"lengths": "masked", "selection": "swa", "conv_dropout": 0.1, "speed_perturbation": 0.1}
    config = recipe_config(recipe, corpus="synthetic", encoder="tdnn_bilstm", gamma=2.5, epochs=3, batch_size=8,
                           swa_epochs=2)
    assert config.conv_dropout is None  # the TDNN has no 2D CNN to drop out of
    assert (config.lengths, config.speed_factors) == ("masked", (0.9, 1.1))
    assert recipe_config(recipe, encoder="2dcnn_bigru").conv_dropout == 0.1
    rec = run(config, RunOptions(device="cpu"), meta=synthetic_meta, feats=synthetic_feats, save=False, progress=False)
    assert rec["config"] == config.to_dict() and set(rec["selections"]) == {"best_val", "swa", "ema"}


@pytest.mark.slow
def test_the_defaults_train_exactly_as_before(synthetic_meta, synthetic_feats):
    """The paper-literal path is untouched by the knobs: best_val equals the epoch the curves pick."""
    rec = train(synthetic_meta, synthetic_feats)
    best = max(rec["curves"], key=lambda c: (c["val_emotion_accuracy"], -c["val_emotion_loss"]))
    assert rec["best_epoch"] == best["epoch"] and rec["val_accuracy"] == best["val_emotion_accuracy"]


def test_masked_fold_data_keeps_padding_at_zero_and_fits_on_speech_frames(synthetic_meta, synthetic_feats):
    data = fold_data(synthetic_meta, synthetic_feats, 0, masked=True)
    for role in ("train", "val", "test"):
        X, n = data[role]["X"], data[role]["lengths"]
        pad = torch.arange(X.shape[-1])[None, :] >= n[:, None]
        assert (X.permute(0, 2, 1)[pad] == 0).all()
    X, n = data["train"]["X"], data["train"]["lengths"]
    speech = torch.cat([X[i, :, :n[i]] for i in range(len(X))], dim=1)
    np.testing.assert_allclose(speech.mean(1).numpy(), 0, atol=1e-4)  # standardised over speech frames


@pytest.mark.parametrize("name,value", [("lengths", "ragged"), ("conv_stride", 3), ("selection", "last"),
                                        ("lr_schedule", "step"), ("mixup_alpha", -1), ("conv_dropout", 1.0),
                                        ("top_db", 0), ("highpass_hz", 5000), ("speed_perturbation", 0.5),
                                        ("normalisation", "per_utterance")])
def test_bad_knobs_name_themselves(name, value):
    with pytest.raises(ValueError, match=name):
        RunConfig(**{name: value})


def test_knobs_of_the_2d_cnn_are_refused_for_other_encoders():
    with pytest.raises(ValueError, match="conv_stride"):
        RunConfig(encoder="tdnn_bilstm", conv_stride=1)


@pytest.mark.parametrize("knob,value", [("warmup_epochs", 2), ("time_mask_frames", 20), ("freq_mask_rows", 2)])
def test_a_knob_without_effect_is_refused(knob, value):
    """One network, one name: a setting that changes nothing must not make a second name."""
    with pytest.raises(ValueError, match=knob):
        RunConfig(**{knob: value})
    active = {"warmup_epochs": dict(lr_schedule="cosine"), "time_mask_frames": dict(time_masks=1),
              "freq_mask_rows": dict(freq_masks=1)}[knob]
    assert RunConfig(**active, **{knob: value}).name != RunConfig(**active).name


def test_speed_perturbation_needs_length_aware_runs():
    with pytest.raises(ValueError, match="speed_perturbation=0.1 .*lengths='masked'"):
        RunConfig(speed_perturbation=0.1)
    assert RunConfig(speed_perturbation=0.1, lengths="masked").speed_factors == (0.9, 1.1)
    assert RunConfig().speed_factors == ()


def test_change_speed_shortens_and_raises_the_pitch():
    from sierlib.features import change_speed

    sr = 16000
    t = np.arange(sr) / sr
    y = np.sin(2 * np.pi * 200 * t).astype(np.float32)
    fast = change_speed(y, sr, 1.25)
    assert abs(len(fast) - sr / 1.25) <= 2
    spectrum = np.abs(np.fft.rfft(fast))
    assert abs(np.argmax(spectrum) * sr / len(fast) - 250) < 3  # 200 Hz played 1.25x faster
    assert change_speed(y, sr, 1.0) is y


def test_speed_enters_the_feature_params_only_when_perturbed():
    from sierlib.registry import check_feature_params

    assert "speed" not in check_feature_params()  # unperturbed cache keys and records stay as they were
    assert check_feature_params(speed=0.9)["speed"] == 0.9
    with pytest.raises(ValueError, match="speed"):
        check_feature_params(speed=3)


def test_fold_data_stacks_the_speed_perturbed_training_copies(synthetic_meta, synthetic_feats):
    from dataclasses import replace

    # a stand-in perturbed copy: the same maps, 5 frames shorter and wider padding
    n = synthetic_feats.n_frames
    X = np.pad(synthetic_feats.X, ((0, 0), (0, 0), (0, 7)))
    shorter = replace(synthetic_feats, X=X, n_samples=synthetic_feats.n_samples - 5 * synthetic_feats.params["hop_length"])
    data = fold_data(synthetic_meta, synthetic_feats, 0, masked=True, speed_feats={1.1: shorter})
    tr = data["train"]
    assert tr["speed_X"].shape == (2, len(tr["X"]), X.shape[1], X.shape[2])
    torch.testing.assert_close(tr["speed_X"][0, :, :, :tr["X"].shape[-1]], tr["X"])
    assert (tr["speed_lengths"][0] == tr["lengths"]).all() and (tr["speed_lengths"][1] == tr["lengths"] - 5).all()
    with pytest.raises(ValueError, match="masked"):
        fold_data(synthetic_meta, synthetic_feats, 0, speed_feats={1.1: shorter})
    assert n.shape == (len(synthetic_meta),)


def test_offline_normalisation_standardises_each_speaker_with_its_own_frames(synthetic_meta, synthetic_feats):
    data = fold_data(synthetic_meta, synthetic_feats, 0, masked=True, per_speaker=True)
    assert data["mean"] is None
    for role in ("train", "test"):
        X, n, spk = data[role]["X"], data[role]["lengths"], np.array(data[role]["speakers"])
        for s in set(spk):
            rows = np.flatnonzero(spk == s)
            speech = torch.cat([X[i, :, :n[i]] for i in rows], dim=1)
            np.testing.assert_allclose(speech.mean(1).numpy(), 0, atol=1e-4)
            np.testing.assert_allclose(speech.std(1, unbiased=False).numpy(), 1, atol=1e-3)


def test_an_offline_normalised_network_cannot_be_saved(synthetic_meta, synthetic_feats):
    with pytest.raises(ValueError, match="save_model.*per_speaker_offline"):
        run(RunConfig(**TINY, normalisation="per_speaker_offline"), RunOptions(save_model=True), meta=synthetic_meta,
            feats=synthetic_feats, save=False, progress=False)
