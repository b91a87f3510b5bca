"""Runs: one configuration end to end (:func:`run`), and the headline experiment (``make run``).

:func:`run` loads the corpus and its features, prepares the fold (standardiser fitted on the
training speakers only), builds and fits the network (:mod:`sierlib.train`), evaluates the
selected weights once on the test speakers and writes the record (:mod:`sierlib.records`).
``notebooks/04_train.ipynb``, the sweep, the probe and the tests all go through it.
"""
from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from .config import RunConfig, RunOptions
from .corpora import PRETTY, REPO_ROOT, corpus_info, corpus_name, is_manifest, load_metadata
from .features import Features, extract_features
from .folds import fold_data, make_folds, write_fold_table
from .records import (FORMAT, REFERENCE_RUNS, atomic_write, git_commit, library_versions, model_path, read_record,
                      record_path, write_record)
from .train import (build_model, emotion_metrics, fit, part_lengths, predict, resolve_device, seed_everything,
                    speaker_accuracy)

CHECKPOINTS = REPO_ROOT / "cache" / "checkpoints"  # git-ignored; the probe reads them


def load_corpus_features(config: RunConfig, data_root=None, progress: bool = True) -> tuple[pd.DataFrame, Features]:
    """The metadata and the features (of the kind the config's encoder reads) of its corpus."""
    meta = load_metadata(config.corpus, data_root)
    return meta, extract_features(meta, progress=progress, **config.feature_params)


def finished_record(config: RunConfig, out_dir=None) -> dict | None:
    """A finished record of this run: yours (in ``out_dir``, default ``results/local/runs``),
    else the reference one (``results/runs``); None if neither exists."""
    return read_record(record_path(config, out_dir)) or read_record(record_path(config, REFERENCE_RUNS))


