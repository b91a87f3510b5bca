"""Length-aware path: masked encoders, the bucketed sampler and the masked standardiser.

The padded path (no ``lengths``) must compute exactly what the code computed before the masked
path existed: committed results and checkpoints depend on it. ``Old*`` below are copies of that
code, kept here as the reference.
"""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sierlib.batching import batches, bucket_batches, crop_to_longest, frames_computed
from sierlib.encoders import CNN1DGRUEncoder, TDNNBiLSTMEncoder, encoder_sizes
from sierlib.feature_stats import fit_standardiser, speech_mask, standardise
from sierlib.features import Features
from sierlib.layers import conv_output_length, stats_pool
from sierlib.model import Encoder, ENCODERS, SIERNet, gru_input_sizes
from sierlib.registry import FEATURE_KINDS


# ---- the code before the masked path, verbatim but for names -----------------------------------

def old_stats_pool(h):
    mean = h.mean(dim=1)
    std = torch.sqrt(h.var(dim=1, unbiased=False) + 1e-5)
    return torch.cat([mean, std], dim=1)


def old_classifier_head(in_features, hidden, n_out, dropout):
    layers = []
    for i in range(2):
        layers += [nn.Linear(in_features if i == 0 else hidden, hidden), nn.BatchNorm1d(hidden),
                   nn.Dropout(dropout), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(hidden, n_out))


