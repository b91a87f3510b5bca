"""The two earlier encoders of the paper's Table 2, for the same heads, reversal and protocol.

Leow et al. compare their 2D CNN biGRU encoder (:class:`sierlib.model.Encoder`) with two earlier
adversarial SIER encoders, re-trained under their own protocol (section 4.4, Table 2):

- **TDNN biLSTM on MFCC** after Tu et al. 2019, "Towards adversarial learning of
  speaker-invariant representation for speech emotion recognition" (Leow's [10]);
- **1D CNN GRU on log-Mel filterbank energies, energy and pitch** after Li et al. 2020,
  "Speaker-invariant affective representation learning via adversarial training", ICASSP
  (Leow's [11]).

No code was published for either, and neither Leow et al. nor we have the exact layer
configurations: Leow et al. name only the encoder type and its input features, and of Tu et al.
and Li et al. only the abstracts were at hand when this module was written (their full texts may
well give sizes that differ from ours). What the sources state is marked **stated** below (the
source in brackets: [Leow T2] is the paper's Table 2); everything else is **assumed** here,
chosen to follow common practice for that kind of network and to keep one Emo-DB epoch within
about twice the default 2D CNN biGRU's CPU time. Each assumed size is a constructor argument;
a run records them (:func:`encoder_sizes`) in its parameters and its name hash.

Both encoders map ``(batch, n_features, T)`` to a pooled utterance embedding
``(batch, out_features)`` that feeds the unchanged emotion head and, behind the gradient
reversal, the unchanged speaker head of :class:`sierlib.model.SIERNet`. Tu et al.'s
cross-gradient training and Li et al.'s additional entropy loss on the speaker classifier are
**not** used: Leow et al. compare the encoders inside their own AL network, so every encoder
gets the same reversal, lambda schedule, heads and training protocol.

==================  ==============================================  ==================================================
item                TDNN biLSTM (``"tdnn_bilstm"``)                 1D CNN GRU (``"1dcnn_gru"``)
==================  ==============================================  ==================================================
input features      MFCC (stated [Leow T2]): the project's 20       log-Mel filterbank, energy, pitch (stated [Leow
                    coefficients, frames of 2048 / hop 512, as for  T2]): 42 rows of kind "fbank_energy_pitch" (40
                    the 2D CNN biGRU (assumed: Tu et al.'s own      bands, energy in dB, F0 in Hz, 0 when unvoiced:
                    MFCC settings are not reproduced)               assumed), frames 2048 / 512 (assumed; Li et al.
                                                                    more likely used 25 / 10 ms)
frame layers        TDNN (stated [Tu]): 4 layers with the x-vector  1D convolution over time with the features as
                    contexts [t-2,t+2], {t-2,t,t+2}, {t-3,t,t+3},   channels (stated [Leow T2, sec. 1]); 2 blocks
                    {t} (assumed, after Snyder et al. 2018) =       (assumed)
                    Conv1d (kernel, dilation) (5,1), (3,2), (3,3),
                    (1,1); receptive field 15 frames
widths              64 units per TDNN layer (assumed: as the 64     128 filters, kernel 5, stride 1 (assumed)
                    filters of the default 2D CNN biGRU; the
                    x-vector network uses 512; 128 made an epoch
                    about 2x the 2D CNN biGRU's)
block order         Conv1d -> ReLU -> BatchNorm -> Dropout          Conv1d -> BatchNorm -> ReLU -> Dropout -> MaxPool
                    (assumed; Kaldi's affine, ReLU, batch norm)     (assumed)
time padding        zero 'same' padding, T kept (assumed; Kaldi     'same' padding; max-pooling 2, stride 2, ceil
                    splices valid contexts only, which would leave  mode, after each block: T -> ceil(T / 4) (assumed)
                    nothing of a 12-frame input)
subsampling         none: the LSTM sees every frame (assumed)       x4 from the two poolings (assumed)
recurrent layer     bidirectional LSTM (stated [Leow: "biLSTM"];    unidirectional GRU (stated [Leow: "GRU", beside
                    Tu et al.'s abstract says "LSTM"), 1 layer,     their "biGRU"]), 1 layer, 256 units (assumed)
                    128 units per direction (assumed)
pooling             statistics pooling, mean and std over time      statistics pooling as in the paper's eq. (5)
                    (stated [Tu]), :func:`stats_pool`               (assumed; Li et al.'s pooling is not reproduced)
embedding           4 x 128 = 512, as the default 2D CNN biGRU's    2 x 256 = 512 (chosen to match)
dropout             0.3 after each TDNN layer (assumed)             0.3 in each convolution block (assumed)
padding frames      included everywhere, as for the 2D CNN biGRU    the same
                    (recordings are zero-padded to the corpus's
                    longest, paper sec. 4.1); ignored when the
                    forward pass is given ``lengths``
adversary           gradient reversal only, no cross-gradient       gradient reversal only, no entropy loss [Li]
                    training [Tu]
==================  ==============================================  ==================================================
"""
from __future__ import annotations

