"""The training loop (paper section 3.3): fit one network on one fold, one epoch at a time.

:func:`fit` trains a :class:`~sierlib.model.SIERNet` on a fold's training speakers and keeps
the weights of the epoch with the best validation emotion accuracy (ties: lower validation
loss); :func:`evaluate` scores a network on one role of the fold. Loading data, naming and
recording a run happen in :mod:`sierlib.experiments`; the configuration in :mod:`sierlib.config`.

Choices where the paper is silent:

- lambda(p) uses p = (steps done) / (all steps of the run), updated every step;
- a final batch of one utterance is merged into the previous batch (BatchNorm cannot normalise
  a batch of one in training mode);
- the speaker classifier's loss is added to the emotion loss; the gradient-reversal layer makes
  the classifier minimise J_s while the encoder receives -lambda dJ_s, i.e. J = J_e - lambda J_s.
"""
from __future__ import annotations

import math
import random

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

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


def batches(n: int, batch_size: int, generator: torch.Generator | None = None, shuffle: bool = True):
    """Index batches over n items; a last batch of one is merged into the previous one."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    chunks = list(torch.split(order, batch_size))
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        last = chunks.pop()
        chunks[-1] = torch.cat([chunks[-1], last])
    return chunks


def build_model(config, n_emotions: int, n_speakers: int, n_features: int) -> SIERNet:
    """The network of a :class:`~sierlib.config.RunConfig` (no speaker branch without AL)."""
    sizes = config.encoder_sizes
    encoder_kwargs = None if sizes is None else {k: tuple(tuple(c) for c in v) if k == "contexts" else v
                                                 for k, v in sizes.items()}
    return SIERNet(n_emotions, n_speakers if config.al else None, n_mfcc=n_features,
                   n_cnn_layers=config.n_cnn_layers, kernel_size=config.kernel_size, n_filters=config.n_filters,
                   gru_hidden=config.gru_hidden, fc_hidden=config.fc_hidden, dropout=config.dropout,
                   encoder=config.encoder, encoder_kwargs=encoder_kwargs)


@torch.no_grad()
def predict(model: SIERNet, X: torch.Tensor, batch_size: int = 64, device=None):
    """Emotion logits, speaker logits (or None) and embeddings of X, in eval mode, on the CPU."""
    model.eval()
    device = device or next(model.parameters()).device
    outs = [model(X[i:i + batch_size].to(device)) for i in range(0, len(X), batch_size)]
    emo = torch.cat([o[0] for o in outs]).cpu()
    spk = torch.cat([o[1] for o in outs]).cpu() if outs[0][1] is not None else None
    emb = torch.cat([o[2] for o in outs]).cpu()
    return emo, spk, emb


def emotion_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict:
    """WA (accuracy), UAR (mean per-class recall over classes present), macro F1, confusion."""
    from sklearn.metrics import confusion_matrix, f1_score, recall_score

    k = list(range(len(labels)))
    present = sorted(set(y_true.tolist()))
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "uar": float(recall_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "confusion": confusion_matrix(y_true, y_pred, labels=k).tolist(),
    }


def speaker_accuracy(model: SIERNet, part: dict, device) -> float | None:
    """Accuracy of the speaker classifier on the training speakers' utterances (eval mode)."""
    if model.speaker_head is None:
        return None
    _, spk, _ = predict(model, part["X"], device=device)
    return float((spk.argmax(1) == part["s"]).float().mean())


def train_epoch(model: SIERNet, opt: torch.optim.Optimizer, part: dict, batch_size: int,
                generator: torch.Generator, lambda_at, first_step: int, device) -> dict:
    """One pass over the training utterances in a seeded random order.

    ``lambda_at(step)`` gives the adversarial weight of a step (0 without AL). Losses and counts
    are summed on the device and read once at the end: a ``.item()`` per step would make the
    host wait for the device at every step."""
    model.train()
    X, y, s = part["X"], part["y"], part.get("s")
    emo_loss = torch.zeros((), dtype=torch.float64, device=device)
    spk_loss = torch.zeros((), dtype=torch.float64, device=device)
    emo_correct = torch.zeros((), dtype=torch.long, device=device)
    spk_correct = torch.zeros((), dtype=torch.long, device=device)
    step, lam = first_step, 0.0
    for idx in batches(len(X), batch_size, generator):
        lam = lambda_at(step)
        xb, yb = X[idx].to(device, non_blocking=True), y[idx].to(device, non_blocking=True)
        emo, spk, _ = model(xb, lam)
        loss_e = F.cross_entropy(emo, yb)
        loss = loss_e
        if spk is not None:
            sb = s[idx].to(device, non_blocking=True)
            loss_s = F.cross_entropy(spk, sb)
            loss = loss_e + loss_s  # the reversal inside the model turns this into J_e - lambda J_s for the encoder
            spk_loss += loss_s.detach() * len(idx)
            spk_correct += (spk.argmax(1) == sb).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        emo_loss += loss_e.detach() * len(idx)
        emo_correct += (emo.argmax(1) == yb).sum()
    n = len(X)
    row = {"lambda": lam, "train_emotion_loss": emo_loss.item() / n, "train_emotion_accuracy": emo_correct.item() / n}
    if model.speaker_head is not None:
        row["train_speaker_loss"] = spk_loss.item() / n
        row["train_speaker_accuracy"] = spk_correct.item() / n
    return row


def fit(model: SIERNet, data: dict, config, device, progress: bool = True, desc: str = "") -> dict:
    """Train ``model`` on ``data`` (:func:`sierlib.folds.fold_data`) as ``config`` says.

    Returns ``{"best_state", "best_epoch", "val_accuracy", "val_loss", "curves"}``; ``model``
    is left with the weights of the last epoch. The best state is copied only when validation
    improves, not every epoch. Call :func:`seed_everything` before building the model: the
    initial weights and the dropout masks then follow the seed."""
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    # the training tensors go to the device once, not batch by batch
    tr = {k: v.to(device) if torch.is_tensor(v) else v for k, v in data["train"].items()}
    va = data["val"]
    steps_per_epoch = len(batches(len(tr["X"]), config.batch_size, shuffle=False))
    total_steps = config.epochs * steps_per_epoch

    def lambda_at(step):
        return adversarial_weight(step / total_steps, config.gamma) if config.al else 0.0

    curves = []
    best = {"val_accuracy": -1.0, "val_loss": math.inf, "best_epoch": None, "best_state": None}
    bar = tqdm(range(config.epochs), desc=desc[:40], unit="epoch", disable=not progress)
    for epoch in bar:
        row = train_epoch(model, opt, tr, config.batch_size, gen, lambda_at, epoch * steps_per_epoch, device)
        v_logits, _, _ = predict(model, va["X"], device=device)
        v_loss = float(F.cross_entropy(v_logits, va["y"]))
        v_acc = float((v_logits.argmax(1) == va["y"]).float().mean())
        curves.append({"epoch": epoch + 1, "lambda": row.pop("lambda"),
                       "train_emotion_loss": row.pop("train_emotion_loss"),
                       "train_emotion_accuracy": row.pop("train_emotion_accuracy"),
                       "val_emotion_loss": v_loss, "val_emotion_accuracy": v_acc, **row})
        if v_acc > best["val_accuracy"] or (v_acc == best["val_accuracy"] and v_loss < best["val_loss"]):
            best = {"val_accuracy": v_acc, "val_loss": v_loss, "best_epoch": epoch + 1,
                    "best_state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        bar.set_postfix(val_acc=f"{v_acc:.3f}", best=f"{best['val_accuracy']:.3f}")
    return {**best, "curves": curves}
