"""Layers shared by every encoder and the heads, and the length-aware (masked) path.

Imports go one way: this module <- :mod:`sierlib.encoders` <- :mod:`sierlib.model`.

Utterances are zero-padded to a common number of frames. Given each utterance's true number of
frames (``lengths``), :func:`masked_sequential` runs a stack of convolutions, poolings, batch
norms and element-wise layers so that padded time steps never influence valid ones:

- before a convolution, padded steps are set to 0, which is what the convolution's own zero
  padding would read at the end of an unpadded utterance;
- before a max-pooling, padded steps are set to -inf, so that they cannot win a window that
  straddles the end (ELU outputs can be negative);
- batch norm takes its training-mode statistics over valid steps only
  (:class:`MaskedBatchNorm1d`, :class:`MaskedBatchNorm2d`);
- each layer's output lengths are computed exactly as PyTorch's layer computes output sizes
  (:func:`conv_output_length`).

Time is always the last axis. Without lengths every layer here computes exactly what its plain
PyTorch counterpart computes.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

# Layers that act on each time step separately: they need no mask.
ELEMENTWISE = (nn.ReLU, nn.ELU, nn.Dropout)


def lengths_to_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """Boolean ``(batch, T)`` mask, True at the first ``lengths[i]`` steps of row i."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


def check_lengths(lengths, x: torch.Tensor) -> torch.Tensor:
    """``lengths`` as int64 on ``x``'s device, checked against ``x`` (batch, ..., time).

    Raises
    ------
    ValueError
        If ``lengths`` is not one value per row of ``x`` in ``1 .. x.shape[-1]``.
    """
    lengths = torch.as_tensor(lengths, dtype=torch.int64, device=x.device)
    if lengths.shape != x.shape[:1]:
        raise ValueError(f"lengths must have one value per utterance, shape ({x.shape[0]},); "
                         f"got {tuple(lengths.shape)}")
    if lengths.min() < 1 or lengths.max() > x.shape[-1]:
        raise ValueError(f"lengths must lie in 1..{x.shape[-1]} (the padded width); got "
                         f"{int(lengths.min())}..{int(lengths.max())}")
    return lengths


def conv_output_length(n, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                       ceil_mode: bool = False) -> torch.Tensor:
    """Output size of a convolution or pooling along one axis, as PyTorch computes it.

    Parameters
    ----------
    n : int or torch.Tensor
        Input size(s) along the axis.
    kernel_size, stride, padding, dilation : int
        The layer's settings along that axis.
    ceil_mode : bool
        Pooling with ``ceil_mode=True``: a last, partial window counts if it starts inside the
        input or its left padding (PyTorch's ``pooling_output_shape``).

    Returns
    -------
    torch.Tensor
        Output size(s), int64, same shape as ``n``.
    """
    n = torch.as_tensor(n, dtype=torch.int64)
    span = n + 2 * padding - dilation * (kernel_size - 1) - 1
    if not ceil_mode:
        return span.div(stride, rounding_mode="floor") + 1
    out = (span + stride - 1).div(stride, rounding_mode="floor") + 1
    return out - ((out - 1) * stride >= n + padding).long()


def _time_settings(layer: nn.Module) -> dict:
    """A convolution's or max-pooling's settings along its last (time) axis."""
    def last(v):
        return v[-1] if isinstance(v, tuple) else v

    return {"kernel_size": last(layer.kernel_size), "stride": last(layer.stride), "padding": last(layer.padding),
            "dilation": last(layer.dilation), "ceil_mode": getattr(layer, "ceil_mode", False)}


