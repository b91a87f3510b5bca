"""The adversarial learning (AL) network of Leow et al. (paper section 3), in one file.

::

    MFCC (1 x n_mfcc x T)
      -> n_cnn_layers x [Conv2d k x k, stride 2 (or 1) -> BatchNorm -> Dropout -> ELU -> MaxPool 2x2/2]
      -> reshape to a sequence over time (channels x frequency per step)
      -> biGRU (gru_hidden units each way) -> statistics pooling (mean and std over time)
      = embedding h5 (4 * gru_hidden)
    h5 -> emotion classifier: 2 x [Linear -> BatchNorm -> Dropout -> ReLU] -> Linear
    h5 -> gradient reversal (x -lambda) -> speaker classifier (same shape) -> Linear

Choices where the paper is silent (each is a constructor argument):

- convolution padding ``kernel_size // 2`` on both axes, so a 20-coefficient map survives four
  stride-2 convolutions and four poolings (20 -> 10 -> 5 -> 3 -> 2 -> 1 -> 1 ...); pooling uses
  ``ceil_mode=True`` so a dimension of size 1 stays 1 instead of vanishing;
- one dropout rate (0.3) for every block and layer;
- the standard deviation in statistics pooling is the biased one plus 1e-5 inside the square
  root, so a sequence of a single step (depth 4 on short inputs) gives 0.003, not NaN.

``SIERNet(..., encoder=...)`` swaps the encoder for one of the two earlier encoders of the
paper's Table 2 (``"tdnn_bilstm"``, ``"1dcnn_gru"``, see :mod:`sierlib.encoders`); the heads,
the gradient reversal and everything after the pooled embedding stay the same. All three are
in :data:`ENCODERS`.

``SIERNet(..., conv_stride=1)`` reads the paper's "stride 2" as the pooling's only (stride-1
convolution, 2x2 pooling; :func:`gru_input_sizes` tabulates what the biGRU then sees), and
``conv_dropout`` sets the convolution blocks' dropout apart from the classifiers'.

Length-aware path: ``SIERNet.forward(x, lambda_, lengths)`` with each utterance's true number
of frames makes the padding inert -- masked batch norm in the convolution blocks, padded steps
zeroed before each convolution and set to -inf before each pooling, a packed biGRU and masked
statistics pooling (:mod:`sierlib.layers`). Without ``lengths`` the network computes exactly
what it always did, padding included, as the paper describes (zero-padding to the longest
recording, section 4.1).
"""
from __future__ import annotations

import math

import pandas as pd
import torch
from torch import nn