import inspect

import torch
from torch import nn

from .layers import MaskedBatchNorm1d, check_lengths, masked_sequential, recurrent_stats_pool

# x-vector frame layers 1-4 (Snyder et al. 2018) as (kernel size, dilation) of a Conv1d:
# [t-2, t+2] -> (5, 1); {t-2, t, t+2} -> (3, 2); {t-3, t, t+3} -> (3, 3); {t} -> (1, 1).
XVECTOR_CONTEXTS = ((5, 1), (3, 2), (3, 3), (1, 1))


class TDNNBiLSTMEncoder(nn.Module):
    """TDNN layers, a bidirectional LSTM and statistics pooling (after Tu et al. 2019).

    ``(batch, n_features, T) -> (batch, 4 * lstm_hidden)``. See the module docstring for which
    parts are stated by the sources and which are assumed.

    Parameters
    ----------
    n_features : int
        Feature rows per frame (20 MFCCs by default in this project).
    dropout : float
        Dropout after every TDNN layer (assumed; 0.3 as everywhere in the project).
    tdnn_dim : int
        Units of every TDNN layer (assumed 64, as the 64 filters of the default 2D CNN biGRU; the
        x-vector network uses 512; 128 made a CPU epoch about twice the 2D CNN biGRU's).
    contexts : sequence of (int, int)
        ``(kernel_size, dilation)`` of each TDNN layer, i.e. the frame offsets it splices:
        kernel 5 dilation 1 is [t-2, t+2], kernel 3 dilation 2 is {t-2, t, t+2}. Default: the
        x-vector frame layers 1-4, ``((5, 1), (3, 2), (3, 3), (1, 1))`` (assumed), a receptive
        field of 15 frames (about +-160 ms at hop 512 and 22050 Hz). Zero padding of
        ``dilation * (kernel_size - 1) // 2`` keeps the number of frames (odd kernels only).
    lstm_hidden : int
        Units of the biLSTM in each direction (assumed 128).

    Notes
    -----
    Layer order inside a TDNN layer is Conv1d -> ReLU -> BatchNorm -> Dropout (assumed, as in
    Kaldi's TDNN recipes: affine, ReLU, batch norm). No frame subsampling: the LSTM sees every
    frame. The embedding is the mean and standard deviation over time of the LSTM outputs
    (:func:`sierlib.layers.stats_pool`), which Tu et al. state.
    """

    name = "tdnn_bilstm"
    feature_kind = "mfcc"
    title = "TDNN biLSTM (MFCC)"

    def __init__(self, n_features: int, dropout: float = 0.3, *, tdnn_dim: int = 64,
                 contexts=XVECTOR_CONTEXTS, lstm_hidden: int = 128):
        super().__init__()
        layers, in_ch = [], n_features
        for kernel, dilation in contexts:
            if kernel < 1 or kernel % 2 == 0 or dilation < 1:
                raise ValueError(f"TDNN contexts need an odd kernel >= 1 and a dilation >= 1; got {(kernel, dilation)}")
            layers += [nn.Conv1d(in_ch, tdnn_dim, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2),
                       nn.ReLU(), MaskedBatchNorm1d(tdnn_dim), nn.Dropout(dropout)]
            in_ch = tdnn_dim
        self.tdnn = nn.Sequential(*layers)
        self.lstm = nn.LSTM(in_ch, lstm_hidden, batch_first=True, bidirectional=True)
        self.out_features = 4 * lstm_hidden

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Pooled embedding of ``x`` (B, n_features, T); with ``lengths`` (B,), row i's frames
        from ``lengths[i]`` on are padding and influence nothing (see :mod:`sierlib.layers`)."""
        if lengths is None:
            h = self.tdnn(x)                  # (B, tdnn_dim, T)
        else:
            h, lengths = masked_sequential(self.tdnn, x, check_lengths(lengths, x))
        return recurrent_stats_pool(self.lstm, h.transpose(1, 2), lengths)  # LSTM: (B, T, 2 * lstm_hidden)


class CNN1DGRUEncoder(nn.Module):
    """1D convolutions over time, a GRU and statistics pooling (after Li et al. 2020).

    ``(batch, n_features, T) -> (batch, 2 * gru_hidden)``. See the module docstring for which
    parts are stated by the sources and which are assumed.

    Parameters
    ----------
    n_features : int
        Feature rows per frame, used as input channels (42 for ``kind="fbank_energy_pitch"``:
        40 log-Mel energies, log energy, F0).
    dropout : float
        Dropout in every convolution block (assumed; 0.3 as everywhere in the project).
    n_conv_layers : int
        Convolution blocks (assumed 2).
    n_filters : int
        Filters of every Conv1d (assumed 128).
    kernel_size : int
        Temporal kernel of every Conv1d, stride 1, zero padding ``kernel_size // 2`` (assumed 5).
    pool : int
        Max-pooling size and stride over time after each block, ``ceil_mode=True`` so that short
        inputs keep at least one frame (assumed 2; two blocks subsample time by 4, as the default
        2D CNN biGRU's stride-2 convolution and 2x2 pooling do). 1 turns pooling off.
    gru_hidden : int
        Units of the unidirectional GRU (assumed 256, so the embedding has 512 values like the
        other two encoders').

    Notes
    -----
    Block order is Conv1d -> BatchNorm -> ReLU -> Dropout -> MaxPool (assumed). The GRU is
    unidirectional because Leow et al. name it "GRU" next to their "biGRU" and "biLSTM". The
    embedding is the mean and standard deviation over time of the GRU outputs (assumed, so the
    heads receive the same kind of input for all three encoders).
    """

    name = "1dcnn_gru"
    feature_kind = "fbank_energy_pitch"
    title = "1D CNN GRU (log-Mel, energy, pitch)"

    def __init__(self, n_features: int, dropout: float = 0.3, *, n_conv_layers: int = 2, n_filters: int = 128,
                 kernel_size: int = 5, pool: int = 2, gru_hidden: int = 256):
        super().__init__()
        if n_conv_layers < 1 or kernel_size < 1 or pool < 1:
            raise ValueError(f"need n_conv_layers, kernel_size and pool >= 1; got {n_conv_layers}, {kernel_size}, {pool}")
        blocks, in_ch = [], n_features
        for _ in range(n_conv_layers):
            blocks += [nn.Conv1d(in_ch, n_filters, kernel_size, padding=kernel_size // 2),
                       MaskedBatchNorm1d(n_filters), nn.ReLU(), nn.Dropout(dropout)]
            if pool > 1:
                blocks.append(nn.MaxPool1d(pool, stride=pool, ceil_mode=True))
            in_ch = n_filters
        self.cnn = nn.Sequential(*blocks)
        self.gru = nn.GRU(in_ch, gru_hidden, batch_first=True)
        self.out_features = 2 * gru_hidden

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Pooled embedding of ``x`` (B, n_features, T); with ``lengths`` (B,), row i's frames
        from ``lengths[i]`` on are padding and influence nothing (see :mod:`sierlib.layers`)."""
        if lengths is None:
            h = self.cnn(x)                   # (B, n_filters, T')
        else:
            h, lengths = masked_sequential(self.cnn, x, check_lengths(lengths, x))
        return recurrent_stats_pool(self.gru, h.transpose(1, 2), lengths)  # GRU: (B, T', gru_hidden)


def encoder_sizes(encoder: str) -> dict:
    """The assumed sizes of an earlier encoder (its keyword-only constructor defaults), JSON-ready.

    A run records them (``record["encoder_sizes"]``, from
    :attr:`sierlib.config.RunConfig.encoder_sizes`), so that they are recorded
    with every result and enter the run's name hash: a run with other sizes gets another name."""
    classes = {cls.name: cls for cls in (TDNNBiLSTMEncoder, CNN1DGRUEncoder)}
    if encoder not in classes:
        raise ValueError(f"encoder must be one of {', '.join(classes)}; got {encoder!r}")
    sig = inspect.signature(classes[encoder].__init__)
    sizes = {k: v.default for k, v in sig.parameters.items() if v.kind is inspect.Parameter.KEYWORD_ONLY}
    # tuples become lists, as they would after a JSON round trip
    return {k: [list(c) for c in v] if k == "contexts" else v for k, v in sizes.items()}
