import numpy as np

from sierlib.probe import probe_run, speaker_probe
from sierlib.train import train_run

TINY = dict(n_filters=8, gru_hidden=8, fc_hidden=8, epochs=2, batch_size=8)


def test_probe_finds_speaker_information_only_where_it_is():
    rng = np.random.default_rng(0)
    speakers = np.repeat(["a", "b", "c", "d"], 40)
    noise = rng.normal(size=(160, 16))
    assert speaker_probe(noise, speakers) < 0.45  # chance is 0.25
    offsets = {s: rng.normal(scale=3, size=16) for s in "abcd"}
    informative = noise + np.stack([offsets[s] for s in speakers])
    assert speaker_probe(informative, speakers) > 0.9


def test_probe_run_loads_the_checkpoint_of_a_run(synthetic_meta, synthetic_feats, tmp_path):
    rec = train_run("synthetic", 0, 2.5, meta=synthetic_meta, feats=synthetic_feats, save=False, progress=False,
                    checkpoint_dir=tmp_path, **TINY)
    assert (tmp_path / "synthetic" / f"{rec['name']}.pt").is_file()
    row = probe_run("synthetic", 0, 2.5, meta=synthetic_meta, feats=synthetic_feats, checkpoint_dir=tmp_path, **TINY)
    assert row["network"] == "checkpoint" and row["run"] == rec["name"]
    assert row["test_accuracy"] == rec["test_accuracy"]  # the checkpoint is the selected network
    assert 0 <= row["speaker_probe_accuracy"] <= 1 and row["chance"] == 0.5
    retrained = probe_run("synthetic", 0, 2.5, meta=synthetic_meta, feats=synthetic_feats,
                          checkpoint_dir=tmp_path / "none", **TINY)
    assert retrained["network"] == "retrained" and retrained["test_accuracy"] == rec["test_accuracy"]
