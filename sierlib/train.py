"""The training loop (paper section 3.3): fit one network on one fold, one epoch at a time.

:func:`fit` trains a :class:`~sierlib.model.SIERNet` on a fold's training speakers and returns
the weights of every selection method (the epoch with the best validation emotion accuracy,
ties to the lower validation loss; the mean of the last epochs; an exponential moving average);
:func:`predict` scores a network. Loading data, testing, naming and recording a run happen in
:mod:`sierlib.experiments`; the configuration in :mod:`sierlib.config`.

Choices where the paper is silent:

- lambda(p) uses p = (steps done) / (all steps of the run), updated every step;
- a final batch of one utterance is merged into the previous batch (BatchNorm cannot normalise
  a batch of one in training mode);
- the speaker classifier's loss is added to the emotion loss; the gradient-reversal layer makes
  the classifier minimise J_s while the encoder receives -lambda dJ_s, i.e. J = J_e - lambda J_s;
- ``adversary_head_steps`` = k > 1 (not in the paper) gives the speaker head k - 1 more updates
  per batch, alone, on the embeddings of the joint step's forward pass (detached): the encoder
  meets a head that has caught up with it, at the cost of a few small matrix products.
"""
from __future__ import annotations

import math
import random

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix, f1_score, recall_score
from tqdm.auto import tqdm

from .batching import batches, bucket_batches, crop_to_longest
from .model import SIERNet, adversarial_weight


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def resolve_device(device: str) -> torch.device:
    """``"auto"``: CUDA when present, else CPU; ``"cuda[:N]"`` fails clearly without CUDA."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available here; use device='cpu' or 'auto'")
    return torch.device(device)


def build_model(config, n_emotions: int, n_speakers: int, n_features: int) -> SIERNet:
    """The network of a :class:`~sierlib.config.RunConfig` (no speaker branch without AL)."""
    sizes = config.encoder_sizes
    encoder_kwargs = None if sizes is None else {k: tuple(tuple(c) for c in v) if k == "contexts" else v
                                                 for k, v in sizes.items()}
    return SIERNet(n_emotions, n_speakers if config.al else None, n_mfcc=n_features,
                   n_cnn_layers=config.n_cnn_layers, kernel_size=config.kernel_size, n_filters=config.n_filters,
                   gru_hidden=config.gru_hidden, fc_hidden=config.fc_hidden, dropout=config.dropout,
                   encoder=config.encoder, encoder_kwargs=encoder_kwargs, speaker_hidden=config.speaker_fc_hidden,
                   **({"conv_stride": config.conv_stride, "conv_dropout": config.conv_dropout, "pooling": config.pooling,
                       "front_end": config.front_end} if config.encoder == "2dcnn_bigru" else {}))


@torch.no_grad()
def predict(model: SIERNet, X: torch.Tensor, batch_size: int = 64, device=None, lengths: torch.Tensor | None = None):
    """Emotion logits, speaker logits (or None) and embeddings of X, in eval mode, on the CPU.

    With ``lengths`` (the length-aware network) the utterances go through in order of length,
    each batch cut to its longest, and come back in X's order."""
    model.eval()
    device = device or next(model.parameters()).device
    order = torch.arange(len(X)) if lengths is None else torch.argsort(lengths)
    outs = []
    for i in range(0, len(X), batch_size):
        idx = order[i:i + batch_size]
        if lengths is None:
            outs.append(model(X[idx].to(device)))
        else:
            n = lengths[idx]
            x = crop_to_longest(X[idx], n)
            outs.append(model(x.to(device), 0.0, n.to(device)))
    back = torch.argsort(order)
    emo = torch.cat([o[0] for o in outs]).cpu()[back]
    spk = torch.cat([o[1] for o in outs]).cpu()[back] if outs[0][1] is not None else None
    emb = torch.cat([o[2] for o in outs]).cpu()[back]
    return emo, spk, emb


def emotion_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict:
    """WA (accuracy), UAR (mean per-class recall over classes present), macro F1, confusion."""
    k = list(range(len(labels)))
    present = sorted(set(y_true.tolist()))
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "uar": float(recall_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "confusion": confusion_matrix(y_true, y_pred, labels=k).tolist(),
    }


