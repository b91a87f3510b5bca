"""How much speaker identity is left in the pooled embedding: a linear probe.

For a trained network (with or without AL) we freeze the encoder, embed the utterances of the
fold's *training* speakers, split each speaker's utterances in half (stratified by speaker and
emotion where possible), fit a logistic regression on one half to predict the speaker and
report its accuracy on the other half. Chance is 1 / (number of training speakers). A lower
probe accuracy with AL than without is direct evidence for the paper's central claim that AL
removes speaker information. Test speakers are not involved.

The network is retrained with the exact settings (and seed) of its run record; training on the
CPU is deterministic for a given seed, so the retrained network is the one the record describes
(the probe checks this by comparing test accuracy with the record's).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .corpora import REPO_ROOT, load_metadata
from .features import extract_features
from .train import N_FOLDS, predict, prepare_fold, read_record, train_run


def speaker_probe(embeddings: np.ndarray, speakers: list, emotions: np.ndarray | None = None,
                  seed: int = 0) -> float:
    """Held-out accuracy of a logistic-regression speaker probe on frozen embeddings."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(speakers)
    strata = y if emotions is None else np.char.add(y.astype(str), np.asarray(emotions).astype(str))
    try:
        a, b = train_test_split(np.arange(len(y)), test_size=0.5, random_state=seed, stratify=strata)
    except ValueError:  # a speaker-emotion cell with one utterance: stratify by speaker only
        a, b = train_test_split(np.arange(len(y)), test_size=0.5, random_state=seed, stratify=y)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, C=1.0))
    clf.fit(embeddings[a], y[a])
    return float(clf.score(embeddings[b], y[b]))


def probe_run(corpus: str, fold: int, gamma, meta=None, feats=None, data_root=None, checkpoint_dir=None,
              **run_kwargs) -> dict:
    """Probe one run's embedding for speaker identity.

    The network is loaded from its checkpoint (``cache/checkpoints/<corpus>/<run>.pt``, written
    by ``sier reproduce``) when there is one; otherwise it is retrained with the settings, seed
    and CPU thread count of its committed record. ``same_as_record`` says whether the network
    probed reproduces the record's test accuracy exactly.
    """
    import torch

    from .model import SIERNet
    from .train import _encoder_kwargs, make_params, run_name

    meta = load_metadata(corpus, data_root) if meta is None else meta
    feats = extract_features(meta, progress=False) if feats is None else feats
    params = make_params(corpus=corpus, fold=fold, gamma=gamma, features=feats.params, **run_kwargs)
    name = run_name(params)
    committed = read_record(REPO_ROOT / "results" / "runs" / corpus / f"{name}.json")
    data = prepare_fold(meta, feats, fold)
    ckpt = Path(checkpoint_dir or REPO_ROOT / "cache" / "checkpoints") / corpus / f"{name}.pt"
    if ckpt.is_file():
        model = SIERNet(len(data["emotions"]), len(data["train_speakers"]) if gamma is not None else None,
                        n_mfcc=feats.X.shape[1], n_cnn_layers=params["n_cnn_layers"],
                        kernel_size=params["kernel_size"], n_filters=params["n_filters"],
                        gru_hidden=params["gru_hidden"], fc_hidden=params["fc_hidden"], dropout=params["dropout"],
                        encoder=params["encoder"], encoder_kwargs=_encoder_kwargs(params))
        model.load_state_dict(torch.load(ckpt, weights_only=False)["state_dict"])
        logits, _, _ = predict(model, data["test"]["X"])
        test_accuracy = float(np.mean(logits.argmax(1).numpy() == data["test"]["y"].numpy()))  # as train_run
        source = "checkpoint"
        head_acc = committed["train_speaker_accuracy_best"] if committed else None
    else:
        threads = torch.get_num_threads()
        if committed and committed.get("torch_threads"):
            torch.set_num_threads(committed["torch_threads"])  # CPU results depend on the thread count
        try:
            kwargs = {k: v for k, v in params.items() if k not in ("corpus", "fold", "gamma", "features")}
            record, model = train_run(corpus, fold, gamma, meta=meta, feats=feats, feature_params=feats.params,
                                      save=False, progress=False, return_model=True, **kwargs)
        finally:
            torch.set_num_threads(threads)
        test_accuracy, source, head_acc = record["test_accuracy"], "retrained", record["train_speaker_accuracy_best"]
    _, _, emb = predict(model, data["train"]["X"])
    emo = data["train"]["y"].numpy()
    return {"corpus": corpus, "fold": fold, "gamma": gamma, "run": name, "network": source,
            "test_accuracy": test_accuracy,
            "same_as_record": None if committed is None else committed["test_accuracy"] == test_accuracy,
            "n_train_speakers": len(data["train_speakers"]), "chance": 1 / len(data["train_speakers"]),
            "speaker_probe_accuracy": speaker_probe(emb.numpy(), data["train"]["speakers"], emo),
            "speaker_head_accuracy": head_acc}


def run_probes(corpus: str = "emodb", gammas=(3.33, None), folds=None, out_csv=None, data_root=None) -> pd.DataFrame:
    """Probe every fold for each gamma; rows are appended to ``results/probe_<corpus>.csv`` as
    they finish (finished (fold, gamma) pairs are skipped, so it resumes)."""
    out_csv = Path(out_csv) if out_csv is not None else REPO_ROOT / "results" / f"probe_{corpus}.csv"
    done = pd.read_csv(out_csv) if out_csv.is_file() else pd.DataFrame(columns=["fold", "gamma"])
    have = {(int(f), None if pd.isna(g) else float(g)) for f, g in zip(done["fold"], done["gamma"])}
    meta = load_metadata(corpus, data_root)
    feats = extract_features(meta, progress=False)
    rows = done.to_dict("records")
    for gamma in gammas:
        for fold in (range(N_FOLDS[corpus]) if folds is None else folds):
            if (fold, gamma) in have:
                continue
            rows.append(probe_run(corpus, fold, gamma, meta=meta, feats=feats))
            tmp = out_csv.with_suffix(".csv.tmp")
            pd.DataFrame(rows).to_csv(tmp, index=False)
            os.replace(tmp, out_csv)
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="emodb", choices=["emodb", "ravdess"])
    ap.add_argument("--folds", type=int, nargs="+", default=None)
    args = ap.parse_args()
    print(run_probes(args.corpus, folds=args.folds))
