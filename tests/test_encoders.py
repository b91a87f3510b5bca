"""The two earlier encoders of the paper's Table 2 and the log-Mel + energy + pitch features."""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from sierlib.config import RunConfig, RunOptions
from sierlib.corpora import EMODB_EMOTIONS
from sierlib.encoders import CNN1DGRUEncoder, TDNNBiLSTMEncoder, encoder_sizes
from sierlib.experiments import run
from sierlib.feature_stats import speech_mask
from sierlib.features import cache_key, extract_features
from sierlib.model import SIERNet, gradient_reversal, layer_table
from sierlib.records import read_record
from sierlib.registry import check_feature_params
from sierlib.synthetic import _EMOTION_STYLE

N_FEATURES = {"tdnn_bilstm": 20, "1dcnn_gru": 42}
CLASSES = {"tdnn_bilstm": TDNNBiLSTMEncoder, "1dcnn_gru": CNN1DGRUEncoder}
SMALL_KW = {"tdnn_bilstm": dict(tdnn_dim=8, lstm_hidden=8), "1dcnn_gru": dict(n_filters=8, gru_hidden=8)}


@pytest.fixture(scope="module")
def fbank_feats(synthetic_meta, synthetic_cache):
    return extract_features(synthetic_meta, kind="fbank_energy_pitch", cache=synthetic_cache, n_jobs=1,
                            progress=False)


@pytest.mark.parametrize("frames", [379, 184, 12])
@pytest.mark.parametrize("encoder", ["tdnn_bilstm", "1dcnn_gru"])
def test_output_shapes(encoder, frames):
    torch.manual_seed(0)
    n = N_FEATURES[encoder]
    enc = CLASSES[encoder](n)
    assert enc.out_features == 512
    z = enc(torch.randn(3, n, frames))
    assert z.shape == (3, 512) and torch.isfinite(z).all()
    model = SIERNet(n_emotions=7, n_speakers=6, n_mfcc=n, fc_hidden=8, encoder=encoder)
    assert isinstance(model.encoder, CLASSES[encoder])
    emo, spk, z = model(torch.randn(3, n, frames), 0.5)
    assert emo.shape == (3, 7) and spk.shape == (3, 6) and z.shape == (3, 512)
    assert model.eval()(torch.randn(1, n, frames), 1.0)[0].shape == (1, 7)  # a batch of one in eval mode


@pytest.mark.parametrize("encoder", ["tdnn_bilstm", "1dcnn_gru"])
def test_gradient_reversal_reaches_the_encoder(encoder):
    torch.manual_seed(0)
    model = SIERNet(n_emotions=4, n_speakers=3, n_mfcc=N_FEATURES[encoder], fc_hidden=8, dropout=0.0,
                    encoder=encoder, encoder_kwargs=SMALL_KW[encoder]).eval()
    x = torch.randn(5, N_FEATURES[encoder], 40)
    s = torch.randint(0, 3, (5,))
    lam = 0.37
    model.zero_grad()
    F.cross_entropy(model.speaker_head(model.encoder(x)), s).backward()
    plain = [p.grad.clone() for p in model.encoder.parameters()]
    plain_head = [p.grad.clone() for p in model.speaker_head.parameters()]
    model.zero_grad()
    F.cross_entropy(model.speaker_head(gradient_reversal(model.encoder(x), lam)), s).backward()
    rev_head = [p.grad.clone() for p in model.speaker_head.parameters()]
    model.zero_grad()
    _, spk, _ = model(x, lam)  # and through the model's own forward
    F.cross_entropy(spk, s).backward()
    assert len(plain) > 4 and any(g.abs().sum() > 0 for g in plain)
    for p, g in zip(model.encoder.parameters(), plain):
        assert torch.allclose(p.grad, -lam * g, atol=1e-6)
    for g_rev, g in zip(rev_head, plain_head):  # the speaker classifier still minimises J_s
        assert torch.allclose(g_rev, g, atol=1e-6)


def test_model_options_and_layer_table():
    with pytest.raises(ValueError, match="encoder"):
        SIERNet(7, 6, encoder="3dcnn")
    with pytest.raises(ValueError, match="encoder_kwargs"):
        SIERNet(7, 6, encoder_kwargs={"gru_hidden": 8})
    table = layer_table(SIERNet(7, 6, n_mfcc=42, encoder="1dcnn_gru"), n_mfcc=42, n_frames=50)
    pooled = table.index[table.layer == "encoder (stats pooling)"][0]
    assert table.layer[pooled - 1] == "encoder.gru" and table["output shape"][pooled] == (512,)
    table = layer_table(SIERNet(7, 6, encoder="tdnn_bilstm"), n_frames=50)
    assert table.layer[table.index[table.layer == "encoder (stats pooling)"][0] - 1] == "encoder.lstm"