class OldConvBlock(nn.Sequential):
    def __init__(self, in_channels, n_filters, kernel_size, dropout):
        super().__init__(
            nn.Conv2d(in_channels, n_filters, kernel_size, stride=2, padding=kernel_size // 2),
            nn.BatchNorm2d(n_filters), nn.Dropout(dropout), nn.ELU(), nn.MaxPool2d(2, stride=2, ceil_mode=True))


class OldEncoder(nn.Module):
    def __init__(self, n_mfcc=20, n_cnn_layers=1, kernel_size=5, n_filters=64, gru_hidden=128, dropout=0.3):
        super().__init__()
        self.cnn = nn.Sequential(*[OldConvBlock(1 if i == 0 else n_filters, n_filters, kernel_size, dropout)
                                   for i in range(n_cnn_layers)])
        with torch.no_grad():
            freq = self.cnn.eval()(torch.zeros(1, 1, n_mfcc, 64)).shape[2]
        self.cnn.train()
        self.gru = nn.GRU(n_filters * freq, gru_hidden, batch_first=True, bidirectional=True)

    def forward(self, x):
        h = self.cnn(x.unsqueeze(1))
        b, k, f, t = h.shape
        h, _ = self.gru(h.permute(0, 3, 1, 2).reshape(b, t, k * f))
        return old_stats_pool(h)


class OldTDNN(nn.Module):
    def __init__(self, n_features, dropout=0.3, *, tdnn_dim=64, contexts=((5, 1), (3, 2), (3, 3), (1, 1)),
                 lstm_hidden=128):
        super().__init__()
        layers, in_ch = [], n_features
        for kernel, dilation in contexts:
            layers += [nn.Conv1d(in_ch, tdnn_dim, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2),
                       nn.ReLU(), nn.BatchNorm1d(tdnn_dim), nn.Dropout(dropout)]
            in_ch = tdnn_dim
        self.tdnn = nn.Sequential(*layers)
        self.lstm = nn.LSTM(in_ch, lstm_hidden, batch_first=True, bidirectional=True)

    def forward(self, x):
        h, _ = self.lstm(self.tdnn(x).transpose(1, 2))
        return old_stats_pool(h)


class OldCNN1DGRU(nn.Module):
    def __init__(self, n_features, dropout=0.3, *, n_conv_layers=2, n_filters=128, kernel_size=5, pool=2,
                 gru_hidden=256):
        super().__init__()
        blocks, in_ch = [], n_features
        for _ in range(n_conv_layers):
            blocks += [nn.Conv1d(in_ch, n_filters, kernel_size, padding=kernel_size // 2),
                       nn.BatchNorm1d(n_filters), nn.ReLU(), nn.Dropout(dropout)]
            if pool > 1:
                blocks.append(nn.MaxPool1d(pool, stride=pool, ceil_mode=True))
            in_ch = n_filters
        self.cnn = nn.Sequential(*blocks)
        self.gru = nn.GRU(in_ch, gru_hidden, batch_first=True)

    def forward(self, x):
        h, _ = self.gru(self.cnn(x).transpose(1, 2))
        return old_stats_pool(h)


class OldSIERNet(nn.Module):
    def __init__(self, n_emotions, n_speakers, n_mfcc=20, n_cnn_layers=1, kernel_size=5, n_filters=64,
                 gru_hidden=128, fc_hidden=64, dropout=0.3, encoder="2dcnn_bigru", encoder_kwargs=None):
        super().__init__()
        if encoder == "2dcnn_bigru":
            self.encoder = OldEncoder(n_mfcc, n_cnn_layers, kernel_size, n_filters, gru_hidden, dropout)
        else:
            self.encoder = {"tdnn_bilstm": OldTDNN, "1dcnn_gru": OldCNN1DGRU}[encoder](n_mfcc, dropout,
                                                                                      **(encoder_kwargs or {}))
        d = 4 * gru_hidden if encoder == "2dcnn_bigru" else (
            4 * encoder_kwargs["lstm_hidden"] if encoder == "tdnn_bilstm" else 2 * encoder_kwargs["gru_hidden"])
        self.emotion_head = old_classifier_head(d, fc_hidden, n_emotions, dropout)
        self.speaker_head = old_classifier_head(d, fc_hidden, n_speakers, dropout)

    def forward(self, x, lambda_=0.0):
        z = self.encoder(x)
        return self.emotion_head(z), self.speaker_head(z), z  # the reversal does not act forwards


# ---- the encoders under test, small ------------------------------------------------------------

SMALL = dict(n_filters=6, gru_hidden=5, fc_hidden=8)
CONFIGS = {f"2d-L{d}-s{s}": (dict(n_cnn_layers=d, conv_stride=s, **SMALL), 20) for s in (2, 1) for d in (1, 2, 3, 4)}
CONFIGS["2d-L2-k2"] = (dict(n_cnn_layers=2, kernel_size=2, **SMALL), 20)
CONFIGS["tdnn"] = (dict(encoder="tdnn_bilstm", encoder_kwargs=dict(tdnn_dim=6, lstm_hidden=5), fc_hidden=8), 20)
CONFIGS["1dcnn"] = (dict(encoder="1dcnn_gru", encoder_kwargs=dict(n_filters=6, gru_hidden=5), fc_hidden=8), 42)
LENGTHS = torch.tensor([53, 9, 30, 1, 41])  # odd and even, one of a single frame
WIDTH = 53


def make_model(name, dropout=0.3, seed=0):
    kwargs, n_features = CONFIGS[name]
    torch.manual_seed(seed)
    return SIERNet(n_emotions=4, n_speakers=3, n_mfcc=n_features, dropout=dropout, **kwargs), n_features


def padded_batch(n_features, extra=0, seed=0):
    """A zero-padded batch of LENGTHS, padded ``extra`` frames further with noise."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(len(LENGTHS), n_features, WIDTH, generator=gen)
    x = x.masked_fill(torch.arange(WIDTH)[None, None, :] >= LENGTHS[:, None, None], 0.0)
    return torch.cat([x, 5 * torch.randn(len(LENGTHS), n_features, extra, generator=gen)], dim=2)


def randomise_running_stats(model):
    """So that eval mode is not the identity on batch norms' running statistics."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(0.3 * torch.randn(m.running_mean.shape, generator=gen))
            m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))


def outputs(model, x, lengths):
    emo, spk, z = model(x, 0.5, lengths)
    return torch.cat([emo, spk, z], dim=1)


# ---- the padded path is what it was ------------------------------------------------------------

OLD_KW = {"2d-L1": dict(n_cnn_layers=1, **SMALL), "2d-L4": dict(n_cnn_layers=4, **SMALL),
          "2d-L2-k2": dict(n_cnn_layers=2, kernel_size=2, **SMALL),
          "tdnn": dict(encoder="tdnn_bilstm", encoder_kwargs=dict(tdnn_dim=6, lstm_hidden=5), fc_hidden=8),
          "1dcnn": dict(encoder="1dcnn_gru", encoder_kwargs=dict(n_filters=6, gru_hidden=5), fc_hidden=8)}


