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

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .config import RunConfig, RunOptions
from .dataset import fold_data, load_corpus_features
from .experiments import run
from .paths import CHECKPOINTS, REFERENCE_RUNS, RESULTS, write_csv_atomic
from .records import read_record, record_path
from .registry import CORPORA, corpus_name
from .train import build_model, part_lengths, predict


def speaker_probe(embeddings: np.ndarray, speakers: list, emotions: np.ndarray | None = None,
                  seed: int = 0) -> float:
    """Held-out accuracy of a logistic-regression speaker probe on frozen embeddings."""
    y = np.asarray(speakers)
    strata = y if emotions is None else np.char.add(y.astype(str), np.asarray(emotions).astype(str))
    try:
        a, b = train_test_split(np.arange(len(y)), test_size=0.5, random_state=seed, stratify=strata)
    except ValueError:  # a speaker-emotion cell with one utterance: stratify by speaker only
        a, b = train_test_split(np.arange(len(y)), test_size=0.5, random_state=seed, stratify=y)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, C=1.0))
    clf.fit(embeddings[a], y[a])
    return float(clf.score(embeddings[b], y[b]))


def probe_run(config: RunConfig, meta=None, feats=None, data_root=None, checkpoint_dir=None) -> dict:
    """Probe one run's embedding for speaker identity.

    The network is loaded from its checkpoint (``cache/checkpoints/<corpus>/<run>.pt``, written
    by ``sier reproduce``) when there is one; otherwise it is retrained with the settings, seed
    and CPU thread count of its reference record. ``same_as_record`` says whether the network
    probed reproduces the record's test accuracy exactly.
    """
    if meta is None or feats is None:
        meta, feats = load_corpus_features(config, data_root, progress=False)
    if config.test_corpus is not None:
        raise ValueError(f"{config.name}: a cross-corpus run is not probed here (its test speakers are another "
                         f"corpus's); probe runs of its own are probe runs with speaker_holdout")
    committed = read_record(record_path(config, REFERENCE_RUNS))
    data = fold_data(meta, feats, config.fold, masked=config.lengths == "masked",
                     per_speaker=config.normalisation == "per_speaker_offline", utterance_norm=config.utterance_norm)
    ckpt = Path(checkpoint_dir or CHECKPOINTS) / corpus_name(config.corpus) / f"{config.name}.pt"
    if ckpt.is_file():
        model = build_model(config, len(data["emotions"]), len(data["train_speakers"]), feats.X.shape[1])
        model.load_state_dict(torch.load(ckpt, weights_only=False)["state_dict"])
        logits, _, _ = predict(model, data["test"]["X"], lengths=part_lengths(data["test"], config))
        test_accuracy = float(np.mean(logits.argmax(1).numpy() == data["test"]["y"].numpy()))  # as run() does
        source = "checkpoint"
        head_acc = committed["train_speaker_accuracy_best"] if committed else None
    else:
        # CPU results depend on the thread count: retrain with the record's
        options = RunOptions(device="cpu", torch_threads=committed.get("torch_threads") if committed else None)
        record, model = run(config, options, meta=meta, feats=feats, save=False, progress=False, return_model=True)
        test_accuracy, source, head_acc = record["test_accuracy"], "retrained", record["train_speaker_accuracy_best"]
    _, _, emb = predict(model, data["train"]["X"], lengths=part_lengths(data["train"], config))
    emo = data["train"]["y"].numpy()
    return {"corpus": config.corpus, "fold": config.fold, "gamma": config.gamma, "run": config.name,
            "network": source, "test_accuracy": test_accuracy,
            "same_as_record": None if committed is None else committed["test_accuracy"] == test_accuracy,
            "n_train_speakers": len(data["train_speakers"]), "chance": 1 / len(data["train_speakers"]),
            "speaker_probe_accuracy": speaker_probe(emb.numpy(), data["train"]["speakers"], emo),
            "speaker_head_accuracy": head_acc}


def run_probes(corpus: str = "emodb", gammas=(3.33, None), folds=None, out_csv=None, data_root=None) -> pd.DataFrame:
    """Probe every fold of the default network for each gamma; rows are written to
    ``results/probe_<corpus>.csv`` as they finish (finished (fold, gamma) pairs are skipped, so
    it resumes)."""
    out_csv = Path(out_csv) if out_csv is not None else RESULTS / f"probe_{corpus}.csv"
    done = pd.read_csv(out_csv) if out_csv.is_file() else pd.DataFrame(columns=["fold", "gamma"])
    have = {(int(f), None if pd.isna(g) else float(g)) for f, g in zip(done["fold"], done["gamma"])}
    meta = feats = None
    rows = done.to_dict("records")
    for gamma in gammas:
        for fold in (range(CORPORA[corpus].n_folds) if folds is None else folds):
            if (fold, gamma) in have:
                continue
            config = RunConfig(corpus=corpus, fold=fold, gamma=gamma)
            if meta is None:
                meta, feats = load_corpus_features(config, data_root, progress=False)
            rows.append(probe_run(config, meta=meta, feats=feats))
            write_csv_atomic(pd.DataFrame(rows), out_csv)
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)
