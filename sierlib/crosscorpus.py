"""Cross-corpus: train on one corpus, test on every speaker of the other, on the emotions both
have (Emo-DB <-> RAVDESS: anger, disgust, fear, happiness, sadness, neutral; chance 16.7 %).

A run is a :class:`~sierlib.config.RunConfig` with ``test_corpus`` set
(:func:`sierlib.dataset.fold_data`): the training corpus's fold gives the validation pair (early
stopping, selection), every other speaker of it trains. The study (:func:`cross_plan`) pairs
the recipe without AL and with AL at the paper's γ by fold and seed, and the openSMILE ComParE +
linear SVM peer (:func:`sierlib.classical.run_classical` with ``test_corpus``) runs on the same
splits. The committed runs live in ``results/adversary/crosscorpus`` (``sier adversary cross
--reference``); :func:`write_cross_tables` derives ``results/crosscorpus_tables.csv``/``.md``.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .config import RunConfig
from .paths import CROSS_CORPUS_RUNS, CROSS_CORPUS_TABLES, atomic_write, write_csv_atomic
from .recipe import recipe_config
from .records import iter_records, read_record
from .registry import CORPORA, PAPER_CORPORA, PRETTY
from .stats import fmt, gamma_label, markdown_table, mean_std, paired_test

PEER = "ComParE_2016"  # the openSMILE feature set of the SVM peer
DIRECTIONS = (PAPER_CORPORA, PAPER_CORPORA[::-1])


def cross_plan(recipe: dict, corpus: str, gamma: float, seeds=(0, 1), folds=None) -> list[RunConfig]:
    """The network runs of one direction: the recipe at 1 block trained on ``corpus`` and tested
    on the other corpus, without AL and with AL at ``gamma``, each fold (validation pair) and seed."""
    test_corpus = dict(DIRECTIONS)[corpus]
    folds = range(CORPORA[corpus].n_folds) if folds is None else folds
    return [recipe_config(recipe, corpus=corpus, test_corpus=test_corpus, gamma=g, fold=fold, seed=seed)
            for g in (None, gamma) for seed in seeds for fold in folds]


def majority_share(confusion) -> float:
    """The accuracy of always answering the test set's largest class, from a confusion matrix
    (rows: true classes): the floor an accuracy must beat where the classes are unbalanced."""
    counts = [sum(row) for row in confusion]
    return max(counts) / sum(counts)


def cross_rows(runs_dir=None, selection: str = "swa") -> pd.DataFrame:
    """One row per cross-corpus run under ``runs_dir`` (default the committed ones): the network's
    (``model`` = ``"without AL"`` or ``"AL γ <g>"``, of ``selection``) and the SVM peer's
    (``model`` = ``"<feature set> + SVM"``, seed -1): direction, fold, seed, test accuracy and UAR
    (fractions), validation accuracy."""
    root = Path(runs_dir) if runs_dir is not None else CROSS_CORPUS_RUNS
    rows = []
    for rec in iter_records(root / "runs"):
        c = {**RunConfig().to_dict(), **rec["config"]}
        if c["test_corpus"] is None:
            continue
        chosen = rec["selections"][selection] if selection in rec.get("selections", {}) else rec
        rows.append({"corpus": c["corpus"], "test_corpus": c["test_corpus"],
                     "model": "without AL" if c["gamma"] is None else f"AL γ {gamma_label(c['gamma'])}",
                     "fold": c["fold"], "seed": c["seed"], "test_accuracy": chosen["test_accuracy"],
                     "test_uar": chosen["test_uar"], "val_accuracy": chosen["val_accuracy"],
                     "majority_share": majority_share(chosen["test_confusion"]),
                     "git_commit": rec.get("git_commit"), "name": rec["name"]})
    for path in sorted((root / "classical").glob("*/*.json")):
        rec = read_record(path)
        if rec is None or not rec["params"].get("test_corpus"):
            continue
        p = rec["params"]
        rows.append({"corpus": p["corpus"], "test_corpus": p["test_corpus"], "model": f"{p['feature_set']} + SVM",
                     "fold": p["fold"], "seed": -1, "test_accuracy": rec["test_accuracy"],
                     "test_uar": rec["test_uar"], "val_accuracy": rec["val_accuracy"],
                     "git_commit": rec.get("git_commit"), "name": rec["name"]})
    return pd.DataFrame(rows, columns=["corpus", "test_corpus", "model", "fold", "seed", "test_accuracy", "test_uar",
                                       "val_accuracy", "majority_share", "git_commit", "name"])


def cross_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per direction and model: means ± std (%) over its fold x seed runs, and each
    network paired against the other models over the folds they share (each fold's seeds averaged
    first; exact sign-flip p): AL against without AL, and each network against the SVM peer."""
    out = []
    for (corpus, test_corpus), part in rows.groupby(["corpus", "test_corpus"], sort=False):
        per_fold = part.groupby(["model", "fold"])[["test_accuracy"]].mean().test_accuracy.unstack("model")
        for model, cell in part.groupby("model", sort=True):
            row = {"train": corpus, "test": test_corpus, "model": model, "runs": len(cell),
                   "folds": cell.fold.nunique(), "seeds": cell[cell.seed >= 0].seed.nunique()}
            for col in ("test_accuracy", "test_uar", "val_accuracy"):
                m, s = mean_std(cell[col])
                row[f"{col}_mean"], row[col] = m, fmt(m, s)
            against = ["without AL"] if model.startswith("AL") else []
            against += [m for m in per_fold.columns if m.endswith("SVM")] if not model.endswith("SVM") else []
            for other in against:
                both = per_fold[[model, other]].dropna()
                test = paired_test(100 * both[model], 100 * both[other])
                key = "vs_without_AL" if other == "without AL" else "vs_SVM"
                row[f"{key}_diff"], row[f"{key}_p"], row[f"{key}_folds"] = (test["mean_diff"], test["permutation_p"],
                                                                             test["n_folds"])
            out.append(row)
    return pd.DataFrame(out)