@pytest.mark.parametrize("name", OLD_KW)
def test_without_lengths_the_network_is_bit_identical_to_the_old_code(name):
    n = 42 if name == "1dcnn" else 20
    torch.manual_seed(0)
    old = OldSIERNet(4, 3, n_mfcc=n, **OLD_KW[name])
    torch.manual_seed(0)
    new = SIERNet(4, 3, n_mfcc=n, **OLD_KW[name])
    old_state, new_state = old.state_dict(), new.state_dict()
    assert list(old_state) == list(new_state)  # checkpoints load both ways
    assert all(torch.equal(old_state[k], new_state[k]) for k in old_state)  # same initialisation
    x = torch.randn(5, n, 37)
    for train in (True, False):
        old.train(train), new.train(train)
        torch.manual_seed(1)
        a = old(x, 0.5)
        torch.manual_seed(1)  # the same dropout masks
        b = new(x, 0.5)
        assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert all(torch.equal(p, q) for p, q in zip(old.state_dict().values(), new.state_dict().values()))


def test_conv_dropout_defaults_to_dropout_and_can_differ():
    torch.manual_seed(0)
    a = SIERNet(4, 3, dropout=0.2)
    torch.manual_seed(0)
    b = SIERNet(4, 3, dropout=0.2, conv_dropout=0.2)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    c = SIERNet(4, 3, dropout=0.2, conv_dropout=0.0)
    assert c.encoder.cnn[0][2].p == 0.0 and c.emotion_head[2].p == 0.2
    assert a.encoder.cnn[0][2].p == 0.2 and c.encoder.cnn[0][0].stride == (2, 2)
    assert SIERNet(4, 3, conv_stride=1).encoder.cnn[0][0].stride == (1, 1)


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="conv_stride"):
        SIERNet(4, 3, conv_stride=3)
    with pytest.raises(ValueError, match="conv_stride"):
        SIERNet(4, 3, encoder="tdnn_bilstm", conv_stride=1)
    with pytest.raises(ValueError, match="conv_dropout"):
        SIERNet(4, 3, encoder="1dcnn_gru", n_mfcc=42, conv_dropout=0.1)
    model = SIERNet(4, 3)
    for bad in ([10, 0], [10, 11], [10]):
        with pytest.raises(ValueError, match="lengths"):
            model(torch.zeros(2, 20, 10), 0.5, torch.tensor(bad))


def test_encoder_registry():
    assert ENCODERS == {"2dcnn_bigru": Encoder, "tdnn_bilstm": TDNNBiLSTMEncoder, "1dcnn_gru": CNN1DGRUEncoder}
    for name, cls in ENCODERS.items():
        assert cls.name == name and cls.feature_kind in FEATURE_KINDS and cls.title
        assert isinstance(SIERNet(4, 3, n_mfcc=42, encoder=name).encoder, cls)
    assert ENCODERS["1dcnn_gru"].feature_kind == "fbank_energy_pitch" and Encoder.feature_kind == "mfcc"
    assert set(encoder_sizes("tdnn_bilstm")) == {"tdnn_dim", "contexts", "lstm_hidden"}


def test_masked_stats_pool_pools_the_valid_steps_only():
    h = torch.randn(3, 7, 4)
    lengths = torch.tensor([7, 1, 4])
    pooled = stats_pool(h, lengths)
    for i, n in enumerate(lengths.tolist()):
        assert torch.allclose(pooled[i], stats_pool(h[i:i + 1, :n])[0], atol=1e-6)
    assert torch.equal(stats_pool(h), old_stats_pool(h))


# ---- output lengths ----------------------------------------------------------------------------

@pytest.mark.parametrize("stride", [2, 1])
@pytest.mark.parametrize("kernel", [5, 2])
def test_output_lengths_and_gru_input_sizes_match_pytorch(stride, kernel):
    table = gru_input_sizes(n_mfcc=20, n_frames=379, kernel_size=kernel).set_index(["conv_stride", "depth"])
    for depth in (1, 2, 3, 4):
        enc = Encoder(n_cnn_layers=depth, kernel_size=kernel, n_filters=2, conv_stride=stride).eval()
        with torch.no_grad():
            shape = enc.cnn(torch.zeros(1, 1, 20, 379)).shape
            widths = [enc.cnn(torch.zeros(1, 1, 20, n)).shape[-1] for n in range(1, 40)]
        assert (table.loc[(stride, depth), "rows"], table.loc[(stride, depth), "frames"]) == tuple(shape[2:])
        assert enc.output_lengths(torch.arange(1, 40)).tolist() == widths
        assert enc.gru.input_size == 2 * shape[2]


def test_conv_output_length_with_dilation_and_ceil_mode():
    for n in range(1, 30):
        conv = nn.Conv1d(1, 1, 3, stride=2, padding=3, dilation=3)
        pool = nn.MaxPool1d(3, stride=2, padding=1, ceil_mode=True)
        x = torch.zeros(1, 1, n)
        assert int(conv_output_length(n, 3, 2, 3, 3)) == conv(x).shape[-1]
        assert int(conv_output_length(n, 3, 2, 1, ceil_mode=True)) == pool(x).shape[-1]