def run(config: RunConfig, options: RunOptions = RunOptions(), *, meta: pd.DataFrame | None = None,
        feats: Features | None = None, progress: bool = True, save: bool = True, return_model: bool = False,
        checkpoint_dir=None, speed_feats: dict | None = None):
    """Train and evaluate one run; returns its record (and the network, with the selected
    weights, if ``return_model``).

    ``meta``/``feats`` may be passed to reuse a loaded corpus across runs (``feats`` must be of
    the config's feature parameters; ``speed_feats``, ``{speed: Features}``, the speed-perturbed
    copies, else they are extracted or read from the cache). With ``save`` the record is written atomically to
    ``options.out_dir`` (default ``results/local/runs``); with ``options.save_model`` the
    selected network goes beside it, ready for ``sier predict`` (:func:`sierlib.predict.save_network`);
    with ``checkpoint_dir`` the selected weights go to ``<checkpoint_dir>/<corpus>/<name>.pt``.
    A manifest corpus's fold table is written to ``results/folds/<stem>.csv``.
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
        data = fold_data(meta, feats, config.fold, folds, masked=config.lengths == "masked",
                         per_speaker=config.normalisation == "per_speaker_offline", speed_feats=speed_feats)
        seed_everything(config.seed)  # the initial weights and dropout masks follow the seed
        model = build_model(config, len(data["emotions"]), len(data["train_speakers"]), feats.X.shape[1]).to(dev)
        result = fit(model, data, config, dev, progress=progress, desc=config.name)
        tr, va, te = data["train"], data["val"], data["test"]
        speaker_acc_final = speaker_accuracy(model, tr, dev, part_lengths(tr, config))
        # every selection method is evaluated once on the test speakers and recorded, so one run
        # serves all of them; the config's selection gives the run's headline numbers
        selections = {}
        for method, state in result["states"].items():
            model.load_state_dict(state)
            t_logits, _, _ = predict(model, te["X"], device=dev, lengths=part_lengths(te, config))
            m = emotion_metrics(te["y"].numpy(), t_logits.argmax(1).numpy(), data["emotions"])
            selections[method] = {**result["val"][method], "test_accuracy": m["accuracy"], "test_uar": m["uar"],
                                  "test_macro_f1": m["macro_f1"], "test_confusion": m["confusion"]}
        chosen = selections[config.selection]
        model.load_state_dict(result["states"][config.selection])
        used_threads = torch.get_num_threads()
        record = {
            "status": "finished", "format": FORMAT, "name": config.name, "config": config.to_dict(),
            "features": feats.params,
            **({"encoder_sizes": config.encoder_sizes} if config.encoder_sizes is not None else {}),
            "synthetic": config.corpus == "synthetic",
            **({"manifest": _manifest_identity(config.corpus)} if is_manifest(config.corpus) else {}),
            "speakers": {"train": data["train_speakers"], "val": sorted(set(va["speakers"])),
                         "test": sorted(set(te["speakers"]))},
            "n_utterances": {"train": len(tr["X"]), "val": len(va["X"]), "test": len(te["X"]),
                             "val_by_speaker": {s: va["speakers"].count(s) for s in sorted(set(va["speakers"]))}},
            "emotions": data["emotions"],
            "test_accuracy": chosen["test_accuracy"], "test_uar": chosen["test_uar"],
            "test_macro_f1": chosen["test_macro_f1"], "test_confusion": chosen["test_confusion"],
            "val_accuracy": chosen["val_accuracy"], "best_epoch": result["best_epoch"],
            "selections": selections,
            "train_speaker_accuracy_final": speaker_acc_final,
            "train_speaker_accuracy_best": speaker_accuracy(model, tr, dev, part_lengths(tr, config)),
            "curves": result["curves"],
            "wall_time_s": time.time() - t0,
            "device": str(dev) if dev.type == "cpu" else f"{dev} ({torch.cuda.get_device_name(dev)})",
            "torch_threads": used_threads,
            "versions": library_versions(),
            "git_commit": commit,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    finally:
        torch.set_num_threads(threads)
    if checkpoint_dir is not None:  # the selected weights, for later analysis (e.g. sierlib.probe)
        ckpt = Path(checkpoint_dir) / corpus_name(config.corpus) / f"{config.name}.pt"
        with atomic_write(ckpt, "wb") as f:
            torch.save({"name": config.name, "config": config.to_dict(),
                        "state_dict": result["states"][config.selection]}, f)
        record["checkpoint"] = str(ckpt)
    if options.save_model:
        from .predict import save_network

        record["model"] = str(save_network(model_path(config, options.out_dir), config=config,
                                           state_dict=result["states"][config.selection], data=data, feats=feats, record=record))
    if save:
        record["path"] = str(write_record(record, options.out_dir))
    return (record, model) if return_model else record


def _manifest_identity(corpus: str) -> dict:
    """Which manifest a run read: its absolute path and the sha256 of its content."""
    from .manifest import manifest_sha256

    return {"path": corpus, "sha256": manifest_sha256(corpus)}


# Table 1's best setting per corpus (1 CNN block and the paper's best gamma) and the same
# network without AL: the paper's headline comparison.
HEADLINE = {"emodb": [(1, 3.33), (1, None)], "ravdess": [(1, 2.5), (1, None)]}


def reproduce_headline(corpus: str = "emodb", epochs: int | None = None, folds=None, data_root=None,
                       device: str = "auto", out_dir=None) -> pd.DataFrame:
    """Train Table 1's best setting and the same network without AL on every fold, into your
    own runs folder (``out_dir``, default ``results/local/runs``; runs finished there before are
    read back, and the output says how many), and print mean +- std over folds beside the
    paper's and beside the committed reference records'."""
    from .results import PAPER_TABLE1, fmt, gamma_label, records_frame, summarise

    options = RunOptions(device=device, data_root=None if data_root is None else str(data_root),
                         out_dir=None if out_dir is None else str(out_dir))
    folds = list(range(corpus_info(corpus).n_folds)) if folds is None else list(folds)
    overrides = {"epochs": epochs} if epochs is not None else {}
    configs = [RunConfig(corpus=corpus, fold=fold, gamma=gamma, n_cnn_layers=depth, **overrides)
               for depth, gamma in HEADLINE[corpus] for fold in folds]
    meta, feats = load_corpus_features(configs[0], data_root)
    records, read_back = [], 0
    bar = tqdm(configs, desc=f"{PRETTY[corpus]} headline runs", unit="run")
    for config in bar:
        rec = read_record(record_path(config, options.out_dir))
        if rec is None:
            bar.set_postfix(fold=config.fold, gamma=gamma_label(config.gamma))
            rec = run(config, options, meta=meta, feats=feats, progress=False, checkpoint_dir=CHECKPOINTS)
        else:
            read_back += 1
        records.append(rec)
    print(f"{len(records) - read_back} runs trained now, {read_back} read back from earlier runs "
          f"in {record_path(configs[0], options.out_dir).parent}")
    ours = summarise(records_frame(records), ["n_cnn_layers", "gamma"])
    reference = records_frame([r for c in configs if (r := read_record(record_path(c, REFERENCE_RUNS)))])
    ref = summarise(reference, ["n_cnn_layers", "gamma"]).set_index(["n_cnn_layers", "gamma"]) if len(reference) else None
    rows = []
    for _, r in ours.iterrows():
        key = (r.n_cnn_layers, r.gamma)
        paper = PAPER_TABLE1[corpus][(r.n_cnn_layers, None if r.gamma == "without AL" else float(r.gamma))]
        rows.append({"CNN blocks": r.n_cnn_layers, "gamma": r.gamma, "folds": r.folds,
                     "your accuracy": fmt(r.acc_mean, r.acc_std), "your UAR": fmt(r.uar_mean, r.uar_std),
                     "reference accuracy": fmt(*ref.loc[key, ["acc_mean", "acc_std"]]) if ref is not None
                     and key in ref.index else "missing",
                     "paper accuracy": fmt(*paper)})
    table = pd.DataFrame(rows)
    print(f"\n{PRETTY[corpus]}, {len(folds)} folds, test speakers (mean ± std over folds, %); reference = the "
          f"committed records in results/runs:")
    print(table.to_string(index=False))
    return table
