"""Training and evaluation of one run: one corpus, one fold, one setting (paper sections 3.3, 4).

A run trains on the fold's training speakers, keeps the checkpoint with the best validation
emotion accuracy (ties: lower validation loss), evaluates that checkpoint once on the test
speakers, and writes a JSON record under ``results/runs/<corpus>/``.

Choices where the paper is silent (all are parameters of :func:`train_run`):

- Adam, learning rate 1e-3, batch size 16, 30 epochs, no weight decay; the architecture default
  is the cheapest point of the paper's grid (kernel 5, 64 filters, GRU 128, FC 64) so that a
  fold trains in a few minutes on two CPU cores; the sweep covers the rest of the grid;
- features are standardised per MFCC coefficient with statistics of the training speakers only;
- the encoder (``encoder``: the paper's 2D CNN biGRU, or the TDNN biLSTM / 1D CNN GRU of its
  Table 2, see :mod:`sierlib.encoders`) picks the feature kind (:data:`ENCODER_FEATURES`): MFCC,
  or 40 log-Mel + energy + pitch for the 1D CNN GRU; everything else is the same for all three.
  The 2D CNN biGRU's sizes (``n_cnn_layers``, ``kernel_size``, ``n_filters``, ``gru_hidden``)
  must stay at their defaults for the other two encoders, which have their own (documented)
  sizes, so that no two run names describe the same network;
- lambda(p) uses p = (steps done) / (all steps of the run), updated every step;
- a final batch of one utterance is merged into the previous batch (BatchNorm cannot normalise
  a batch of one in training mode);
- the speaker classifier's loss is added to the emotion loss; the gradient-reversal layer makes
  the classifier minimise J_s while the encoder receives -lambda dJ_s, i.e. J = J_e - lambda J_s.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import platform
import random
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .corpora import REPO_ROOT, check_corpus_name, load_metadata
from .features import Features, check_feature_params, extract_features, fit_standardiser, standardise
from .folds import N_FOLDS, fold_speakers, make_folds, split_metadata
from .model import SIERNet, adversarial_weight

EMOTIONS = {
    "emodb": ["anger", "boredom", "disgust", "fear", "happiness", "sadness", "neutral"],
    "ravdess": ["anger", "calm", "disgust", "fear", "happiness", "sadness", "neutral", "surprise"],
    "synthetic": ["anger", "boredom", "disgust", "fear", "happiness", "sadness", "neutral"],
}

DEFAULTS = dict(corpus="emodb", fold=0, gamma=3.33, n_cnn_layers=1, kernel_size=5, n_filters=64,
                gru_hidden=128, fc_hidden=64, dropout=0.3, epochs=30, batch_size=16, lr=1e-3,
                weight_decay=0.0, seed=0, device="auto", encoder="2dcnn_bigru")
# Parameters added after records already existed: left out of a run's name hash while at their
# default, so that older records keep their names (and sweeps still find them finished).
LATER_PARAMS = {"encoder": "2dcnn_bigru"}
ENCODERS = ("2dcnn_bigru", "tdnn_bilstm", "1dcnn_gru")
# The feature kind (sierlib.features) each encoder reads, as in the paper's Table 2.
ENCODER_FEATURES = {"2dcnn_bigru": "mfcc", "tdnn_bilstm": "mfcc", "1dcnn_gru": "fbank_energy_pitch"}
# Run parameters that size the 2D CNN biGRU encoder only.
CNN2D_PARAMS = ("n_cnn_layers", "kernel_size", "n_filters", "gru_hidden")


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def check_params(p: dict, n_folds: int | None = None) -> dict:
    """Validate run parameters; raises ValueError naming the parameter and what it accepts."""
    check_corpus_name(p["corpus"])
    if n_folds is None:
        n_folds = N_FOLDS.get(p["corpus"])
    if not _is_int(p["fold"]) or p["fold"] < 0 or (n_folds is not None and p["fold"] >= n_folds):
        raise ValueError(f"fold must be an int in 0..{(n_folds or 1) - 1} for {p['corpus']}; got {p['fold']!r}")
    if p["gamma"] is not None and (not _is_num(p["gamma"]) or not math.isfinite(p["gamma"]) or p["gamma"] <= 0):
        raise ValueError(f"gamma must be a positive number, or None for the network without AL; got {p['gamma']!r}")
    rules = {"n_cnn_layers": (1, 4), "kernel_size": (1, 11), "n_filters": (1, 4096), "gru_hidden": (1, 4096),
             "fc_hidden": (1, 4096), "epochs": (1, 10000), "batch_size": (2, 65536), "seed": (0, 2**32 - 1)}
    for name, (lo, hi) in rules.items():
        if not _is_int(p[name]) or not lo <= p[name] <= hi:
            raise ValueError(f"{name} must be an int in {lo}..{hi}; got {p[name]!r}")
    if not _is_num(p["dropout"]) or not 0 <= p["dropout"] < 1:
        raise ValueError(f"dropout must be a number in [0, 1); got {p['dropout']!r}")
    if not _is_num(p["lr"]) or not 0 < p["lr"] < 10:
        raise ValueError(f"lr must be a positive number; got {p['lr']!r}")
    if not _is_num(p["weight_decay"]) or p["weight_decay"] < 0:
        raise ValueError(f"weight_decay must be a number >= 0; got {p['weight_decay']!r}")
    if p.get("encoder", "2dcnn_bigru") not in ENCODERS:
        raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}; got {p.get('encoder')!r}")
    if p.get("encoder", "2dcnn_bigru") != "2dcnn_bigru":
        changed = [f"{k}={p[k]!r}" for k in CNN2D_PARAMS if p[k] != DEFAULTS[k]]
        if changed:
            raise ValueError(f"{', '.join(changed)}: {', '.join(CNN2D_PARAMS)} size the 2dcnn_bigru encoder only; "
                             f"leave them at their defaults for encoder {p['encoder']!r}")
    if not isinstance(p["device"], str) or not (p["device"] in ("auto", "cpu") or p["device"].startswith("cuda")):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]'; got {p['device']!r}")
    return p


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available here; use device='cpu' or 'auto'")
    return torch.device(device)


def make_params(features: dict | None = None, **kwargs) -> dict:
    """The full, validated parameter set of a run (DEFAULTS updated by kwargs), with the feature
    parameters under "features"; this is what names the run and what its record stores.

    The feature kind follows the encoder (:data:`ENCODER_FEATURES`); ``features`` may set the
    other feature parameters, and may name the kind (``"kind"``; a dict with ``"n_mfcc"`` and no
    ``"kind"`` is an MFCC one) only if it is the encoder's: a mismatch raises ValueError."""
    unknown = set(kwargs) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown run parameters {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    params = {**DEFAULTS, **kwargs}
    if _is_num(params["gamma"]):
        params["gamma"] = float(params["gamma"])
    for name in ("lr", "dropout", "weight_decay"):
        if _is_num(params[name]):
            params[name] = float(params[name])
    check_params(params)
    encoder = params["encoder"]
    kind = ENCODER_FEATURES[encoder]
    features = dict(features or {})
    given = features.get("kind", "mfcc" if "n_mfcc" in features else None)
    if given is not None and given != kind:
        raise ValueError(f"encoder {encoder!r} reads features of kind {kind!r}, but the feature parameters are of "
                         f"kind {given!r}; leave 'kind' out to get the encoder's")
    params["features"] = check_feature_params(**{**features, "kind": kind})
    if encoder != "2dcnn_bigru":
        from .encoders import encoder_sizes

        params["encoder_sizes"] = encoder_sizes(encoder)  # recorded, and part of the name hash
    return params


def run_name(params: dict) -> str:
    """File name of a run's record: readable settings plus a hash of every parameter."""
    g = "none" if params["gamma"] is None else f"{params['gamma']:g}"
    hashed = {k: v for k, v in params.items() if not (k in LATER_PARAMS and v == LATER_PARAMS[k])}
    digest = hashlib.sha256(json.dumps(hashed, sort_keys=True, default=str).encode()).hexdigest()[:8]
    if params.get("encoder", "2dcnn_bigru") != "2dcnn_bigru":
        # the 2D CNN sizes do not apply; the earlier encoder's own sizes are in the hash
        return (f"{params['corpus']}-{params['encoder']}-fold{params['fold']}-gamma{g}"
                f"-fc{params['fc_hidden']}-seed{params['seed']}-{digest}")
    return (f"{params['corpus']}-fold{params['fold']}-gamma{g}-L{params['n_cnn_layers']}"
            f"-k{params['kernel_size']}-c{params['n_filters']}-h{params['gru_hidden']}"
            f"-fc{params['fc_hidden']}-seed{params['seed']}-{digest}")


def _encoder_kwargs(params: dict) -> dict | None:
    """Constructor arguments of an earlier encoder from a run's recorded ``encoder_sizes``."""
    sizes = params.get("encoder_sizes")
    if not sizes:
        return None
    return {k: tuple(tuple(c) for c in v) if k == "contexts" else v for k, v in sizes.items()}


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def batches(n: int, batch_size: int, generator: torch.Generator | None = None, shuffle: bool = True):
    """Index batches over n items; a last batch of one is merged into the previous one."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    chunks = list(torch.split(order, batch_size))
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        last = chunks.pop()
        chunks[-1] = torch.cat([chunks[-1], last])
    return chunks


@torch.no_grad()
def predict(model: SIERNet, X: torch.Tensor, batch_size: int = 64, device=None):
    """Emotion logits, speaker logits (or None) and embeddings of X, in eval mode."""
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


def prepare_fold(meta: pd.DataFrame, feats: Features, fold: int, folds: pd.DataFrame | None = None) -> dict:
    """Standardised tensors and labels of one fold (statistics from training speakers only)."""
    corpus = str(meta["corpus"].iloc[0])
    folds = make_folds(meta) if folds is None else folds
    parts = split_metadata(meta, folds, fold)
    train_speakers = fold_speakers(folds, fold)["train"]
    emo_index = {e: i for i, e in enumerate(EMOTIONS[corpus])}
    unknown = set(meta["emotion"]) - set(emo_index)
    if unknown:
        raise ValueError(f"unknown emotion labels {sorted(unknown)} for {corpus}")
    mean, std = fit_standardiser(feats.select(parts["train"]))
    out = {"emotions": EMOTIONS[corpus], "train_speakers": train_speakers, "mean": mean, "std": std}
    for role, m in parts.items():
        out[role] = {
            "X": torch.from_numpy(standardise(feats.select(m), mean, std)),
            "y": torch.tensor([emo_index[e] for e in m["emotion"]]),
            "speakers": m["speaker"].tolist(),
        }
    spk_index = {s: i for i, s in enumerate(train_speakers)}
    out["train"]["s"] = torch.tensor([spk_index[s] for s in out["train"]["speakers"]])
    return out


# What a run executes; "-dirty" marks a record whose run started with uncommitted changes here.
# Changes elsewhere (README, papers/, results/ -- which every sweep rewrites) do not touch a run.
RUN_CODE_PATHS = ("sierlib", "notebooks/04_train.ipynb", "pyproject.toml")


def _git_commit(repo: str | os.PathLike = REPO_ROOT) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *RUN_CODE_PATHS],
                               cwd=repo, capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _versions() -> dict:
    import librosa
    import sklearn

    from . import __version__

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "librosa": librosa.__version__, "pandas": pd.__version__, "sklearn": sklearn.__version__,
            "sierlib": __version__}


def write_json_atomic(record: dict, path: str | os.PathLike) -> Path:
    """Write JSON to a temporary file in the same folder and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_record(path: str | os.PathLike) -> dict | None:
    """A finished run's record, or None if the file is absent, unreadable or unfinished."""
    try:
        with open(path) as f:
            rec = json.load(f)
    except (OSError, ValueError):
        return None
    return rec if rec.get("status") == "finished" else None


def train_run(corpus: str = "emodb", fold: int = 0, gamma: float | None = 3.33, *,
              n_cnn_layers: int = 1, kernel_size: int = 5, n_filters: int = 64, gru_hidden: int = 128,
              fc_hidden: int = 64, dropout: float = 0.3, epochs: int = 30, batch_size: int = 16,
              lr: float = 1e-3, weight_decay: float = 0.0, seed: int = 0, device: str = "auto",
              encoder: str = "2dcnn_bigru", data_root=None, out_dir=None, meta: pd.DataFrame | None = None,
              feats: Features | None = None, feature_params: dict | None = None,
              progress: bool = True, save: bool = True, return_model: bool = False,
              checkpoint_dir=None):
    """Train and evaluate one run; returns its record (and the model if ``return_model``).

    ``gamma=None`` trains the network without AL (no speaker branch). ``encoder`` picks the
    encoder and with it the feature kind (:data:`ENCODER_FEATURES`). ``meta``/``feats`` may be
    passed to reuse loaded metadata and features across runs (``feats`` must be of the encoder's
    kind and parameters). The record is written atomically to
    ``<out_dir>/<corpus>/<run_name>.json`` (``out_dir`` default ``results/runs``); with
    ``checkpoint_dir`` the selected weights go to ``<checkpoint_dir>/<corpus>/<run_name>.pt``.
    """
    params = make_params(corpus=corpus, fold=fold, gamma=gamma, n_cnn_layers=n_cnn_layers,
                         kernel_size=kernel_size, n_filters=n_filters, gru_hidden=gru_hidden,
                         fc_hidden=fc_hidden, dropout=dropout, epochs=epochs, batch_size=batch_size, lr=lr,
                         weight_decay=weight_decay, seed=seed, device=device, encoder=encoder,
                         features=feature_params)
    dev = resolve_device(device)
    t0 = time.time()
    commit = _git_commit()  # the code this run starts with, not whatever is checked out when it ends
    if meta is None:
        meta = load_metadata(corpus, data_root)
    if feats is None:
        feats = extract_features(meta, progress=progress, **params["features"])
    elif feats.params != params["features"]:
        raise ValueError(f"feats were computed with {feats.params}, but the run (encoder {encoder!r}) asks for "
                         f"{params['features']}")
    data = prepare_fold(meta, feats, fold)
    _seed_everything(seed)
    gen = torch.Generator().manual_seed(seed)
    n_spk = len(data["train_speakers"]) if gamma is not None else None
    model = SIERNet(len(data["emotions"]), n_spk, n_mfcc=feats.X.shape[1], n_cnn_layers=n_cnn_layers,
                    kernel_size=kernel_size, n_filters=n_filters, gru_hidden=gru_hidden,
                    fc_hidden=fc_hidden, dropout=dropout, encoder=encoder,
                    encoder_kwargs=_encoder_kwargs(params)).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    tr, va, te = data["train"], data["val"], data["test"]
    steps_per_epoch = len(batches(len(tr["X"]), batch_size, shuffle=False))
    total_steps = epochs * steps_per_epoch
    step = 0
    curves = []
    best = {"val_accuracy": -1.0, "val_loss": math.inf, "epoch": None, "state": None}
    bar = tqdm(range(epochs), desc=run_name(params)[:40], unit="epoch", disable=not progress)
    for epoch in bar:
        model.train()
        sums = {"emotion_loss": 0.0, "emotion_correct": 0, "speaker_loss": 0.0, "speaker_correct": 0, "n": 0}
        for idx in batches(len(tr["X"]), batch_size, gen):
            lam = adversarial_weight(step / total_steps, gamma) if gamma is not None else 0.0
            x, y = tr["X"][idx].to(dev), tr["y"][idx].to(dev)
            emo, spk, _ = model(x, lam)
            loss_e = F.cross_entropy(emo, y)
            loss = loss_e
            if spk is not None:
                s = tr["s"][idx].to(dev)
                loss_s = F.cross_entropy(spk, s)
                loss = loss_e + loss_s  # reversal inside the model turns this into J_e - lambda J_s for the encoder
                sums["speaker_loss"] += loss_s.item() * len(idx)
                sums["speaker_correct"] += int((spk.argmax(1) == s).sum())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            sums["emotion_loss"] += loss_e.item() * len(idx)
            sums["emotion_correct"] += int((emo.argmax(1) == y).sum())
            sums["n"] += len(idx)
        v_logits, _, _ = predict(model, va["X"], device=dev)
        v_loss = float(F.cross_entropy(v_logits, va["y"]))
        v_acc = float((v_logits.argmax(1) == va["y"]).float().mean())
        row = {"epoch": epoch + 1, "lambda": lam,
               "train_emotion_loss": sums["emotion_loss"] / sums["n"],
               "train_emotion_accuracy": sums["emotion_correct"] / sums["n"],
               "val_emotion_loss": v_loss, "val_emotion_accuracy": v_acc}
        if gamma is not None:
            row["train_speaker_loss"] = sums["speaker_loss"] / sums["n"]
            row["train_speaker_accuracy"] = sums["speaker_correct"] / sums["n"]
        curves.append(row)
        if v_acc > best["val_accuracy"] or (v_acc == best["val_accuracy"] and v_loss < best["val_loss"]):
            best = {"val_accuracy": v_acc, "val_loss": v_loss, "epoch": epoch + 1,
                    "state": copy.deepcopy(model.state_dict())}
        bar.set_postfix(val_acc=f"{v_acc:.3f}", best=f"{best['val_accuracy']:.3f}")

    final_state = copy.deepcopy(model.state_dict())
    speaker_acc_final = _speaker_accuracy(model, tr, dev)
    model.load_state_dict(best["state"])
    t_logits, _, _ = predict(model, te["X"], device=dev)
    t_pred = t_logits.argmax(1).numpy()
    metrics = emotion_metrics(te["y"].numpy(), t_pred, data["emotions"])
    record = {
        "status": "finished",
        "name": run_name(params),
        "params": params,
        "synthetic": corpus == "synthetic",
        "speakers": {"train": data["train_speakers"], "val": sorted(set(va["speakers"])),
                     "test": sorted(set(te["speakers"]))},
        "n_utterances": {"train": len(tr["X"]), "val": len(va["X"]), "test": len(te["X"])},
        "emotions": data["emotions"],
        "test_accuracy": metrics["accuracy"], "test_uar": metrics["uar"], "test_macro_f1": metrics["macro_f1"],
        "test_confusion": metrics["confusion"],
        "val_accuracy": best["val_accuracy"], "best_epoch": best["epoch"],
        "train_speaker_accuracy_final": speaker_acc_final,
        "train_speaker_accuracy_best": _speaker_accuracy(model, tr, dev),
        "curves": curves,
        "wall_time_s": time.time() - t0,
        "device": str(dev) if dev.type == "cpu" else f"{dev} ({torch.cuda.get_device_name(dev)})",
        "torch_threads": torch.get_num_threads(),
        "versions": _versions(),
        "git_commit": commit,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if checkpoint_dir is not None:  # the selected weights, for later analysis (e.g. sierlib.probe)
        ckpt = Path(checkpoint_dir) / corpus / f"{record['name']}.pt"
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        tmp = ckpt.with_name(f".{ckpt.name}.tmp")
        torch.save({"name": record["name"], "params": params, "state_dict": best["state"]}, tmp)
        os.replace(tmp, ckpt)
        record["checkpoint"] = str(ckpt)
    if save:
        out_dir = Path(out_dir) if out_dir is not None else REPO_ROOT / "results" / "runs"
        record["path"] = str(write_json_atomic(record, out_dir / corpus / f"{record['name']}.json"))
    if return_model:
        model.load_state_dict(best["state"])
        model.final_state = final_state
        return record, model
    return record


def _speaker_accuracy(model: SIERNet, part: dict, dev) -> float | None:
    """Accuracy of the speaker classifier on the training speakers' utterances (eval mode)."""
    if model.speaker_head is None:
        return None
    _, spk, _ = predict(model, part["X"], device=dev)
    return float((spk.argmax(1) == part["s"]).float().mean())