# ---- the masked path ignores padding -----------------------------------------------------------

@pytest.mark.parametrize("name", CONFIGS)
def test_eval_embedding_is_that_of_the_unpadded_utterance(name):
    model, n = make_model(name)
    randomise_running_stats(model)
    model.eval()
    x = padded_batch(n)
    with torch.no_grad():
        masked = outputs(model, x, LENGTHS)
        further = outputs(model, padded_batch(n, extra=40), LENGTHS)
        alone = torch.cat([outputs(model, x[i:i + 1, :, :n_i], None) for i, n_i in enumerate(LENGTHS.tolist())])
        padded = outputs(model, x, None)
    assert torch.allclose(further, masked, atol=1e-5)
    assert torch.allclose(alone, masked, atol=1e-5)
    # the padded path does see the padding: the shortest utterances come out different
    assert not torch.allclose(padded[1], masked[1], atol=1e-3)


@pytest.mark.parametrize("name", CONFIGS)
def test_train_mode_batch_statistics_ignore_padding(name):
    model, n = make_model(name, dropout=0.0)
    other = copy.deepcopy(model)
    a = outputs(model, padded_batch(n), LENGTHS)
    b = outputs(other, padded_batch(n, extra=40), LENGTHS)
    assert torch.allclose(a, b, atol=1e-5)
    for (key, p), q in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.allclose(p.float(), q.float(), atol=1e-6), key  # running statistics too
    # with no padding at all, masked batch norm is plain batch norm (running variance unbiased)
    full = torch.full((len(LENGTHS),), WIDTH)
    plain, masked = copy.deepcopy(model), copy.deepcopy(model)
    x = torch.randn(len(LENGTHS), n, WIDTH)
    assert torch.allclose(outputs(plain, x, None), outputs(masked, x, full), atol=1e-5)
    for p, q in zip(plain.state_dict().values(), masked.state_dict().values()):
        assert torch.allclose(p.float(), q.float(), atol=1e-6)


@pytest.mark.parametrize("name", CONFIGS)
def test_padding_gets_no_gradient_and_does_not_touch_the_loss(name):
    model, n = make_model(name, dropout=0.0)
    other = copy.deepcopy(model)
    y, s = torch.tensor([0, 1, 2, 3, 0]), torch.tensor([0, 1, 2, 0, 1])

    def loss_and_grad(m, x):
        x = x.clone().requires_grad_(True)
        emo, spk, _ = m(x, 0.5, LENGTHS)
        loss = F.cross_entropy(emo, y) + F.cross_entropy(spk, s)
        loss.backward()
        return loss, x.grad, [p.grad for p in m.parameters()]

    x = padded_batch(n)
    loss, grad, param_grads = loss_and_grad(model, x)
    noisy = x.clone()
    pad = torch.arange(WIDTH)[None, None, :] >= LENGTHS[:, None, None]
    noisy[pad.expand_as(x)] = 100 * torch.randn(int(pad.expand_as(x).sum()))
    loss_noisy, grad_noisy, param_grads_noisy = loss_and_grad(other, noisy)
    assert (grad[pad.expand_as(x)] == 0).all() and (grad[~pad.expand_as(x)] != 0).any()
    assert torch.equal(loss, loss_noisy) and torch.equal(grad, grad_noisy)
    assert all(torch.equal(p, q) for p, q in zip(param_grads, param_grads_noisy))


# ---- batching ----------------------------------------------------------------------------------

def test_batches_cover_every_index_once_without_a_batch_of_one():
    for n in (1, 2, 17, 33, 49):
        chunks = batches(n, 16, torch.Generator().manual_seed(0))
        assert sorted(torch.cat(chunks).tolist()) == list(range(n))
        assert all(len(c) > 1 for c in chunks) or n == 1
    # the order is torch.randperm's for the generator, as in every run so far
    order = torch.randperm(40, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.cat(batches(40, 16, torch.Generator().manual_seed(3))), order)
    assert [len(c) for c in batches(33, 16, shuffle=False)] == [16, 17]