def part_lengths(part: dict, config) -> torch.Tensor | None:
    """The true lengths of a fold role when the run is length-aware, else None (padded inputs)."""
    return part["lengths"] if config.lengths == "masked" else None


def speaker_accuracy(model: SIERNet, part: dict, device, lengths=None) -> float | None:
    """Accuracy of the speaker classifier on the training speakers' utterances (eval mode)."""
    if model.speaker_head is None:
        return None
    _, spk, _ = predict(model, part["X"], device=device, lengths=lengths)
    return float((spk.argmax(1) == part["s"]).float().mean())


def epoch_batches(part: dict, config, generator: torch.Generator) -> list[torch.Tensor]:
    """One epoch's index batches: random (padded inputs), or of similar lengths (masked)."""
    if config.lengths == "masked":
        return bucket_batches(part["lengths"], config.batch_size, generator)
    return batches(len(part["X"]), config.batch_size, generator)


def spec_augment(x: torch.Tensor, lengths: torch.Tensor, config, generator: torch.Generator) -> torch.Tensor:
    """SpecAugment-style masks on standardised features: ``time_masks`` spans of up to
    ``time_mask_frames`` frames (inside each utterance's true length) and ``freq_masks`` bands of
    up to ``freq_mask_rows`` feature rows are set to 0, the training mean. Seeded by
    ``generator``; returns a new tensor."""
    x = x.clone()
    b, rows, frames = x.shape
    for i in range(b):
        n = int(lengths[i])
        for _ in range(config.time_masks):
            w = int(torch.randint(0, config.time_mask_frames + 1, (1,), generator=generator))
            t0 = int(torch.randint(0, max(1, n - w + 1), (1,), generator=generator))
            x[i, :, t0:t0 + w] = 0
        for _ in range(config.freq_masks):
            w = int(torch.randint(0, config.freq_mask_rows + 1, (1,), generator=generator))
            f0 = int(torch.randint(0, max(1, rows - w + 1), (1,), generator=generator))
            x[i, f0:f0 + w, :] = 0
    return x


def train_epoch(model: SIERNet, opt: torch.optim.Optimizer, part: dict, config, generator: torch.Generator,
                lambda_at, first_step: int, device, scheduler=None, averager=None) -> dict:
    """One pass over the training utterances in a seeded random order.

    ``lambda_at(step)`` gives the adversarial weight of a step (0 without AL). Augmentation
    (SpecAugment masks, mixup) draws from ``generator`` too, so a run stays reproducible.
    ``scheduler`` steps the learning rate and ``averager`` (the EMA weights) updates after every
    batch. Losses and counts are summed on the device and read once at the end: a
    ``.item()`` per step would make the host wait for the device at every step."""
    model.train()
    X, y, s, L = part["X"], part["y"], part.get("s"), part["lengths"]
    masked = config.lengths == "masked"
    emo_loss = torch.zeros((), dtype=torch.float64, device=device)
    spk_loss = torch.zeros((), dtype=torch.float64, device=device)
    emo_correct = torch.zeros((), dtype=torch.long, device=device)
    spk_correct = torch.zeros((), dtype=torch.long, device=device)
    step, lam = first_step, 0.0
    for idx in epoch_batches(part, config, generator):
        lam = lambda_at(step)
        yb = y[idx]
        if "speed_X" in part:  # speed perturbation: each utterance at a speed drawn for it (row 0: as recorded)
            k = torch.randint(0, len(part["speed_X"]), (len(idx),), generator=generator)
            xb, nb = part["speed_X"][k, idx], part["speed_lengths"][k, idx]
        else:
            xb, nb = X[idx], L[idx]
        if masked:
            xb = crop_to_longest(xb, nb)
        if config.time_masks or config.freq_masks:
            xb = spec_augment(xb, nb, config, generator)
        mix = None
        if config.mixup_alpha > 0:  # mix each utterance with another of the batch: inputs and targets
            # the mixing weight from the run's generator too (Beta has no generator argument)
            w = float(np.random.default_rng(int(torch.randint(2**31, (1,), generator=generator))).beta(
                config.mixup_alpha, config.mixup_alpha))
            perm = torch.randperm(len(idx), generator=generator)
            xb, nb = w * xb + (1 - w) * xb[perm], torch.maximum(nb, nb[perm])
            mix = (w, perm.to(device))
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        emo, spk, z = model(xb, lam, nb.to(device) if masked else None)

        def ce(logits, target):
            if mix is None:
                return F.cross_entropy(logits, target)
            return mix[0] * F.cross_entropy(logits, target) + (1 - mix[0]) * F.cross_entropy(logits, target[mix[1]])

        loss_e = ce(emo, yb)
        loss = loss_e
        if spk is not None:
            sb = s[idx].to(device, non_blocking=True)
            loss_s = ce(spk, sb)
            loss = loss_e + loss_s  # the reversal inside the model turns this into J_e - lambda J_s for the encoder
            spk_loss += loss_s.detach() * len(idx)
            spk_correct += (spk.argmax(1) == sb).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if spk is not None and config.adversary_head_steps > 1:
            head_steps(model.speaker_head, opt, z.detach(), sb, ce, config.adversary_head_steps - 1)
        if scheduler is not None:
            scheduler.step()
        if averager is not None:
            averager.update(model)
        step += 1
        emo_loss += loss_e.detach() * len(idx)
        emo_correct += (emo.argmax(1) == yb).sum()
    n = len(X)
    row = {"lambda": lam, "train_emotion_loss": emo_loss.item() / n, "train_emotion_accuracy": emo_correct.item() / n}
    if model.speaker_head is not None:
        row["train_speaker_loss"] = spk_loss.item() / n
        row["train_speaker_accuracy"] = spk_correct.item() / n
    return row


