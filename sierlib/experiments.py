"""One run: one configuration end to end (:func:`run`).

:func:`run` loads the corpus and its features, prepares the fold (standardiser fitted on the
training speakers only), builds and fits the network (:mod:`sierlib.train`), evaluates the
selected weights once on the test speakers and writes the record (:mod:`sierlib.records`).
``notebooks/04_train.ipynb``, the sweep, the probe runs and the tests all go through it.
"""
from __future__ import annotations

import time

import pandas as pd
import torch

from .config import RunConfig, RunOptions
from .corpora import load_metadata
from .dataset import fold_data
from .features import Features, extract_features
from .folds import make_folds, write_fold_table
from .manifest import manifest_sha256
from .predict import save_network
from .records import REFERENCE_RUNS, git_commit, make_record, model_path, read_record, record_path, write_record
from .registry import is_manifest
from .speakerinfo import speaker_information
from .train import (build_model, emotion_metrics, fit, part_lengths, predict, resolve_device, seed_everything,
                    speaker_accuracy)


def finished_record(config: RunConfig, out_dir=None) -> dict | None:
    """A finished record of this run: yours (in ``out_dir``, default ``results/local/runs``),
    else the reference one (``results/runs``); None if neither exists."""
    return read_record(record_path(config, out_dir)) or read_record(record_path(config, REFERENCE_RUNS))


def run(config: RunConfig, options: RunOptions = RunOptions(), *, meta: pd.DataFrame | None = None,
        feats: Features | None = None, progress: bool = True, save: bool = True, return_model: bool = False,
        speed_feats: dict | None = None,
        test_set: tuple[pd.DataFrame, Features] | None = None):
    """Train and evaluate one run; returns its record (and the network, with the selected
    weights, if ``return_model``).

    With ``config.test_corpus`` the run is cross-corpus (:func:`sierlib.dataset.fold_data`'s
    ``test_set``): the other corpus's ``(meta, feats)`` are ``test_set``, or loaded here
    (``meta``/``feats`` stay the training corpus's).
    ``meta``/``feats`` may be passed to reuse a loaded corpus across runs (``feats`` must be of
    the config's feature parameters; ``speed_feats``, ``{speed: Features}``, the speed-perturbed
    copies, else they are extracted or read from the cache). With ``save`` the record is written atomically to
    ``options.out_dir`` (default ``results/local/runs``); with ``options.save_model`` the
    selected network goes beside it, ready for ``sier predict`` (:func:`sierlib.predict.save_network`);
    A manifest corpus's fold table is written to ``results/local/folds/<stem>.csv``.
    """
    if options.save_model and config.normalisation != "train_speakers":
        raise ValueError(f"save_model: a network trained with normalisation={config.normalisation!r} needs each "
                         f"new speaker's own statistics, which `sier predict` does not have; train with "
                         f"normalisation='train_speakers' to save a network")
    dev = resolve_device(options.device)
    t0 = time.time()
    commit = git_commit()  # the code this run starts with, not whatever is checked out when it ends
    threads = torch.get_num_threads()
    if options.torch_threads is not None:
        torch.set_num_threads(options.torch_threads)
    try:
        if meta is None:
            meta = load_metadata(config.corpus, options.data_root)
        if feats is None:
            feats = extract_features(meta, progress=progress, **config.feature_params)
        elif feats.params != config.feature_params:
            raise ValueError(f"feats were computed with {feats.params}, but the run (encoder {config.encoder!r}) "
                             f"reads {config.feature_params}")
        folds = make_folds(meta)
        if is_manifest(config.corpus):  # the built-in corpora's tables are written by `sier summary`
            write_fold_table(folds, config.corpus)
        # speed-perturbed copies of the corpus (training speakers only are used), cached per factor
        if speed_feats is None:
            speed_feats = {f: extract_features(meta, progress=progress, **{**config.feature_params, "speed": f})
                           for f in config.speed_factors}
        if test_set is not None and config.test_corpus is None:
            raise ValueError("test_set is for a cross-corpus run: set the config's test_corpus")
        if config.test_corpus is not None and test_set is None:  # cross-corpus: the other corpus is the test set
            test_meta = load_metadata(config.test_corpus, options.data_root)
            test_set = (test_meta, extract_features(test_meta, progress=progress, **config.feature_params))
        elif test_set is not None and test_set[1].params != config.feature_params:
            raise ValueError(f"test_set's features were computed with {test_set[1].params}, but the run reads "
                             f"{config.feature_params}")
        data = fold_data(meta, feats, config.fold, folds, masked=config.lengths == "masked",
                         per_speaker=config.normalisation == "per_speaker_offline", speed_feats=speed_feats,
                         holdout=config.speaker_holdout, holdout_seed=config.seed, test_set=test_set,
                         utterance_norm=config.utterance_norm)
        seed_everything(config.seed)  # the initial weights and dropout masks follow the seed
        model = build_model(config, len(data["emotions"]), len(data["train_speakers"]), feats.X.shape[1]).to(dev)
        result = fit(model, data, config, dev, progress=progress, desc=config.name)
        tr, te = data["train"], data["test"]
        speaker_acc_final = speaker_accuracy(model, tr, dev, part_lengths(tr, config))
        # every selection method is evaluated once on the test speakers and recorded, so one run
        # serves all of them; the config's selection gives the run's headline numbers. A probe run
        # measures the speaker information of each one's weights too, so that a table can put the
        # emotion and the speaker information of the same weights side by side
        selections = {}
        for method, state in result["states"].items():
            model.load_state_dict(state)
            t_logits, _, _ = predict(model, te["X"], device=dev, lengths=part_lengths(te, config))
            m = emotion_metrics(te["y"].numpy(), t_logits.argmax(1).numpy(), data["emotions"])
            selections[method] = {**result["val"][method], "test_accuracy": m["accuracy"], "test_uar": m["uar"],
                                  "test_macro_f1": m["macro_f1"], "test_confusion": m["confusion"]}
            if config.speaker_holdout:
                selections[method]["speaker_information"] = speaker_information(model, data, config, dev,
                                                                                seed=config.seed)
        model.load_state_dict(result["states"][config.selection])
        record = make_record(
            config, feats_params=feats.params, data=data, result=result, selections=selections,
            speaker_accuracy_final=speaker_acc_final,
            speaker_accuracy_best=speaker_accuracy(model, tr, dev, part_lengths(tr, config)),
            started=t0, device=str(dev) if dev.type == "cpu" else f"{dev} ({torch.cuda.get_device_name(dev)})",
            torch_threads=torch.get_num_threads(), commit=commit,
            manifest={"path": config.corpus, "sha256": manifest_sha256(config.corpus)} if is_manifest(config.corpus) else None)
        if config.speaker_holdout:  # a probe run: how much speaker (and emotion) information the embedding holds
            record["speaker_information"] = selections[config.selection]["speaker_information"]
    finally:
        torch.set_num_threads(threads)
    if options.save_model:
        record["model"] = str(save_network(model_path(config, options.out_dir), config=config,
                                           state_dict=result["states"][config.selection], data=data, feats=feats, record=record))
    if save:
        record["path"] = str(write_record(record, options.out_dir))
    return (record, model) if return_model else record
