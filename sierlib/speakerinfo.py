"""How much speaker identity a trained network's pooled embedding holds, and how much emotion.

Measured on a *probe run*: a run with ``speaker_holdout > 0`` holds a stratified share of each
training speaker's utterances out of training (:func:`sierlib.dataset.fold_data`), so that the
encoder never saw them. With the selected weights, in evaluation mode:

- **speaker identification on held-out utterances of the training speakers**: a probe is fitted
  on the embeddings of the training utterances and scored on the held-out ones, once linear
  (standardised logistic regression) and once a small MLP (one hidden layer of 128); chance is
  1 / the number of training speakers. The adversary's own speaker head is scored on the same
  held-out utterances (for AL runs and the capacity control, ``lambda_max = 0``);
- **speaker verification on unseen speakers**: the fold's validation and test speakers, every
  pair of their utterances scored by the cosine of their embeddings; the equal error rate (EER)
  of telling same-speaker from different-speaker pairs, once on the raw embeddings and once
  standardised per dimension with the training utterances' mean and std (as speaker
  verification does before cosine scoring; nothing of the unseen speakers is fitted). Chance is
  50 %: an embedding from which speakers cannot be told apart;
- **emotion identification on the same held-out utterances** (linear probe), for contrast:
  chance is 1 / the number of emotions.

Every figure is a fraction in [0, 1]; :func:`speaker_information` returns them with their chance
levels, and :func:`sierlib.experiments.run` records them as ``record["speaker_information"]``.
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .model import SIERNet
from .train import part_lengths, predict

PROBE_HIDDEN = 128  # the MLP probe's hidden layer


def linear_probe(train_X: np.ndarray, train_y, test_X: np.ndarray, test_y) -> float:
    """Accuracy on ``test_X`` of a standardised logistic regression fitted on ``train_X``."""
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    clf.fit(train_X, np.asarray(train_y))
    return float(clf.score(test_X, np.asarray(test_y)))


def mlp_probe(train_X: np.ndarray, train_y, test_X: np.ndarray, test_y, seed: int = 0) -> float:
    """Accuracy on ``test_X`` of a one-hidden-layer MLP (``PROBE_HIDDEN`` ReLU units, Adam,
    weight decay 1e-3, early stopping on 10 % of its training data) fitted on ``train_X``."""
    clf = make_pipeline(StandardScaler(), MLPClassifier((PROBE_HIDDEN,), alpha=1e-3, max_iter=500,
                                                        early_stopping=True, random_state=seed))
    clf.fit(train_X, np.asarray(train_y))
    return float(clf.score(test_X, np.asarray(test_y)))


def verification_eer(embeddings: np.ndarray, speakers, mean: np.ndarray | None = None,
                     std: np.ndarray | None = None) -> float:
    """Equal error rate of cosine scoring over every pair of utterances: same speaker (target)
    against different speakers (non-target). 0.5 where the embedding cannot tell them apart.
    With ``mean`` and ``std`` (per dimension, e.g. of the training utterances' embeddings) the
    embeddings are standardised first: an offset that every embedding shares (a pooled standard
    deviation is never negative) otherwise dominates the cosine."""
    e = np.asarray(embeddings, dtype=np.float64)
    if mean is not None:
        e = (e - mean) / np.maximum(std if std is not None else 1.0, 1e-8)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    spk = np.asarray(speakers)
    i, j = np.triu_indices(len(e), k=1)
    scores = np.einsum("nd,nd->n", e[i], e[j])
    target = spk[i] == spk[j]
    if target.all() or not target.any():
        raise ValueError("the EER needs pairs of the same and of different speakers")
    order = np.argsort(-scores, kind="stable")
    t = target[order]
    # accept the k highest-scoring pairs, for every k: false rejections and false acceptances
    frr = 1 - np.concatenate([[0], np.cumsum(t)]) / t.sum()
    far = np.concatenate([[0], np.cumsum(~t)]) / (~t).sum()
    k = int(np.argmin(np.abs(frr - far)))
    return float((frr[k] + far[k]) / 2)


def embed_part(model: SIERNet, part: dict, config, device) -> tuple[np.ndarray, np.ndarray | None]:
    """The pooled embeddings of a fold role and its speaker head's predictions (None without a head)."""
    _, spk, emb = predict(model, part["X"], device=device, lengths=part_lengths(part, config))
    return emb.numpy(), None if spk is None else spk.argmax(1).numpy()


def speaker_information(model: SIERNet, data: dict, config, device, seed: int = 0) -> dict:
    """The measurements of the module docstring for a network and its fold (which must hold the
    ``holdout`` role of a run with ``speaker_holdout > 0``)."""
    if "holdout" not in data:
        raise ValueError("speaker information is measured on held-out utterances of the training speakers: "
                         "train with speaker_holdout > 0 (e.g. 0.2)")
    tr, ho = data["train"], data["holdout"]
    e_tr, _ = embed_part(model, tr, config, device)
    e_ho, head = embed_part(model, ho, config, device)
    unseen = {k: torch.cat([data["val"][k], data["test"][k]]) for k in ("X", "lengths")}
    e_unseen, _ = embed_part(model, unseen, config, device)
    n_speakers, n_emotions = len(data["train_speakers"]), len(data["emotions"])
    s_tr, s_ho = tr["s"].cpu().numpy(), ho["s"].cpu().numpy()
    unseen_speakers = data["val"]["speakers"] + data["test"]["speakers"]
    return {
        "n_train_utterances": len(e_tr), "n_holdout_utterances": len(e_ho), "n_unseen_speakers":
            len(set(data["val"]["speakers"]) | set(data["test"]["speakers"])),
        "speaker_linear_probe": linear_probe(e_tr, s_tr, e_ho, s_ho),
        "speaker_mlp_probe": mlp_probe(e_tr, s_tr, e_ho, s_ho, seed=seed),
        "speaker_head": None if head is None else float((head == s_ho).mean()),
        "speaker_chance": 1 / n_speakers,
        "unseen_speaker_eer": verification_eer(e_unseen, unseen_speakers),
        "unseen_speaker_eer_standardised": verification_eer(e_unseen, unseen_speakers, e_tr.mean(0), e_tr.std(0)),
        "eer_chance": 0.5,
        "emotion_linear_probe": linear_probe(e_tr, tr["y"].cpu().numpy(), e_ho, ho["y"].cpu().numpy()),
        "emotion_chance": 1 / n_emotions,
    }