def head_steps(head: torch.nn.Module, opt: torch.optim.Optimizer, z: torch.Tensor, target: torch.Tensor, loss_fn,
               n: int) -> None:
    """``n`` more updates of the speaker ``head`` alone on one batch's (detached) embeddings ``z``:
    every other parameter has no gradient, which Adam leaves untouched. The head's BatchNorm
    layers still normalise with the batch's statistics but do not fold them into their running
    statistics again: the batch was counted once, in the joint step (n more would turn momentum
    0.1 into 1 - 0.9^(n+1), and the eval-mode head would see mostly the epoch's last batches)."""
    norms = [m for m in head.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            loss_fn(head(z), target).backward()
            opt.step()
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum


class WeightAverage:
    """A running average of a model's floating-point weights: exponential (``decay``) or, with
    ``decay=None``, the plain mean of every state added (stochastic weight averaging)."""

    def __init__(self, decay: float | None = None):
        self.decay, self.n, self.state = decay, 0, None

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        current = model.state_dict()
        if self.state is None:
            self.state = {k: v.detach().clone() for k, v in current.items()}
        else:
            w = self.decay if self.decay is not None else self.n / (self.n + 1)
            for k, v in current.items():
                if v.is_floating_point():
                    self.state[k].mul_(w).add_(v.detach(), alpha=1 - w)
                else:
                    self.state[k].copy_(v)
        self.n += 1


@torch.no_grad()
def recompute_batchnorm(model: SIERNet, part: dict, config, device) -> None:
    """Set every BatchNorm's running statistics to those of the training utterances under the
    current weights (averaged weights need their own: the running averages of the trained
    network do not match them). One pass in training mode with a cumulative average."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    masked = config.lengths == "masked"
    for idx in epoch_batches(part, config, torch.Generator().manual_seed(config.seed)):
        n = part["lengths"][idx] if masked else None
        x = crop_to_longest(part["X"][idx], n) if masked else part["X"][idx]
        model(x.to(device), 0.0, n.to(device) if masked else None)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


def _cosine_schedule(opt, config, steps_per_epoch: int):
    warm = config.warmup_epochs * steps_per_epoch
    total = config.epochs * steps_per_epoch

    def factor(step):
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def fit(model: SIERNet, data: dict, config, device, progress: bool = True, desc: str = "") -> dict:
    """Train ``model`` on ``data`` (:func:`sierlib.dataset.fold_data`) as ``config`` says.

    Returns ``{"states", "val", "best_epoch", "curves"}``: the weights of every selection
    method (``best_val``: the epoch with the best validation accuracy, ties to the lower
    validation loss; ``swa``: the mean of the last ``swa_epochs`` epochs; ``ema``: the
    exponential moving average of every step), each with BatchNorm statistics of its own, and
    their validation accuracy and loss. ``model`` is left with the weights of the last epoch.
    Call :func:`seed_everything` before building the model: the initial weights and the dropout
    masks then follow the seed."""
    gen = torch.Generator().manual_seed(config.seed)
    if config.adversary_lr_scale != 1 and model.speaker_head is not None:  # the adversary learns at its own rate
        head = {id(p) for p in model.speaker_head.parameters()}
        groups = [{"params": [p for p in model.parameters() if id(p) not in head]},
                  {"params": list(model.speaker_head.parameters()), "lr": config.lr * config.adversary_lr_scale}]
    else:
        groups = model.parameters()
    opt = torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay)
    # the training tensors go to the device once, not batch by batch
    # (the lengths and the speed-perturbed copies are indexed on the host, batch by batch)
    tr = {k: v.to(device) if torch.is_tensor(v) and k not in ("lengths", "speed_X", "speed_lengths") else v
          for k, v in data["train"].items()}
    va = data["val"]
    steps_per_epoch = len(epoch_batches(data["train"], config, torch.Generator().manual_seed(config.seed)))
    total_steps = config.epochs * steps_per_epoch
    scheduler = _cosine_schedule(opt, config, steps_per_epoch) if config.lr_schedule == "cosine" else None
    ema, swa = WeightAverage(config.ema_decay), WeightAverage()

    warm_steps = config.adversary_warmup_epochs * steps_per_epoch

    def lambda_at(step):
        if not config.al or step < warm_steps:
            return 0.0
        return config.lambda_max * adversarial_weight(step / total_steps, config.gamma)

    holdout = data.get("holdout")  # a probe run: the speaker head is scored on utterances it never trained on

    val_speakers = np.asarray(va["speakers"])

    def validate(by_speaker: bool = False):
        logits, _, _ = predict(model, va["X"], device=device, lengths=part_lengths(va, config))
        correct = (logits.argmax(1) == va["y"]).numpy()
        acc, loss = float(correct.mean()), float(F.cross_entropy(logits, va["y"]))
        if not by_speaker:
            return acc, loss
        # per validation speaker, so that the best epoch can be chosen on one speaker and scored
        # on the other (sierlib.recipe): the best epoch's own accuracy is a maximum, biased upward
        return acc, loss, {s: float(correct[val_speakers == s].mean()) for s in sorted(set(va["speakers"]))}

    curves = []
    best = {"val_accuracy": -1.0, "val_loss": math.inf, "best_epoch": None, "best_state": None}
    bar = tqdm(range(config.epochs), desc=desc[:40], unit="epoch", disable=not progress)
    for epoch in bar:
        row = train_epoch(model, opt, tr, config, gen, lambda_at, epoch * steps_per_epoch, device,
                          scheduler=scheduler, averager=ema)
        if epoch >= config.epochs - config.swa_epochs:
            swa.update(model)
        v_acc, v_loss, v_by_speaker = validate(by_speaker=True)
        curves.append({"epoch": epoch + 1, "lambda": row.pop("lambda"),
                       "train_emotion_loss": row.pop("train_emotion_loss"),
                       "train_emotion_accuracy": row.pop("train_emotion_accuracy"),
                       "val_emotion_loss": v_loss, "val_emotion_accuracy": v_acc,
                       "val_speaker_emotion_accuracy": v_by_speaker, **row})
        if holdout is not None and model.speaker_head is not None:
            curves[-1]["holdout_speaker_accuracy"] = speaker_accuracy(model, holdout, device,
                                                                      part_lengths(holdout, config))
        if v_acc > best["val_accuracy"] or (v_acc == best["val_accuracy"] and v_loss < best["val_loss"]):
            best = {"val_accuracy": v_acc, "val_loss": v_loss, "best_epoch": epoch + 1,
                    "best_state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        bar.set_postfix(val_acc=f"{v_acc:.3f}", best=f"{best['val_accuracy']:.3f}")
    states = {"best_val": best["best_state"]}
    val = {"best_val": {"val_accuracy": best["val_accuracy"], "val_loss": best["val_loss"]}}
    last = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for name, average in (("swa", swa), ("ema", ema)):
        model.load_state_dict(average.state)
        recompute_batchnorm(model, data["train"], config, device)
        states[name] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        acc, loss = validate()
        val[name] = {"val_accuracy": acc, "val_loss": loss}
    model.load_state_dict(last)
    return {"states": states, "val": val, "best_epoch": best["best_epoch"], "curves": curves}
