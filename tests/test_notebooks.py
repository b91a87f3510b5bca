"""Real papermill executions of notebooks/04_train.ipynb (nbval covers the committed outputs)."""
import json
from pathlib import Path

import nbformat
import papermill as pm
import pytest

REPO = Path(__file__).resolve().parent.parent
NB04 = REPO / "notebooks" / "04_train.ipynb"
TINY = dict(n_filters=8, gru_hidden=8, fc_hidden=8, batch_size=8)

pytestmark = pytest.mark.slow  # every test here starts a kernel and executes the notebook


def execute(tmp_path, **parameters):
    out = tmp_path / "out.ipynb"
    # a generous kernel start-up timeout: CI machines may be busy
    pm.execute_notebook(str(NB04), str(out), parameters=parameters, cwd=str(REPO), progress_bar=False,
                        kernel_name="python3", start_timeout=300)
    return nbformat.read(out, 4)


def outputs_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            parts.append(o.get("text") or o.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_04_trains_on_the_synthetic_corpus(synthetic_root, tmp_path, monkeypatch, synthetic_cache):
    monkeypatch.setenv("SIER_CACHE", str(synthetic_cache))
    nb = execute(tmp_path, corpus="synthetic", fold=1, gamma=2.5, epochs=2, data_root=str(synthetic_root),
                 out_dir=str(tmp_path / "runs"), **TINY)
    records = list((tmp_path / "runs" / "synthetic").glob("*.json"))
    assert len(records) == 1
    rec = json.loads(records[0].read_text())
    assert rec["config"]["fold"] == 1 and rec["config"]["gamma"] == 2.5 and len(rec["curves"]) == 2
    text = outputs_text(nb)
    assert "synthetic corpus" in text and "Trained and wrote" in text
    assert "test accuracy (WA) %" in text
    assert text.count("<Figure") == 2  # learning curves and confusion matrix
    # reading a finished record back is an explicit choice
    again = outputs_text(execute(tmp_path, corpus="synthetic", fold=1, gamma=2.5, epochs=2, reuse_record=True,
                                 data_root=str(synthetic_root), out_dir=str(tmp_path / "runs"), **TINY))
    assert "Showing the finished record" in again


def test_04_trains_an_earlier_encoder(synthetic_root, tmp_path, monkeypatch, synthetic_cache):
    """The path the Table 2 sweeps take: the record stores the encoder's own sizes."""
    monkeypatch.setenv("SIER_CACHE", str(synthetic_cache))
    execute(tmp_path, corpus="synthetic", fold=0, gamma=2.5, epochs=1, encoder="tdnn_bilstm", fc_hidden=8,
            batch_size=8, data_root=str(synthetic_root), out_dir=str(tmp_path / "runs"))
    rec = json.loads(next((tmp_path / "runs" / "synthetic").glob("*.json")).read_text())
    assert rec["config"]["encoder"] == "tdnn_bilstm" and rec["encoder_sizes"]["lstm_hidden"] == 128
    assert rec["name"].startswith("synthetic-tdnn_bilstm-gamma2.5-fold0-seed0-")


@pytest.mark.parametrize("name,value", [("gamma", "abc"), ("fold", 7), ("n_cnn_layers", 9), ("epochs", "ten")])
def test_04_rejects_bad_parameters_at_once(tmp_path, name, value):
    with pytest.raises(pm.PapermillExecutionError) as err:
        execute(tmp_path, **{name: value}, out_dir=str(tmp_path / "runs"))
    # the last line the user sees names the parameter
    assert name in str(err.value).strip().splitlines()[-1] and "bad parameter" in str(err.value)
    assert not (tmp_path / "runs").exists()


@pytest.mark.real
@pytest.mark.slow
def test_04_on_real_emodb_for_two_epochs(real_data, tmp_path):
    nb = execute(tmp_path, corpus="emodb", fold=4, gamma=None, epochs=2, data_root=str(real_data),
                 out_dir=str(tmp_path / "runs"))
    rec = json.loads(next((tmp_path / "runs" / "emodb").glob("*.json")).read_text())
    assert rec["config"]["gamma"] is None and rec["speakers"]["test"] == ["15", "16"]
    assert rec["n_utterances"]["test"] > 0 and "synthetic corpus" not in outputs_text(nb)
