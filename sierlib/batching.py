"""Training batches: shuffled index batches, and length-bucketed ones for the length-aware path.

With every utterance zero-padded to the corpus's longest, most of a batch is padding (73 % of a
median Emo-DB input). The masked network (``SIERNet.forward(..., lengths=...)``) makes padding
inert but still computes over it; the time saved comes from not computing it at all: batch
utterances of similar length (:func:`bucket_batches`) and cut each batch to its own longest
utterance (:func:`crop_to_longest`).

No batch holds a single utterance: BatchNorm cannot normalise a batch of one in training mode.
"""
from __future__ import annotations

import torch


def _merge_single(chunks: list[torch.Tensor]) -> list[torch.Tensor]:
    """Merge a last chunk of one index into the chunk before it."""
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        last = chunks.pop()
        chunks[-1] = torch.cat([chunks[-1], last])
    return chunks


def batches(n: int, batch_size: int, generator: torch.Generator | None = None, shuffle: bool = True):
    """Index batches over n items; a last batch of one is merged into the previous one.

    Parameters
    ----------
    n : int
        Number of items.
    batch_size : int
        Items per batch (the last batch may hold fewer, or one more).
    generator : torch.Generator, optional
        Source of the shuffle, for reproducible epochs.
    shuffle : bool
        Shuffle the items (default), or keep them in order.

    Returns
    -------
    list of torch.Tensor
        int64 index tensors that together hold every index in ``range(n)`` once.
    """
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    return _merge_single(list(torch.split(order, batch_size)))


def bucket_batches(lengths, batch_size: int, generator: torch.Generator | None = None,
                   batches_per_bucket: int = 4) -> list[torch.Tensor]:
    """Index batches of utterances of similar length, reshuffled every epoch.

    The utterances are sorted by length and cut into buckets of ``batches_per_bucket *
    batch_size`` consecutive ones (so a bucket spans a narrow range of lengths); each epoch, every
    bucket is shuffled and split into batches, and the batches of all buckets are shuffled
    together. A batch thus pads only to the longest utterance of its bucket, while its members
    still change from epoch to epoch.

    Parameters
    ----------
    lengths : array_like of int
        Frames of each utterance (e.g. :attr:`sierlib.features.Features.n_frames`).
    batch_size : int
        Utterances per batch (a bucket's last batch may hold fewer, or one more).
    generator : torch.Generator, optional
        Source of both shuffles, for reproducible epochs.
    batches_per_bucket : int
        Bucket size in batches: 1 gives the same batches every epoch (least padding), large
        values approach :func:`batches` (most shuffling).

    Returns
    -------
    list of torch.Tensor
        int64 index tensors that together hold every index in ``range(len(lengths))`` once;
        none holds a single index unless there is only one utterance.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size!r}")
    if batches_per_bucket < 1:
        raise ValueError(f"batches_per_bucket must be >= 1; got {batches_per_bucket!r}")
    lengths = torch.as_tensor(lengths)
    # stable: equal lengths keep index order, so buckets depend on the lengths alone
    by_length = torch.argsort(lengths, stable=True)
    buckets = _merge_single(list(torch.split(by_length, batches_per_bucket * batch_size)))
    chunks = []
    for bucket in buckets:
        shuffled = bucket[torch.randperm(len(bucket), generator=generator)]
        chunks += _merge_single(list(torch.split(shuffled, batch_size)))
    return [chunks[i] for i in torch.randperm(len(chunks), generator=generator).tolist()]


def frames_computed(batches: list[torch.Tensor], lengths) -> int:
    """Frames a network computes over one epoch of ``batches`` when each batch is cut to its
    longest utterance (:func:`crop_to_longest`): the sum over batches of size x longest length.

    With the padded widths as ``lengths`` this is what the padded path computes, so the ratio of
    the two is the ceiling of the speed-up that length-aware batches can bring (the benchmark
    ``sier benchmark lengths`` prints it beside the measured one)."""
    lengths = torch.as_tensor(lengths)
    return sum(len(b) * int(lengths[b].max()) for b in batches if len(b))


def crop_to_longest(X: torch.Tensor, lengths) -> torch.Tensor:
    """``X`` (batch, ..., frames) cut to the longest of the batch's ``lengths`` (a view)."""
    return X[..., :int(torch.as_tensor(lengths).max())]