SHOWN = ["train", "test", "model", "runs", "folds", "seeds", "test_accuracy", "test_uar", "val_accuracy",
         "vs_without_AL_diff", "vs_without_AL_p", "vs_SVM_diff", "vs_SVM_p"]


def write_cross_tables(runs_dir=None, results_dir=None) -> list[Path]:
    """Write ``crosscorpus_tables.csv`` and ``.md`` (into ``results_dir``, default ``results/``)."""
    rows = cross_rows(runs_dir)
    if rows.empty:
        return []
    table = cross_table(rows)
    out = Path(results_dir) if results_dir is not None else CROSS_CORPUS_TABLES.parent
    csv_path = write_csv_atomic(table, out / CROSS_CORPUS_TABLES.name)
    shown = table[[c for c in SHOWN if c in table]].copy()
    for c in [c for c in shown if c.endswith("_diff")]:
        shown[c] = shown[c].round(1)
    for c in [c for c in shown if c.endswith("_p")]:
        shown[c] = shown[c].round(4)
    for c in ("train", "test"):
        shown[c] = shown[c].map(lambda v: PRETTY.get(v, v))
    chance = 100 / len([e for e in CORPORA["emodb"].emotions if e in CORPORA["ravdess"].emotions])
    majority = rows.dropna(subset=["majority_share"]).groupby(["corpus", "test_corpus"]).majority_share.first()
    floors = "; ".join(f"{PRETTY.get(a, a)} → {PRETTY.get(b, b)} {100 * v:.1f} %" for (a, b), v in majority.items())
    md = ("# Cross-corpus: trained on one corpus, tested on every speaker of the other\n\n"
          "Generated by `sier adversary tables` (sierlib.crosscorpus.write_cross_tables) from the runs in "
          "results/adversary/crosscorpus. The emotions both corpora have (anger, disgust, fear, happiness, sadness, "
          f"neutral; chance {chance:.1f} % for UAR; for accuracy, always answering the test corpus's largest class "
          f"scores {floors}); each fold's validation pair of the training corpus chooses the epoch "
          "(the network) or C (the SVM), every other speaker of it trains. The network is the recipe at 1 block, "
          "without AL and with AL at the paper's γ, paired by fold and seed; the SVM (openSMILE ComParE functionals, "
          "linear) has no seed. Means ± std (%) over fold x seed runs; *_diff and *_p: paired over folds (seeds "
          "averaged), exact sign-flip p. Every fold tests on the same speakers (the whole other corpus): these p-values say "
          "how repeatable a difference is over trainings (folds and seeds), not how it varies over test speakers. "
          "Caveat for RAVDESS → Emo-DB: the recipe's stages 1-10 were decided on "
          "Emo-DB's validation speakers, which over its folds are all of Emo-DB's speakers, so the test corpus had a "
          "say in the recipe (Emo-DB → RAVDESS has no such effect: RAVDESS took part in none of those decisions); "
          "the comparison of AL with no AL shares the recipe and is not affected.\n\n" + markdown_table(shown))
    with atomic_write(csv_path.with_suffix(".md")) as f:
        f.write(md)
    return [csv_path, csv_path.with_suffix(".md")]
