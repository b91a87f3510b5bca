import numpy as np

import pytest

from sierlib.config import RunConfig, RunOptions
from sierlib.experiments import run
from sierlib.probe import probe_run, speaker_probe

TINY = dict(n_filters=8, gru_hidden=8, fc_hidden=8, epochs=2, batch_size=8)


def test_probe_finds_speaker_information_only_where_it_is():
    rng = np.random.default_rng(0)
    speakers = np.repeat(["a", "b", "c", "d"], 40)
    noise = rng.normal(size=(160, 16))
    assert speaker_probe(noise, speakers) < 0.45  # chance is 0.25
    offsets = {s: rng.normal(scale=3, size=16) for s in "abcd"}
    informative = noise + np.stack([offsets[s] for s in speakers])
    assert speaker_probe(informative, speakers) > 0.9


@pytest.mark.slow
def test_probe_run_loads_the_checkpoint_of_a_run(synthetic_meta, synthetic_feats, tmp_path):
    config = RunConfig(corpus="synthetic", fold=0, gamma=2.5, **TINY)
    rec = run(config, RunOptions(device="cpu"), meta=synthetic_meta, feats=synthetic_feats, save=False,
              progress=False, checkpoint_dir=tmp_path)
    assert (tmp_path / "synthetic" / f"{rec['name']}.pt").is_file()
    row = probe_run(config, meta=synthetic_meta, feats=synthetic_feats, checkpoint_dir=tmp_path)
    assert row["network"] == "checkpoint" and row["run"] == rec["name"]
    assert row["test_accuracy"] == rec["test_accuracy"]  # the checkpoint is the selected network
    assert 0 <= row["speaker_probe_accuracy"] <= 1 and row["chance"] == 0.5
    retrained = probe_run(config, meta=synthetic_meta, feats=synthetic_feats, checkpoint_dir=tmp_path / "none")
    assert retrained["network"] == "retrained" and retrained["test_accuracy"] == rec["test_accuracy"]


@pytest.mark.parametrize("encoder", ["tdnn_bilstm", "1dcnn_gru"])
@pytest.mark.slow
def test_probe_runs_on_an_earlier_encoder_without_checkpoint(encoder, synthetic_meta, tmp_path, synthetic_cache):
    """The retraining path builds the encoder from the config (it used to crash on encoder_sizes)."""
    from sierlib.features import extract_features

    config = RunConfig(corpus="synthetic", fold=1, gamma=2.5, encoder=encoder, fc_hidden=8, epochs=1, batch_size=8)
    feats = extract_features(synthetic_meta, cache=synthetic_cache, n_jobs=1, progress=False, **config.feature_params)
    row = probe_run(config, meta=synthetic_meta, feats=feats, checkpoint_dir=tmp_path)
    assert row["network"] == "retrained" and row["run"] == config.name
    assert 0 <= row["speaker_probe_accuracy"] <= 1 and row["speaker_head_accuracy"] is not None