def test_feature_params_of_both_kinds():
    # the default kind's dict is exactly what it always was: cache keys and run names depend on it
    assert check_feature_params() == {"sr": 22050, "n_mfcc": 20, "n_fft": 2048, "hop_length": 512, "top_db": 30.0,
                                      "highpass_hz": 80.0}
    assert check_feature_params(kind="mfcc", n_mfcc=13)["n_mfcc"] == 13
    assert check_feature_params(kind="fbank_energy_pitch") == {
        "kind": "fbank_energy_pitch", "sr": 22050, "n_mels": 40, "n_fft": 2048, "hop_length": 512, "top_db": 30.0,
        "highpass_hz": 80.0}
    for bad, name in [({"kind": "spectrogram"}, "kind"), ({"n_mels": 40}, "n_mels"),
                      ({"kind": "fbank_energy_pitch", "n_mfcc": 20}, "n_mfcc"),
                      ({"kind": "fbank_energy_pitch", "n_mels": 0}, "n_mels"),
                      ({"kind": "fbank_energy_pitch", "n_fft": 256}, "n_fft")]:
        with pytest.raises(ValueError, match=name):
            check_feature_params(**bad)
    assert RunConfig().feature_params == check_feature_params()  # the paper's encoder reads MFCCs
    assert RunConfig(encoder="1dcnn_gru").feature_params == check_feature_params(kind="fbank_energy_pitch")


@pytest.mark.slow  # its fixture extracts pitch from the whole synthetic corpus: about 10 s
def test_fbank_energy_pitch_features(synthetic_root, synthetic_meta, synthetic_feats, fbank_feats, synthetic_cache):
    f = fbank_feats
    assert f.X.shape == (len(synthetic_meta), 42, synthetic_feats.X.shape[2])  # same frames as the MFCCs
    assert f.X.dtype == np.float32 and np.isfinite(f.X).all()
    assert np.array_equal(f.n_samples, synthetic_feats.n_samples)
    assert f.params == check_feature_params(kind="fbank_energy_pitch")
    assert cache_key(synthetic_meta, f.params) != cache_key(synthetic_meta, synthetic_feats.params)
    again = extract_features(synthetic_meta, kind="fbank_energy_pitch", cache=synthetic_cache, n_jobs=1,
                             progress=False)
    assert again.from_cache and np.array_equal(again.X, f.X) and again.params == f.params
    mask = speech_mask(f)
    log_mel, energy, f0 = f.X[:, :40], f.X[:, 40], f.X[:, 41]
    assert (energy[mask] > energy[~mask].max()).mean() > 0.95  # speech is louder than the zero padding
    assert (log_mel.max(axis=(1, 2)) - log_mel.min(axis=(1, 2)) <= 80 + 1e-3).all()  # the 80 dB floor
    assert (f0[~mask] == 0).all()  # padding is unvoiced
    # every synthetic file is voiced speech at a known F0: the speaker's base pitch x the emotion's factor
    speakers = pd.read_csv(synthetic_root / "synthetic" / "speakers.csv", dtype={"speaker": str}).set_index("speaker")
    letter = {v: k for k, v in EMODB_EMOTIONS.items()}
    for i, (spk, emo) in enumerate(zip(synthetic_meta.speaker, synthetic_meta.emotion)):
        track = f0[i][mask[i]]
        voiced = track[track > 0]
        assert len(voiced) >= 0.6 * len(track)
        assert ((voiced >= 60) & (voiced <= 400)).all()
        expected = speakers.loc[spk, "f0"] * _EMOTION_STYLE[letter[emo]][0]
        assert abs(np.median(voiced) / expected - 1) < 0.1, (spk, emo, np.median(voiced), expected)


@pytest.mark.parametrize("encoder", ["tdnn_bilstm", "1dcnn_gru"])
@pytest.mark.slow
def test_two_epoch_run_records_encoder_and_features(encoder, synthetic_meta, synthetic_feats, fbank_feats, tmp_path):
    feats = fbank_feats if encoder == "1dcnn_gru" else synthetic_feats
    config = RunConfig(corpus="synthetic", gamma=2.5, encoder=encoder, fc_hidden=8, epochs=2, batch_size=8)
    rec = run(config, RunOptions(out_dir=str(tmp_path), device="cpu"), meta=synthetic_meta, feats=feats,
              progress=False)
    on_disk = read_record(tmp_path / "synthetic" / f"{rec['name']}.json")
    assert on_disk is not None and on_disk["name"] == rec["name"] == config.name and f"-{encoder}-" in rec["name"]
    assert on_disk["config"]["encoder"] == encoder
    assert on_disk["features"] == feats.params == config.feature_params
    assert len(on_disk["curves"]) == 2 and on_disk["train_speaker_accuracy_final"] is not None
    assert on_disk["encoder_sizes"] == encoder_sizes(encoder)
    other = synthetic_feats if encoder == "1dcnn_gru" else fbank_feats
    with pytest.raises(ValueError, match="feats were computed"):
        run(config, meta=synthetic_meta, feats=other, save=False, progress=False)


@pytest.mark.slow
def test_same_seed_same_run_on_cpu(synthetic_meta, fbank_feats):
    config = RunConfig(corpus="synthetic", fold=1, gamma=2.5, seed=3, encoder="1dcnn_gru", fc_hidden=8, epochs=2,
                       batch_size=8)
    kw = dict(meta=synthetic_meta, feats=fbank_feats, save=False, progress=False)
    a = run(config, RunOptions(device="cpu"), **kw)
    b = run(config, RunOptions(device="cpu"), **kw)
    assert a["curves"] == b["curves"] and a["test_confusion"] == b["test_confusion"]