def stats_pool(h: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Mean and standard deviation over time (dim 1) of ``(batch, time, features)``, concatenated.

    The standard deviation is the biased one with 1e-5 inside the square root, so a sequence of
    a single step gives 0.003, not NaN. With ``lengths``, row i is pooled over its first
    ``lengths[i]`` steps only.
    """
    if lengths is None:
        mean = h.mean(dim=1)
        std = torch.sqrt(h.var(dim=1, unbiased=False) + 1e-5)
        return torch.cat([mean, std], dim=1)
    lengths = lengths.to(h.device)
    mask = lengths_to_mask(lengths, h.shape[1]).unsqueeze(-1).to(h.dtype)
    n = lengths.to(h.dtype).unsqueeze(-1)
    mean = (h * mask).sum(dim=1) / n
    var = (((h - mean.unsqueeze(1)) * mask) ** 2).sum(dim=1) / n
    return torch.cat([mean, torch.sqrt(var + 1e-5)], dim=1)


class AttentiveStatsPool(nn.Module):
    """Attentive statistics pooling (Okabe, Koshinaka and Shinoda, Interspeech 2018): a small
    network scores every time step (Linear -> tanh -> Linear to one score), the scores' softmax
    over time weights the mean and the standard deviation. Called as :func:`stats_pool` is; with
    ``lengths``, padded steps get weight 0. The standard deviation has 1e-5 inside the square
    root, as :func:`stats_pool`'s."""

    def __init__(self, features: int, hidden: int = 128):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(features, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, h: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        e = self.score(h).squeeze(-1)  # (batch, time)
        if lengths is not None:
            e = e.masked_fill(~lengths_to_mask(lengths.to(h.device), h.shape[1]), float("-inf"))
        w = torch.softmax(e, dim=1).unsqueeze(-1)
        mean = (w * h).sum(dim=1)
        var = (w * (h - mean.unsqueeze(1)) ** 2).sum(dim=1)
        return torch.cat([mean, torch.sqrt(var + 1e-5)], dim=1)


def deltas(x: torch.Tensor, lengths: torch.Tensor | None = None, width: int = 2) -> torch.Tensor:
    """Regression deltas of ``x`` (batch, rows, time) over time, as HTK's:
    d_t = sum_{n=1..width} n (x_{t+n} - x_{t-n}) / (2 sum n^2), the edge frames repeated (=
    ``librosa.feature.delta(x, width=2 * width + 1, mode="nearest")``). With ``lengths``, row i's
    edge is its last valid frame, so its padding influences nothing, and its padding stays 0."""
    b, f, t = x.shape
    steps = torch.arange(t, device=x.device)[None, :]
    last = (lengths.to(x.device)[:, None] - 1) if lengths is not None else torch.full((b, 1), t - 1, device=x.device)
    out = torch.zeros_like(x)
    for n in range(1, width + 1):
        ahead = torch.minimum(steps + n, last).clamp(min=0)[:, None, :].expand(b, f, t)
        behind = torch.minimum((steps - n).clamp(min=0), last)[:, None, :].expand(b, f, t)
        out = out + n * (x.gather(2, ahead) - x.gather(2, behind))
    out = out / (2 * sum(n * n for n in range(1, width + 1)))
    if lengths is not None:
        out = out * lengths_to_mask(lengths.to(x.device), t)[:, None, :].to(x.dtype)
    return out


def recurrent_stats_pool(rnn: nn.RNNBase, h: torch.Tensor, lengths: torch.Tensor | None = None,
                         pool=stats_pool) -> torch.Tensor:
    """Run a batch-first recurrent layer over ``h`` (batch, time, features) and pool its outputs
    with ``pool`` (:func:`stats_pool`, or an :class:`AttentiveStatsPool`). With ``lengths``, the
    layer runs on a packed sequence, so that it reads row i's first ``lengths[i]`` steps only
    (the backward direction starts at the last valid step, not in the padding)."""
    if lengths is None:
        out, _ = rnn(h)
        return pool(out)
    packed = pack_padded_sequence(h, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, _ = pad_packed_sequence(rnn(packed)[0], batch_first=True)
    return pool(out, lengths)


def classifier_head(in_features: int, hidden: int, n_out: int, dropout: float) -> nn.Sequential:
    """Two fully connected layers, each Linear -> BatchNorm -> Dropout -> ReLU, then a linear
    output layer (the softmax is inside the cross-entropy loss)."""
    layers = []
    for i in range(2):
        layers += [nn.Linear(in_features if i == 0 else hidden, hidden), nn.BatchNorm1d(hidden),
                   nn.Dropout(dropout), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(hidden, n_out))


def _masked_batch_norm(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Batch norm of ``x`` (batch, channels, ..., time) with batch statistics over the steps
    where ``mask`` (batch, time) is True; running statistics are updated from those. Padded
    steps come out as ``bias`` (they are neutralised by the next layer that mixes steps)."""
    m = mask.to(x.dtype)
    count = m.sum() * x.shape[2:-1].numel()  # valid values per channel
    if count < 2:
        raise ValueError("masked batch norm in training mode needs more than one valid value per channel; "
                         "check lengths")
    rows = x.reshape(x.shape[0], x.shape[1], -1, x.shape[-1])  # (batch, channels, rows, time)
    shape = (1, -1, *[1] * (x.dim() - 2))
    # masked sums as contractions: no masked copy of x is made
    mean = torch.einsum("bcrt,bt->c", rows, m) / count
    centred = x - mean.view(shape)
    var = torch.einsum("bcrt,bt->c", (centred * centred).reshape(rows.shape), m) / count
    if bn.training and bn.track_running_stats:
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
        with torch.no_grad():
            bn.running_mean.mul_(1 - factor).add_(factor * mean)
            bn.running_var.mul_(1 - factor).add_(factor * var * count / (count - 1))  # unbiased, as PyTorch
    scale = 1.0 / torch.sqrt(var + bn.eps)
    if not bn.affine:
        return centred * scale.view(shape)
    return torch.addcmul(bn.bias.view(shape), centred, (bn.weight * scale).view(shape))


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """:class:`torch.nn.BatchNorm1d` whose batch statistics can ignore padded time steps.

    ``forward(x, mask=None)``: ``x`` is ``(batch, channels, time)``, ``mask`` ``(batch, time)``,
    True at valid steps. Without a mask, or when running statistics are used (eval mode), this is
    the parent's forward unchanged. Same parameters and state_dict keys as the parent.
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None or not (self.training or self.running_mean is None):
            return super().forward(x)
        return _masked_batch_norm(self, x, mask)


class MaskedBatchNorm2d(nn.BatchNorm2d):
    """:class:`torch.nn.BatchNorm2d` whose batch statistics can ignore padded time steps.

    ``forward(x, mask=None)``: ``x`` is ``(batch, channels, frequency, time)``, ``mask``
    ``(batch, time)``, True at valid steps. Without a mask, or when running statistics are used
    (eval mode), this is the parent's forward unchanged. Same parameters and state_dict keys as
    the parent.
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None or not (self.training or self.running_mean is None):
            return super().forward(x)
        return _masked_batch_norm(self, x, mask)


def _fill_padding(x: torch.Tensor, lengths: torch.Tensor, value: float) -> torch.Tensor:
    mask = lengths_to_mask(lengths, x.shape[-1])
    return x.masked_fill(~mask.reshape(mask.shape[0], *[1] * (x.dim() - 2), mask.shape[1]), value)


def sequential_output_lengths(layers: nn.Module, lengths: torch.Tensor) -> torch.Tensor:
    """Time lengths after ``layers`` (a layer or an ``nn.Sequential``, nested ones included)."""
    if isinstance(layers, nn.Sequential):
        for layer in layers:
            lengths = sequential_output_lengths(layer, lengths)
        return lengths
    if isinstance(layers, (nn.modules.conv._ConvNd, nn.MaxPool1d, nn.MaxPool2d)):
        return conv_output_length(lengths, **_time_settings(layers)).to(lengths.device)
    return lengths


def masked_sequential(layers: nn.Module, x: torch.Tensor, lengths: torch.Tensor):
    """Run ``layers`` on zero-padded ``x`` (time last) so that padding never reaches valid steps.

    Parameters
    ----------
    layers : torch.nn.Module
        An ``nn.Sequential`` (nested ones included) of convolutions, max-poolings,
        :class:`MaskedBatchNorm1d` / :class:`MaskedBatchNorm2d` and element-wise layers.
    x : torch.Tensor
        ``(batch, channels, [frequency,] time)``.
    lengths : torch.Tensor
        Valid time steps of each row of ``x``, int64, on ``x``'s device.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        The output, with padded steps set to 0, and its lengths.

    Raises
    ------
    TypeError
        For a layer whose masked behaviour is not known here (a plain BatchNorm, for one, would
        silently take statistics over the padding).
    """
    x, lengths = _masked_layers(layers, x, lengths)
    return _fill_padding(x, lengths, 0.0), lengths


def _masked_layers(layers: nn.Module, x: torch.Tensor, lengths: torch.Tensor):
    # Padded steps may hold anything between layers: each layer that mixes time steps
    # neutralises them on its own input.
    if isinstance(layers, nn.Sequential):
        for layer in layers:
            x, lengths = _masked_layers(layer, x, lengths)
        return x, lengths
    if isinstance(layers, nn.modules.conv._ConvNd):
        return layers(_fill_padding(x, lengths, 0.0)), sequential_output_lengths(layers, lengths)
    if isinstance(layers, (nn.MaxPool1d, nn.MaxPool2d)):
        return layers(_fill_padding(x, lengths, float("-inf"))), sequential_output_lengths(layers, lengths)
    if isinstance(layers, (MaskedBatchNorm1d, MaskedBatchNorm2d)):
        return layers(x, lengths_to_mask(lengths, x.shape[-1])), lengths
    if isinstance(layers, ELEMENTWISE):
        return layers(x), lengths
    raise TypeError(f"masked_sequential does not know how to mask a {type(layers).__name__}")