@pytest.mark.parametrize("n", [1, 2, 3, 17, 33, 65, 320])
@pytest.mark.parametrize("per_bucket", [1, 4])
def test_bucket_batches_cover_every_index_once_reproducibly(n, per_bucket):
    lengths = torch.randint(10, 380, (n,), generator=torch.Generator().manual_seed(n))
    gen = torch.Generator().manual_seed(7)
    epochs = [bucket_batches(lengths, 16, gen, batches_per_bucket=per_bucket) for _ in range(3)]
    for chunks in epochs:
        assert sorted(torch.cat(chunks).tolist()) == list(range(n))
        assert all(len(c) > 1 for c in chunks) or n == 1
        assert all(len(c) <= 17 for c in chunks)
    again = bucket_batches(lengths, 16, torch.Generator().manual_seed(7), batches_per_bucket=per_bucket)
    assert [c.tolist() for c in again] == [c.tolist() for c in epochs[0]]
    if n == 320:
        # batches of similar length: far less padding than random batches
        random = batches(n, 16, torch.Generator().manual_seed(0))
        assert frames_computed(epochs[0], lengths) < 0.75 * frames_computed(random, lengths)
        # every epoch a new order, and with several batches per bucket new batches too
        assert [c.tolist() for c in epochs[0]] != [c.tolist() for c in epochs[1]]
        sets = [{frozenset(c.tolist()) for c in chunks} for chunks in epochs]
        assert (sets[0] != sets[1]) == (per_bucket > 1)


def test_bucket_batches_checks_its_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        bucket_batches([3, 4, 5], 0)
    with pytest.raises(ValueError, match="batches_per_bucket"):
        bucket_batches([3, 4, 5], 2, batches_per_bucket=0)


def test_frames_computed_counts_each_batch_at_its_longest():
    lengths = torch.tensor([5, 9, 2, 7])
    assert frames_computed([torch.tensor([0, 2]), torch.tensor([1, 3])], lengths) == 2 * 5 + 2 * 9
    assert frames_computed([torch.arange(4)], lengths) == 4 * 9
    assert frames_computed([torch.arange(4)], torch.full((4,), 20)) == 80  # the padded path's count


def test_crop_to_longest():
    x = torch.randn(3, 20, 50)
    cropped = crop_to_longest(x, torch.tensor([12, 30, 7]))
    assert cropped.shape == (3, 20, 30) and torch.equal(cropped, x[..., :30])


# ---- the masked standardiser -------------------------------------------------------------------

def test_masked_standardiser_uses_speech_frames_and_zeroes_padding():
    rng = np.random.default_rng(0)
    n_samples = np.array([512 * 40, 512 * 12 + 100, 512 * 25, 5000])  # frames 41, 13, 26, 10
    feats = Features(X=np.zeros((4, 3, 41), np.float32), utterances=np.array(list("abcd")), n_samples=n_samples,
                     params={"hop_length": 512})
    assert feats.n_frames.tolist() == [41, 13, 26, 10]
    assert (speech_mask(feats).sum(axis=1) == feats.n_frames).all()
    mask = speech_mask(feats)
    feats.X[:] = (rng.normal(2.0, 3.0, feats.X.shape) * mask[:, None, :]).astype(np.float32)
    lengths = feats.n_frames
    mean, std = fit_standardiser(feats.X, lengths)
    speech = np.concatenate([feats.X[i, :, :n] for i, n in enumerate(lengths)], axis=1)
    assert mean.shape == std.shape == (3, 1) and mean.dtype == std.dtype == np.float32
    assert np.allclose(mean[:, 0], speech.mean(axis=1), rtol=1e-6)
    assert np.allclose(std[:, 0], speech.std(axis=1), rtol=1e-6)
    out = standardise(feats.X, mean, std, lengths)
    assert out.dtype == np.float32
    assert (out[~np.broadcast_to(mask[:, None, :], out.shape)] == 0).all()
    assert np.allclose(out[:, :, :10], (feats.X[:, :, :10] - mean) / std)
    # without lengths: as before, padding included
    mean_all, std_all = fit_standardiser(feats.X)
    assert np.array_equal(mean_all, feats.X.mean(axis=(0, 2), keepdims=True)[0])
    assert np.array_equal(std_all, feats.X.std(axis=(0, 2), keepdims=True)[0])
    assert np.array_equal(standardise(feats.X, mean, std), ((feats.X - mean) / std).astype(np.float32))
    # a longer recording than the padded width counts the width (as the mask does)
    capped = Features(X=feats.X, utterances=feats.utterances, n_samples=n_samples * 2, params={"hop_length": 512})
    assert capped.n_frames.max() == 41
