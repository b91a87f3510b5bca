"""The run configuration: one home for defaults, checks, names and the record round trip."""
import json
from pathlib import Path

import nbformat
import pytest

from sierlib.config import DEFAULTS, OPTION_DEFAULTS, RunConfig, RunOptions, from_parameters
from sierlib.records import REFERENCE_RUNS

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name,value", [("gamma", "abc"), ("gamma", -1.0), ("fold", 7), ("fold", "0"),
                                        ("n_cnn_layers", 5), ("epochs", 2.5), ("dropout", 1.5),
                                        ("batch_size", 1), ("lr", "fast"), ("encoder", "cnn"), ("corpus", "timit")])
def test_bad_parameters_name_themselves(name, value):
    with pytest.raises(ValueError, match=name):
        RunConfig(**{name: value})


@pytest.mark.parametrize("name,value", [("device", "tpu"), ("torch_threads", 0), ("reuse_record", "yes")])
def test_bad_options_name_themselves(name, value):
    with pytest.raises(ValueError, match=name):
        RunOptions(**{name: value})


def test_the_2d_cnn_sizes_are_refused_for_other_encoders():
    with pytest.raises(ValueError, match="gru_hidden"):  # they would be silently ignored
        RunConfig(encoder="tdnn_bilstm", gru_hidden=256)


def test_name_depends_on_every_field_and_not_on_options():
    base = RunConfig(fold=1, gamma=2.5)
    names = {base.name}
    for k, v in [("lr", 5e-4), ("epochs", 60), ("seed", 3), ("n_filters", 128), ("dropout", 0.2),
                 ("batch_size", 32), ("weight_decay", 1e-4), ("gamma", None), ("fold", 2)]:
        names.add(base.replace(**{k: v}).name)
    assert len(names) == 10
    assert RunConfig(fold=1, gamma=2.5).name == base.name
    assert RunConfig(gamma=2).name == RunConfig(gamma=2.0).name  # 2 and 2.0 are one setting
    assert RunConfig(gamma=None).name.startswith("emodb-2dcnn_bigru-L1-gammanone-fold0-seed0-")
    tdnn = RunConfig(encoder="tdnn_bilstm")
    assert tdnn.name.startswith("emodb-tdnn_bilstm-gamma3.33-fold0-") and "-L1-" not in tdnn.name
    assert tdnn.encoder_sizes["lstm_hidden"] == 128 and tdnn.feature_params.get("kind", "mfcc") == "mfcc"
    assert RunConfig(encoder="1dcnn_gru").feature_params["kind"] == "fbank_energy_pitch"


def test_earlier_encoder_sizes_enter_the_name(monkeypatch):
    import dataclasses

    from sierlib.registry import ENCODER_INFO

    name = RunConfig(encoder="tdnn_bilstm").name
    info = ENCODER_INFO["tdnn_bilstm"]
    monkeypatch.setitem(ENCODER_INFO, "tdnn_bilstm", dataclasses.replace(info, sizes={**info.sizes, "lstm_hidden": 32}))
    assert RunConfig(encoder="tdnn_bilstm").name != name


def test_the_encoder_registry_matches_the_encoder_classes():
    """The registry below the configuration names each encoder class's title, features and sizes."""
    from sierlib.encoders import encoder_sizes
    from sierlib.model import ENCODERS
    from sierlib.registry import ENCODER_INFO

    assert list(ENCODER_INFO) == list(ENCODERS)
    for name, cls in ENCODERS.items():
        info = ENCODER_INFO[name]
        assert (info.title, info.feature_kind) == (cls.title, cls.feature_kind)
        assert info.sizes == (None if name == "2dcnn_bigru" else encoder_sizes(name))


def test_record_round_trip_and_unknown_fields():
    c = RunConfig(corpus="ravdess", fold=11, gamma=None, n_cnn_layers=3, seed=4)
    assert RunConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    with pytest.raises(ValueError, match="unknown run parameters"):
        RunConfig.from_dict({**c.to_dict(), "stride": 1})


def test_every_committed_record_loads_and_keeps_its_name():
    """Names are how sweeps find finished runs: a default may never change (see config.py)."""
    paths = sorted(REFERENCE_RUNS.glob("*/*.json"))
    assert len(paths) >= 212
    for path in paths:
        rec = json.loads(path.read_text())
        assert rec["format"] == 2
        config = RunConfig.from_record(rec)
        assert config.name == rec["name"] == path.stem
        assert rec["features"] == config.feature_params and rec.get("encoder_sizes") == config.encoder_sizes


def test_04_parameters_cell_mirrors_the_config():
    nb = nbformat.read(REPO / "notebooks" / "04_train.ipynb", 4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    namespace = {}
    exec(cell.source, namespace)
    names = [k for k in namespace if not k.startswith("__")]
    assert names == list(DEFAULTS) + list(OPTION_DEFAULTS)  # same names, same order
    assert {k: namespace[k] for k in DEFAULTS} == DEFAULTS
    assert {k: namespace[k] for k in OPTION_DEFAULTS} == OPTION_DEFAULTS
    config, options = from_parameters(namespace)
    assert config == RunConfig() and options == RunOptions()
