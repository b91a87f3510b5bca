"""The adversarial learning (AL) network of Leow et al. (paper section 3), in one file.

::

    MFCC (1 x n_mfcc x T)
      -> n_cnn_layers x [Conv2d k x k, stride 2 -> BatchNorm -> Dropout -> ELU -> MaxPool 2x2/2]
      -> reshape to a sequence over time (channels x frequency per step)
      -> biGRU (gru_hidden units each way) -> statistics pooling (mean and std over time)
      = embedding h5 (4 * gru_hidden)
    h5 -> emotion classifier: 2 x [Linear -> BatchNorm -> Dropout -> ReLU] -> Linear
    h5 -> gradient reversal (x -lambda) -> speaker classifier (same shape) -> Linear

Choices where the paper is silent (each is a constructor argument):

- convolution padding ``kernel_size // 2`` on both axes, so a 20-coefficient map survives four
  stride-2 convolutions and four poolings (20 -> 10 -> 5 -> 3 -> 1 -> 1 ...); pooling uses
  ``ceil_mode=True`` so a dimension of size 1 stays 1 instead of vanishing;
- one dropout rate (0.3) for every block and layer;
- the standard deviation in statistics pooling is the biased one plus 1e-5 inside the square
  root, so a sequence of a single step (depth 4 on short inputs) gives 0.003, not NaN.

``SIERNet(..., encoder=...)`` swaps the encoder for one of the two earlier encoders of the
paper's Table 2 (``"tdnn_bilstm"``, ``"1dcnn_gru"``, see :mod:`sierlib.encoders`); the heads,
the gradient reversal and everything after the pooled embedding stay the same.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lambda_):
        ctx.lambda_ = float(lambda_)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.lambda_ * grad, None


def gradient_reversal(x: torch.Tensor, lambda_: float) -> torch.Tensor:
    """Identity in the forward pass; multiplies the gradient by ``-lambda_`` in the backward pass."""
    return _GradientReversal.apply(x, lambda_)


def adversarial_weight(p: float, gamma: float) -> float:
    """lambda(p) = 2 / (1 + exp(-gamma p)) - 1: the reversal strength after a fraction p of
    all training steps (0 at the start, approaching 1 for large gamma p)."""
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


class ConvBlock(nn.Sequential):
    """Conv2d (stride 2) -> BatchNorm -> Dropout -> ELU -> MaxPool 2x2 stride 2 (paper eqs. 1-3)."""

    def __init__(self, in_channels: int, n_filters: int, kernel_size: int, dropout: float):
        super().__init__(
            nn.Conv2d(in_channels, n_filters, kernel_size, stride=2, padding=kernel_size // 2),
            nn.BatchNorm2d(n_filters),
            nn.Dropout(dropout),
            nn.ELU(),
            nn.MaxPool2d(2, stride=2, ceil_mode=True),
        )


def stats_pool(h: torch.Tensor) -> torch.Tensor:
    """Mean and standard deviation over time (dim 1) of (batch, time, features), concatenated."""
    mean = h.mean(dim=1)
    std = torch.sqrt(h.var(dim=1, unbiased=False) + 1e-5)
    return torch.cat([mean, std], dim=1)


def classifier_head(in_features: int, hidden: int, n_out: int, dropout: float) -> nn.Sequential:
    """Two fully connected layers, each Linear -> BatchNorm -> Dropout -> ReLU, then a linear
    output layer (the softmax is inside the cross-entropy loss)."""
    layers = []
    for i in range(2):
        layers += [nn.Linear(in_features if i == 0 else hidden, hidden), nn.BatchNorm1d(hidden),
                   nn.Dropout(dropout), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(hidden, n_out))


class Encoder(nn.Module):
    """2D CNN blocks, a biGRU and statistics pooling: (B, n_mfcc, T) -> (B, 4 * gru_hidden)."""

    def __init__(self, n_mfcc: int = 20, n_cnn_layers: int = 1, kernel_size: int = 5,
                 n_filters: int = 64, gru_hidden: int = 128, dropout: float = 0.3):
        super().__init__()
        self.cnn = nn.Sequential(*[ConvBlock(1 if i == 0 else n_filters, n_filters, kernel_size, dropout)
                                   for i in range(n_cnn_layers)])
        with torch.no_grad():  # frequency bins left after the CNN, for the GRU's input size
            freq = self.cnn.eval()(torch.zeros(1, 1, n_mfcc, 64)).shape[2]
        self.cnn.train()
        self.gru = nn.GRU(n_filters * freq, gru_hidden, batch_first=True, bidirectional=True)
        self.out_features = 4 * gru_hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.cnn(x.unsqueeze(1))                  # (B, K, F', T')
        b, k, f, t = h.shape
        h = h.permute(0, 3, 1, 2).reshape(b, t, k * f)  # a sequence over time of K*F' features
        h, _ = self.gru(h)                             # (B, T', 2 * gru_hidden)
        return stats_pool(h)


ENCODER_NAMES = ("2dcnn_bigru", "tdnn_bilstm", "1dcnn_gru")
# TEMPORARY shim until the encoder registry (layers.py) lands
from types import SimpleNamespace  # noqa: E402
ENCODERS = {"2dcnn_bigru": SimpleNamespace(feature_kind="mfcc", title="2D CNN biGRU (MFCC)"),
            "tdnn_bilstm": SimpleNamespace(feature_kind="mfcc", title="TDNN biLSTM (MFCC)"),
            "1dcnn_gru": SimpleNamespace(feature_kind="fbank_energy_pitch", title="1D CNN GRU (log-Mel, energy, pitch)")}


class SIERNet(nn.Module):
    """Encoder + emotion classifier (+ speaker classifier behind gradient reversal).

    Parameters
    ----------
    n_emotions : number of emotion classes.
    n_speakers : number of training speakers for the adversary; None builds the network
        "without AL" (no speaker branch).
    n_mfcc : feature rows per frame, for every encoder (20 MFCCs; 42 for the 1D CNN GRU's
        log-Mel + energy + pitch features). The name is kept from the MFCC-only first version.
    n_cnn_layers (1-4), kernel_size, n_filters, gru_hidden : the 2D CNN biGRU encoder's sizes
        (section 4.2 grid: kernel 5 or 2, filters 128 or 64, GRU 256 or 128); the other
        encoders do not use them.
    fc_hidden, dropout : hidden units of both classifiers (grid: 128 or 64) and the dropout rate
        of the whole network.
    encoder : ``"2dcnn_bigru"`` (the paper's, :class:`Encoder`), ``"tdnn_bilstm"``
        (:class:`sierlib.encoders.TDNNBiLSTMEncoder`) or ``"1dcnn_gru"``
        (:class:`sierlib.encoders.CNN1DGRUEncoder`).
    encoder_kwargs : further keyword arguments for the TDNN biLSTM or 1D CNN GRU encoder
        (their sizes; defaults documented there). Not accepted for the 2D CNN biGRU, whose sizes
        are the arguments above.
    """

    def __init__(self, n_emotions: int, n_speakers: int | None = None, n_mfcc: int = 20,
                 n_cnn_layers: int = 1, kernel_size: int = 5, n_filters: int = 64,
                 gru_hidden: int = 128, fc_hidden: int = 64, dropout: float = 0.3,
                 encoder: str = "2dcnn_bigru", encoder_kwargs: dict | None = None):
        super().__init__()
        if encoder not in ENCODER_NAMES:
            raise ValueError(f"encoder must be one of {', '.join(ENCODER_NAMES)}; got {encoder!r}")
        if not 1 <= n_cnn_layers <= 4:
            raise ValueError(f"n_cnn_layers must be 1..4; got {n_cnn_layers!r}")
        if encoder == "2dcnn_bigru":
            if encoder_kwargs:
                raise ValueError("encoder_kwargs is for the tdnn_bilstm and 1dcnn_gru encoders; the 2D CNN "
                                 "biGRU takes n_cnn_layers, kernel_size, n_filters and gru_hidden")
            self.encoder = Encoder(n_mfcc, n_cnn_layers, kernel_size, n_filters, gru_hidden, dropout)
        else:
            from .encoders import ENCODER_CLASSES  # imported here: encoders imports stats_pool from this module

            self.encoder = ENCODER_CLASSES[encoder](n_mfcc, dropout, **(encoder_kwargs or {}))
        self.encoder_name = encoder
        d = self.encoder.out_features
        self.emotion_head = classifier_head(d, fc_hidden, n_emotions, dropout)
        self.speaker_head = classifier_head(d, fc_hidden, n_speakers, dropout) if n_speakers else None

    def forward(self, x: torch.Tensor, lambda_: float = 0.0):
        """Returns (emotion logits, speaker logits or None, pooled embedding)."""
        z = self.encoder(x)
        emotion = self.emotion_head(z)
        speaker = None
        if self.speaker_head is not None:
            speaker = self.speaker_head(gradient_reversal(z, lambda_))
        return emotion, speaker, z


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def layer_table(model: SIERNet, n_mfcc: int = 20, n_frames: int = 379, batch: int = 2):
    """Output shape and parameter count of each layer for an input of ``n_mfcc x n_frames``
    (a pandas DataFrame, one row per leaf module in forward order). ``n_mfcc`` is the number of
    feature rows (42 for the 1D CNN GRU encoder)."""
    import pandas as pd

    rows, hooks = [], []

    def hook(name):
        def record(module, inputs, output):
            out = output[0] if isinstance(output, tuple) else output
            rows.append({"layer": name, "type": type(module).__name__,
                         "output shape": tuple(out.shape[1:]),
                         "parameters": sum(p.numel() for p in module.parameters())})
        return record

    for name, module in model.named_modules():
        if name and not list(module.children()):
            hooks.append(module.register_forward_hook(hook(name)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(batch, n_mfcc, n_frames), 0.0)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    table = pd.DataFrame(rows)
    # the recurrent layer returns (sequence, state); pooling happens in the encoder's forward,
    # shown as its own row after that layer
    rnn = [f"encoder.{n}" for n, m in model.encoder.named_modules() if isinstance(m, nn.RNNBase)][-1]
    pos = table.index[table.layer == rnn][0] + 1
    pooled = pd.DataFrame([{"layer": "encoder (stats pooling)", "type": "mean ‖ std over time",
                            "output shape": (model.encoder.out_features,), "parameters": 0}])
    return pd.concat([table.iloc[:pos], pooled, table.iloc[pos:]], ignore_index=True)