from .encoders import CNN1DGRUEncoder, TDNNBiLSTMEncoder
from .layers import (AttentiveStatsPool, MaskedBatchNorm2d, check_lengths, classifier_head, conv_output_length, deltas,
                     masked_sequential, recurrent_stats_pool, sequential_output_lengths, stats_pool)


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
    """Conv2d -> BatchNorm -> Dropout -> ELU -> MaxPool 2x2 stride 2 (paper eqs. 1-3).

    The convolution's stride is 2 (the paper as written) or 1 (the "pool-only" reading, where
    only the pooling subsamples)."""

    def __init__(self, in_channels: int, n_filters: int, kernel_size: int, dropout: float, stride: int = 2):
        super().__init__(
            nn.Conv2d(in_channels, n_filters, kernel_size, stride=stride, padding=kernel_size // 2),
            MaskedBatchNorm2d(n_filters),
            nn.Dropout(dropout),
            nn.ELU(),
            nn.MaxPool2d(2, stride=2, ceil_mode=True),
        )


def _block_output_size(n, kernel_size: int, conv_stride: int):
    """Size of one axis after a :class:`ConvBlock` (convolution, then 2x2 ceil-mode pooling)."""
    n = conv_output_length(n, kernel_size, stride=conv_stride, padding=kernel_size // 2)
    return conv_output_length(n, 2, stride=2, ceil_mode=True)


def gru_input_sizes(n_mfcc: int = 20, n_frames: int = 379, kernel_size: int = 5):
    """What the biGRU sees after 1-4 convolution blocks, for convolution strides 2 and 1.

    Parameters
    ----------
    n_mfcc : int
        Feature rows of the input (frequency axis).
    n_frames : int
        Frames of the input (time axis).
    kernel_size : int
        Square convolution kernel; padding ``kernel_size // 2`` on both axes.

    Returns
    -------
    pandas.DataFrame
        One row per (conv_stride, depth) with ``rows`` (frequency bins left, times the filters =
        the GRU's input size) and ``frames`` (time steps the GRU runs over).
    """
    table = []
    for stride in (2, 1):
        rows, frames = n_mfcc, n_frames
        for depth in range(1, 5):
            rows = int(_block_output_size(rows, kernel_size, stride))
            frames = int(_block_output_size(frames, kernel_size, stride))
            table.append({"conv_stride": stride, "depth": depth, "rows": rows, "frames": frames})
    return pd.DataFrame(table)


class Encoder(nn.Module):
    """2D CNN blocks, a biGRU and statistics pooling: (B, n_mfcc, T) -> (B, 4 * gru_hidden).

    Parameters
    ----------
    n_mfcc : int
        Feature rows of the input.
    n_cnn_layers : int
        Convolution blocks, 1-4.
    kernel_size, n_filters : int
        Square kernel and filters of every convolution.
    gru_hidden : int
        Units of the biGRU in each direction.
    dropout : float
        Dropout rate; the default for ``conv_dropout``.
    conv_stride : int
        Stride of every convolution: 2 (the paper as written) or 1 (pooling alone subsamples).
    conv_dropout : float, optional
        Dropout inside the convolution blocks; None uses ``dropout``.
    pooling : {"stats", "attentive"}
        Statistics pooling (the paper's) or attentive statistics pooling.
    front_end : {"mfcc", "logmel_deltas"}
        One input channel (the paper's MFCCs), or three: the features (log-Mel), their Δ and
        ΔΔ over time (:func:`sierlib.layers.deltas`).
    """

    name = "2dcnn_bigru"
    feature_kind = "mfcc"
    title = "2D CNN biGRU (MFCC)"

    def __init__(self, n_mfcc: int = 20, n_cnn_layers: int = 1, kernel_size: int = 5,
                 n_filters: int = 64, gru_hidden: int = 128, dropout: float = 0.3,
                 conv_stride: int = 2, conv_dropout: float | None = None, speaker_hidden: int | None = None,
                 pooling: str = "stats", front_end: str = "mfcc"):
        super().__init__()
        if conv_stride not in (1, 2):
            raise ValueError(f"conv_stride must be 1 or 2; got {conv_stride!r}")
        if pooling not in ("stats", "attentive"):
            raise ValueError(f"pooling must be 'stats' or 'attentive'; got {pooling!r}")
        if front_end not in ("mfcc", "logmel_deltas"):
            raise ValueError(f"front_end must be 'mfcc' or 'logmel_deltas'; got {front_end!r}")
        conv_dropout = dropout if conv_dropout is None else conv_dropout
        # logmel_deltas: the features, their deltas and delta-deltas as three input channels
        self.with_deltas = front_end == "logmel_deltas"
        self.cnn = nn.Sequential(*[ConvBlock((3 if self.with_deltas else 1) if i == 0 else n_filters, n_filters,
                                             kernel_size, conv_dropout, conv_stride) for i in range(n_cnn_layers)])
        freq = n_mfcc  # frequency bins left after the CNN, for the GRU's input size
        for _ in range(n_cnn_layers):
            freq = int(_block_output_size(freq, kernel_size, conv_stride))
        self.gru = nn.GRU(n_filters * freq, gru_hidden, batch_first=True, bidirectional=True)
        # a module only when attentive, so the paper's network keeps its parameter names
        self.pool = AttentiveStatsPool(2 * gru_hidden) if pooling == "attentive" else stats_pool
        self.out_features = 4 * gru_hidden

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Time steps the biGRU runs over for inputs of ``lengths`` frames."""
        return sequential_output_lengths(self.cnn, torch.as_tensor(lengths, dtype=torch.int64))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Pooled embedding of ``x`` (B, n_mfcc, T); with ``lengths`` (B,), row i's frames from
        ``lengths[i]`` on are padding and do not influence its embedding (see :mod:`sierlib.layers`)."""
        if lengths is not None:
            lengths = check_lengths(lengths, x)
        if self.with_deltas:
            d = deltas(x, lengths)
            channels = torch.stack([x, d, deltas(d, lengths)], dim=1)  # (B, 3, F, T)
        else:
            channels = x.unsqueeze(1)
        if lengths is None:
            h = self.cnn(channels)                        # (B, K, F', T')
        else:
            h, lengths = masked_sequential(self.cnn, channels, lengths)
        b, k, f, t = h.shape
        h = h.permute(0, 3, 1, 2).reshape(b, t, k * f)  # a sequence over time of K*F' features
        return recurrent_stats_pool(self.gru, h, lengths, self.pool)


# The encoders by the name a run records (each class's ``name``); each class also carries the
# feature kind it reads (``feature_kind``, see :mod:`sierlib.features`) and a ``title`` for tables.
ENCODERS = {cls.name: cls for cls in (Encoder, TDNNBiLSTMEncoder, CNN1DGRUEncoder)}


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
    encoder : a name in :data:`ENCODERS`: ``"2dcnn_bigru"`` (the paper's, :class:`Encoder`),
        ``"tdnn_bilstm"`` (:class:`sierlib.encoders.TDNNBiLSTMEncoder`) or ``"1dcnn_gru"``
        (:class:`sierlib.encoders.CNN1DGRUEncoder`).
    encoder_kwargs : further keyword arguments for the TDNN biLSTM or 1D CNN GRU encoder
        (their sizes; defaults documented there). Not accepted for the 2D CNN biGRU, whose sizes
        are the arguments above.
    conv_stride, conv_dropout : the 2D CNN biGRU's convolution stride (2, or 1 for the
        "pool-only" reading) and the dropout inside its convolution blocks (None: ``dropout``).
    speaker_hidden : hidden units of the speaker head (None: ``fc_hidden``).
    pooling : ``"stats"`` (the paper's statistics pooling) or ``"attentive"``
        (:class:`sierlib.layers.AttentiveStatsPool`); the 2D CNN biGRU's only.
    front_end : ``"mfcc"`` (one input channel) or ``"logmel_deltas"`` (the features with their Δ
        and ΔΔ as three channels); the 2D CNN biGRU's only.
    """

    def __init__(self, n_emotions: int, n_speakers: int | None = None, n_mfcc: int = 20,
                 n_cnn_layers: int = 1, kernel_size: int = 5, n_filters: int = 64,
                 gru_hidden: int = 128, fc_hidden: int = 64, dropout: float = 0.3,
                 encoder: str = "2dcnn_bigru", encoder_kwargs: dict | None = None,
                 conv_stride: int = 2, conv_dropout: float | None = None, speaker_hidden: int | None = None,
                 pooling: str = "stats", front_end: str = "mfcc"):
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}; got {encoder!r}")
        if not 1 <= n_cnn_layers <= 4:
            raise ValueError(f"n_cnn_layers must be 1..4; got {n_cnn_layers!r}")
        if ENCODERS[encoder] is Encoder:
            if encoder_kwargs:
                raise ValueError("encoder_kwargs is for the tdnn_bilstm and 1dcnn_gru encoders; the 2D CNN "
                                 "biGRU takes n_cnn_layers, kernel_size, n_filters and gru_hidden")
            self.encoder = Encoder(n_mfcc, n_cnn_layers, kernel_size, n_filters, gru_hidden, dropout,
                                   conv_stride=conv_stride, conv_dropout=conv_dropout, pooling=pooling,
                                   front_end=front_end)
        else:
            if conv_stride != 2 or conv_dropout is not None or pooling != "stats" or front_end != "mfcc":
                # they would be silently ignored
                raise ValueError(f"conv_stride, conv_dropout, pooling and front_end are for the 2dcnn_bigru encoder "
                                 f"only; got conv_stride={conv_stride!r}, conv_dropout={conv_dropout!r}, "
                                 f"pooling={pooling!r}, front_end={front_end!r} with {encoder!r}")
            self.encoder = ENCODERS[encoder](n_mfcc, dropout, **(encoder_kwargs or {}))
        self.encoder_name = encoder
        d = self.encoder.out_features
        self.emotion_head = classifier_head(d, fc_hidden, n_emotions, dropout)
        self.speaker_head = (classifier_head(d, speaker_hidden or fc_hidden, n_speakers, dropout) if n_speakers
                             else None)

    def forward(self, x: torch.Tensor, lambda_: float = 0.0, lengths: torch.Tensor | None = None):
        """Returns (emotion logits, speaker logits or None, pooled embedding).

        ``lengths`` (batch,): the valid frames of each row of ``x``; the frames after them are
        padding and influence nothing. None: every frame counts, padding included."""
        z = self.encoder(x, lengths)
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
