"""The recipe in the paper's tables: the recipe study's runs beside the paper and the paper-literal
runs, AL paired against the recipe without AL, γ chosen on validation speakers, per-emotion
recall. The only place the recipe's tables are derived (``results/recipe_tables.csv``/``.md``,
written by ``sier recipe decide``; notebook 07 shows them).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .corpora import corpus_info
from .paper import PAPER_TABLE1, PAPER_TABLE2, TABLE1_CELLS, TABLE2_ENCODERS
from .paths import RECIPE_TABLES, REFERENCE_RUNS, REPO_ROOT, atomic_write, write_csv_atomic
from .recipe import recipe_config, study_folders
from .records import read_record, record_path
from .registry import PAPER_CORPORA
from .results import best_gamma, paper_literal_runs
from .stats import WITHOUT_AL, fmt, gamma_label, load_runs, markdown_table, mean_std, paired_test


def recipe_comparison(recipe: dict, corpus: str = "emodb", study_runs=None, reference_runs=None,
                      seeds=(0, 1, 2), normalisation: str = "train_speakers") -> pd.DataFrame:
    """The paper, the paper-literal runs and the recipe side by side, for each Table 1 cell and
    each of Table 2's earlier encoders (with AL at the corpus's best gamma and without AL) where
    the recipe has runs: test accuracy and UAR, mean ± std over every fold x seed run (the
    paper's std is over folds), and for AL cells the recipe's paired test against the recipe
    without AL (same encoder and depth) over folds, each fold's accuracy averaged over its seeds
    first (the seeds of a fold share its speakers; ``wins``/``losses`` count folds).

    The recipe's runs are read from ``study_runs`` (default ``results/recipe/runs``) by name,
    with the recipe's ``normalisation``, and its numbers are those of its selection method
    (every run records each; ``recipe_val_mean`` is the mean validation accuracy, %, that
    :func:`al_chosen_on_validation` chooses on); the paper-literal ones are the reference
    records (default ``results/runs``) of the default configuration, of the same ``seeds``. The
    "offline" setting (``normalisation="per_speaker_offline"``) is a separate call, never mixed in."""
    selection = recipe.get("selection", "best_val")
    reference = load_runs(reference_runs, corpus)

    read = {}  # each cell's records are read once, though every AL cell pairs with its cell without AL

    def recipe_runs(encoder, depth, gamma):
        if (encoder, depth, gamma) not in read:
            read[encoder, depth, gamma] = {key: rec["selections"][selection] for key, rec in recipe_records(
                recipe, corpus, encoder, depth, gamma, study_runs, seeds, normalisation).items()}
        return read[encoder, depth, gamma]

    cells = [("2dcnn_bigru", depth, gamma) for depth, gamma in TABLE1_CELLS]
    cells += [(encoder, 1, gamma) for encoder in TABLE2_ENCODERS if encoder != "2dcnn_bigru"
              for gamma in (None, best_gamma(corpus))]
    rows = []
    for encoder, depth, gamma in cells:
        ours = recipe_runs(encoder, depth, gamma)
        if not ours:
            continue
        if encoder == "2dcnn_bigru":
            paper = PAPER_TABLE1.get(corpus, {}).get((depth, gamma), (np.nan, np.nan))
        else:  # Table 2 gives the earlier encoders with AL only
            paper = PAPER_TABLE2.get(corpus, {}).get(encoder, (np.nan, np.nan)) if gamma is not None else (np.nan, np.nan)
        lit = paper_literal_runs(reference, encoder)
        lit = lit[lit.seed.isin(list(seeds)) & (lit.n_cnn_layers == depth) & (lit.gamma == gamma_label(gamma))]
        row = {"corpus": corpus, "encoder": encoder, "n_cnn_layers": depth, "gamma": gamma_label(gamma),
               "paper_acc": fmt(*paper),
               "literal_runs": len(lit), "literal_acc": fmt(*mean_std(lit.test_accuracy)),
               "literal_uar": fmt(*mean_std(lit.test_uar)),
               "recipe_runs": len(ours), "recipe_acc": fmt(*mean_std([m["test_accuracy"] for m in ours.values()])),
               "recipe_uar": fmt(*mean_std([m["test_uar"] for m in ours.values()])),
               "recipe_acc_mean": mean_std([m["test_accuracy"] for m in ours.values()])[0],
               "recipe_val_mean": mean_std([m["val_accuracy"] for m in ours.values()])[0]}
        if gamma is not None:
            base = recipe_runs(encoder, depth, None)
            pairs = sorted(set(ours) & set(base))
            both = pd.DataFrame([{"fold": fold, "al": 100 * ours[(fold, seed)]["test_accuracy"],
                                  "without": 100 * base[(fold, seed)]["test_accuracy"]} for fold, seed in pairs])
            per_fold = both.groupby("fold").mean() if len(both) else both
            t = paired_test(per_fold["al"].to_numpy(), per_fold["without"].to_numpy()) if len(both) else \
                {"n_folds": 0, "mean_diff": np.nan, "wins": 0, "losses": 0, "permutation_p": np.nan}
            row.update({"paired_runs": len(pairs), "folds_paired": t["n_folds"], "vs_without_AL_diff": t["mean_diff"],
                        "fold_wins": t["wins"], "fold_losses": t["losses"], "permutation_p": t["permutation_p"]})
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.reindex(columns=list(table.columns) + [c for c in _PAIRED_COLUMNS if c not in table])


# recipe_comparison's columns for AL cells, there (empty) even when no AL cell has runs
_PAIRED_COLUMNS = ["paired_runs", "folds_paired", "vs_without_AL_diff", "fold_wins", "fold_losses", "permutation_p"]


def recipe_records(recipe: dict, corpus: str = "emodb", encoder: str = "2dcnn_bigru", n_cnn_layers: int = 1,
                   gamma: float | None = None, study_runs=None, seeds=(0, 1, 2),
                   normalisation: str = "train_speakers") -> dict:
    """The finished records of one cell of ``recipe`` in ``study_runs`` (a folder or a list of
    them, the first that has a run wins; default ``results/recipe/runs``), by ``(fold, seed)``;
    cells not run yet are simply absent."""

    out = {}
    for seed in seeds:
        for fold in range(corpus_info(corpus).n_folds):
            config = recipe_config(recipe, corpus=corpus, encoder=encoder, n_cnn_layers=n_cnn_layers, gamma=gamma,
                                   fold=fold, seed=seed, normalisation=normalisation)
            rec = next((r for folder in study_folders(study_runs)
                        if (r := read_record(record_path(config, folder))) is not None), None)
            if rec is not None:
                out[(fold, seed)] = rec
    return out


# What trains the 1-block Table 1 cells of the study's current recipe (what :func:`tabled_recipe` waits for).
TRAIN_TABLED_CELLS = ("`sier recipe tables --reference --corpus emodb --gammas none 1.25 2.5 3.33`, and the same with "
                      "`--corpus ravdess`")


def tabled_recipes(found, study_runs=None, seeds=(0, 1, 2)) -> list[dict]:
    """The recipes the study has held (``found.recipes``, from :func:`sierlib.recipe.study`),
    oldest first, whose 1-block Table 1 cells (without AL and each γ) have every fold x seed run
    on both paper corpora."""
    cells = [gamma for depth, gamma in TABLE1_CELLS if depth == 1]
    return [candidate for _, candidate in found.recipes
            if all(len(recipe_records(candidate, corpus, n_cnn_layers=1, gamma=gamma, study_runs=study_runs,
                                      seeds=seeds)) == corpus_info(corpus).n_folds * len(seeds)
                   for corpus in PAPER_CORPORA for gamma in cells)]


def tabled_recipe(found, study_runs=None, seeds=(0, 1, 2)) -> dict:
    """The recipe that the tables, the headline, the report and the adversary study use: the newest
    of :func:`tabled_recipes`. A stage that changes the recipe does not empty the tables: they keep
    the recipe before it until the new one's cells are trained (``sier recipe tables --reference``).
    The study's current recipe when no recipe has them (a study in its first stages, or your own)."""
    done = tabled_recipes(found, study_runs, seeds)
    return done[-1] if done else found.recipe


def earlier_tabled_recipe(found, study_runs=None, seeds=(0, 1, 2)) -> dict | None:
    """The tabled recipe before :func:`tabled_recipe` (None if there is none): its columns stand
    beside the new recipe's in the tables, so that a reader sees what the stages between bought."""
    done = tabled_recipes(found, study_runs, seeds)
    return done[-2] if len(done) > 1 else None


def recipe_curves(recipe: dict, corpus: str = "emodb", gammas=(None,), n_cnn_layers: int = 1,
                  encoder: str = "2dcnn_bigru", study_runs=None, seeds=(0, 1, 2)) -> pd.DataFrame:
    """How the recipe's runs of some cells train, epoch by epoch: one row per run and epoch with
    ``gamma`` (its label), fold, seed, ``lambda``, validation emotion accuracy and training
    speaker accuracy (%; NaN without AL, which has no speaker classifier)."""
    rows = []
    for gamma in gammas:
        for (fold, seed), rec in recipe_records(recipe, corpus, encoder, n_cnn_layers, gamma, study_runs, seeds).items():
            rows += [{"gamma": gamma_label(gamma), "fold": fold, "seed": seed, "epoch": c["epoch"],
                      "lambda": c.get("lambda", 0.0), "val_emotion_accuracy": 100 * c["val_emotion_accuracy"],
                      "train_speaker_accuracy": 100 * c["train_speaker_accuracy"]
                      if gamma is not None and c.get("train_speaker_accuracy") is not None else np.nan}
                     for c in rec["curves"]]
    return pd.DataFrame(rows, columns=["gamma", "fold", "seed", "epoch", "lambda", "val_emotion_accuracy",
                                       "train_speaker_accuracy"])


def _runs_in_common(cells) -> list:
    """The (fold, seed) keys that every cell's records (:func:`recipe_records`) have, sorted."""
    cells = [set(records) for records in cells]
    return sorted(set.intersection(*cells)) if cells else []


def _summed_test_confusion(records: dict, keys, selection: str) -> np.ndarray:
    """The test confusion matrices of the runs ``keys`` of one cell, read with ``selection``, summed."""
    return np.sum([records[key]["selections"][selection]["test_confusion"] for key in keys], axis=0)


def recipe_recall_by_emotion(recipe: dict, corpus: str = "emodb", gammas=(None,), n_cnn_layers: int = 1,
                             encoder: str = "2dcnn_bigru", study_runs=None, seeds=(0, 1, 2)) -> pd.DataFrame:
    """Where AL gains or loses, emotion by emotion: each emotion's recall (%) in the test
    confusion matrices of a cell's runs (read with the recipe's selection) summed over the
    (fold, seed) runs that every gamma in ``gammas`` has finished, so that the columns compare
    the same test utterances. One column per gamma label, one row per emotion in the corpus's
    label order, ``n_test`` the test utterances of each emotion summed over those runs; the
    number of runs is in ``attrs["runs"]``. A gamma without any run yet is left out; empty if
    fewer than two gammas have runs in common."""
    selection = recipe.get("selection", "best_val")
    cells = {gamma_label(g): recipe_records(recipe, corpus, encoder, n_cnn_layers, g, study_runs, seeds) for g in gammas}
    cells = {label: records for label, records in cells.items() if records}
    common = _runs_in_common(cells.values())
    if len(cells) < 2 or not common:
        return pd.DataFrame()
    table = pd.DataFrame(index=pd.Index(corpus_info(corpus).emotions, name="emotion"))
    for label, records in cells.items():
        confusion = _summed_test_confusion(records, common, selection)
        table[label] = 100 * np.diag(confusion) / confusion.sum(axis=1)
    table["n_test"] = confusion.sum(axis=1)  # the same for every gamma: the same runs, the same test speakers
    table.attrs["runs"] = len(common)
    return table


def recipe_recall_change(recipe: dict, corpus: str = "emodb", depths=(1, 2, 3, 4), gammas=(1.25, 2.5, 3.33),
                         encoder: str = "2dcnn_bigru", study_runs=None, seeds=(0, 1, 2)) -> pd.DataFrame:
    """Does AL cost the same emotions at every depth? For each depth and emotion, the recall (%)
    without AL and with AL (the mean over ``gammas``), and AL minus without AL paired over folds
    (:func:`paired_test`; a fold's recall is that of its runs' test confusions summed over seeds).
    Only the (fold, seed) runs that the cell without AL and every gamma have finished are used, as
    in :func:`recipe_recall_by_emotion`; a depth without them is left out. A fold whose test
    speakers have no utterance of an emotion does not count for that emotion. One row per depth
    and emotion; ``runs`` is the number of (fold, seed) runs compared at that depth."""
    selection = recipe.get("selection", "best_val")
    rows = []
    for depth in depths:
        cells = [recipe_records(recipe, corpus, encoder, depth, g, study_runs, seeds) for g in (None, *gammas)]
        common = _runs_in_common(cells)
        if not common:
            continue
        folds = sorted({fold for fold, _ in common})

        def recall(records, fold):  # per emotion, over the fold's seeds; NaN where the fold has no such utterance
            confusion = _summed_test_confusion(records, [key for key in common if key[0] == fold], selection)
            with np.errstate(invalid="ignore", divide="ignore"):
                return 100 * np.diag(confusion) / confusion.sum(axis=1)

        without = np.array([recall(cells[0], fold) for fold in folds])  # folds x emotions
        al = np.array([[recall(records, fold) for fold in folds] for records in cells[1:]]).mean(axis=0)
        for i, emotion in enumerate(corpus_info(corpus).emotions):
            counted = ~np.isnan(without[:, i])
            test = paired_test(al[counted, i], without[counted, i])
            rows.append({"n_cnn_layers": depth, "emotion": emotion, "runs": len(common),
                         "without_AL_recall": without[counted, i].mean(), "AL_recall": al[counted, i].mean(),
                         "diff": test["mean_diff"], "folds": test["n_folds"], "fold_wins": test["wins"],
                         "fold_losses": test["losses"], "permutation_p": test["permutation_p"]})
    return pd.DataFrame(rows, columns=["n_cnn_layers", "emotion", "runs", "without_AL_recall", "AL_recall", "diff",
                                       "folds", "fold_wins", "fold_losses", "permutation_p"])


def al_chosen_on_validation(comparison: pd.DataFrame) -> pd.DataFrame:
    """For each encoder and depth of a :func:`recipe_comparison`, the AL cell whose gamma the
    validation speakers pick (highest mean validation accuracy) beside the same network without
    AL, with its paired test against it: the honest counterpart of "the best AL cell", which
    picks gamma on the test speakers. ``gammas_compared`` says which gammas it chose among, and
    ``folds_paired`` on how many folds the chosen cell and the cell without AL were compared
    (a cell still running has fewer)."""
    rows = []
    for (encoder, depth), cells in comparison.groupby(["encoder", "n_cnn_layers"], sort=True):
        al, without = cells[cells.gamma != WITHOUT_AL], cells[cells.gamma == WITHOUT_AL]
        if not len(al):
            continue
        chosen = al.loc[al.recipe_val_mean.idxmax()]
        rows.append({"encoder": encoder, "n_cnn_layers": depth, "gammas_compared": " ".join(al.gamma),
                     "gamma_chosen": chosen.gamma, "val_chosen": chosen.recipe_val_mean,
                     "test_chosen": chosen.recipe_acc,
                     "without_AL_val": without.recipe_val_mean.iloc[0] if len(without) else np.nan,
                     "without_AL_test": without.recipe_acc.iloc[0] if len(without) else "missing",
                     "folds_paired": chosen.folds_paired, "vs_without_AL_diff": chosen.vs_without_AL_diff,
                     "permutation_p": chosen.permutation_p})
    return pd.DataFrame(rows)


def depth_chosen_on_validation(comparison: pd.DataFrame) -> pd.DataFrame:
    """Which depth should the recipe use? Of a :func:`recipe_comparison` (one corpus), the 2D CNN
    biGRU's cells without AL: the depth with the highest mean validation accuracy (%), beside
    1 block, with each depth's runs. The 1-block validation figure is the study's own winner (its
    stages chose on those scores), so it is biased upward: a deeper winner is the stronger
    evidence, a 1-block one the weaker. Empty with fewer than two depths run."""
    cells = comparison[(comparison.encoder == "2dcnn_bigru") & (comparison.gamma == WITHOUT_AL)]
    if cells.n_cnn_layers.nunique() < 2:
        return pd.DataFrame()
    chosen, one = cells.loc[cells.recipe_val_mean.idxmax()], cells[cells.n_cnn_layers == 1]
    return pd.DataFrame([{
        "depths_compared": " ".join(str(d) for d in sorted(cells.n_cnn_layers)),
        "runs_per_depth": " ".join(str(int(n)) for n in cells.sort_values("n_cnn_layers").recipe_runs),
        "depth_chosen": int(chosen.n_cnn_layers), "val_chosen": chosen.recipe_val_mean, "test_chosen": chosen.recipe_acc,
        "one_block_val": one.recipe_val_mean.iloc[0] if len(one) else np.nan,
        "one_block_test": one.recipe_acc.iloc[0] if len(one) else "missing"}])


# How the "gamma chosen on validation" table is shown, in results/recipe_tables.md and in 07. p to 4
# decimals: over 12 folds the exact sign-flip p can be 2 / 2**12 = 0.0005, not 0.
CHOSEN_ROUNDING = {"val_chosen": 1, "without_AL_val": 1, "one_block_val": 1, "vs_without_AL_diff": 1,
                   "permutation_p": 4}

# the columns of results/recipe_tables.md; earlier_* only once an earlier recipe is tabled
RECIPE_TABLE_COLUMNS = ["encoder", "n_cnn_layers", "gamma", "paper_acc", "literal_runs", "literal_acc", "literal_uar",
                        "earlier_runs", "earlier_acc", "earlier_uar", "recipe_runs", "recipe_acc", "recipe_uar",
                        "folds_paired", "vs_without_AL_diff", "fold_wins", "fold_losses", "permutation_p"]


EARLIER_COLUMNS = {"recipe_runs": "earlier_runs", "recipe_acc": "earlier_acc", "recipe_uar": "earlier_uar"}
CELL_KEY = ["corpus", "encoder", "n_cnn_layers", "gamma"]


def recipe_tables(recipe: dict, study_runs=None, reference_runs=None, earlier: dict | None = None) -> pd.DataFrame:
    """:func:`recipe_comparison` of ``recipe`` on every corpus of the tables, one row per cell
    that has runs, numbers rounded as committed in ``results/recipe_tables.csv``; with an
    ``earlier`` recipe (:func:`earlier_tabled_recipe`), its runs, accuracy and UAR in the same
    cells beside the recipe's (``earlier_*``, blank where it has no runs). The offline setting
    is not in it (see :func:`write_recipe_tables`)."""
    parts = [recipe_comparison(recipe, corpus, study_runs, reference_runs) for corpus in PAPER_CORPORA]
    parts = [part for part in parts if len(part)]
    if not parts:
        return pd.DataFrame()
    table = pd.concat(parts, ignore_index=True)
    if earlier is not None:
        before = pd.concat([recipe_comparison(earlier, corpus, study_runs, reference_runs) for corpus in PAPER_CORPORA],
                           ignore_index=True)
        before = (before[CELL_KEY + list(EARLIER_COLUMNS)].rename(columns=EARLIER_COLUMNS) if len(before)
                  else pd.DataFrame(columns=CELL_KEY + list(EARLIER_COLUMNS.values())))
        table = table.merge(before, on=CELL_KEY, how="left")
        at = list(table.columns).index("recipe_runs")
        order = [c for c in table.columns if c not in EARLIER_COLUMNS.values()]
        table = table[order[:at] + list(EARLIER_COLUMNS.values()) + order[at:]]
        table["earlier_runs"] = table.earlier_runs.astype("Int64")
    # 4 decimals for p: over 12 folds the exact sign-flip p can be 2 / 2**12 = 0.0005, not 0
    table = table.round(3).assign(permutation_p=table.permutation_p.round(4))
    return table.astype({c: "Int64" for c in ("paired_runs", "folds_paired", "fold_wins", "fold_losses")})


def write_recipe_tables(recipe: dict, study_runs=None, reference_runs=None, path=RECIPE_TABLES,
                        earlier: dict | None = None, newest: dict | None = None) -> list[Path]:
    """Write :func:`recipe_tables` to ``path`` (CSV) and a readable ``.md`` beside it: per corpus
    the cells, then the gamma chosen on validation (:func:`al_chosen_on_validation`), and apart,
    clearly labelled, the "offline" rows (each speaker standardised with its own audio), which
    are never mixed into the tables. ``earlier`` adds an earlier recipe's columns
    (:func:`recipe_tables`). ``newest`` is the study's current recipe: where it differs from
    ``recipe`` (:func:`tabled_recipe`) the ``.md`` says so and how to train its cells. Nothing
    is written while the recipe has no runs."""

    def shown(folder):
        folder = Path(folder).resolve()
        return str(folder.relative_to(REPO_ROOT)) if folder.is_relative_to(REPO_ROOT) else str(folder)

    table = recipe_tables(recipe, study_runs, reference_runs, earlier)
    if not len(table):
        return []
    offline = [part for corpus in PAPER_CORPORA if len(part := recipe_comparison(
        recipe, corpus, study_runs, reference_runs, normalisation="per_speaker_offline"))]
    md = ("# The recipe in the paper's tables: test accuracy and UAR (%), mean ± std over fold × seed runs\n\n"
          "Generated by `sier recipe decide` (sierlib.recipe_tables.write_recipe_tables) from the recipe's runs in "
          f"{', '.join(shown(f) for f in study_folders(study_runs))} and the paper-literal runs in "
          f"{shown(reference_runs if reference_runs is not None else REFERENCE_RUNS)}. "
          f"Recipe: `{json.dumps(recipe, sort_keys=True)}`. paper = the paper's figure; "
          "literal = our paper-literal runs; vs_without_AL_diff = AL minus the recipe without AL (points), "
          "paired over folds with each fold's seeds averaged, exact sign-flip permutation_p. A cell with "
          "fewer runs than the others (recipe_runs, folds_paired) has not finished: its figures are "
          "provisional.\n")
    if earlier is not None:
        md += (f"\nearlier = the recipe before it that has the same 1-block cells, `{json.dumps(earlier, sort_keys=True)}`, "
               "on the same folds and seeds: what the stages between bought.\n")
    if newest is not None and newest != recipe:
        md += (f"\nThe study has since decided a newer recipe, `{json.dumps(newest, sort_keys=True)}`, whose 1-block "
               "cells are not all trained yet; these tables keep the last recipe that has them (`tabled_recipe`). "
               f"To train the new one's: {TRAIN_TABLED_CELLS}\n")
    for corpus, rows in table.groupby("corpus", sort=False):
        md += (f"\n## {corpus_info(corpus).title}\n\n"
               + markdown_table(rows[[c for c in RECIPE_TABLE_COLUMNS if c in rows]].round({"vs_without_AL_diff": 1})))
        chosen = al_chosen_on_validation(rows)
        if len(chosen):
            md += ("\nγ chosen on the validation speakers (highest mean validation accuracy, %) against the "
                   "recipe without AL:\n\n"
                   + markdown_table(chosen.round(CHOSEN_ROUNDING)))
        depth = depth_chosen_on_validation(rows)
        if len(depth):
            md += ("\nThe depth chosen on the validation speakers (without AL; the 1-block figure is the study's own "
                   "winner, so biased upward):\n\n" + markdown_table(depth.round(CHOSEN_ROUNDING)))
    if offline:
        offline = pd.concat(offline, ignore_index=True).round(3)
        md += ("\n## Offline (kept apart: each speaker, test speakers included, standardised with its own "
               "audio; not comparable with the rows above)\n\n"
               + markdown_table(offline[["corpus", "encoder", "n_cnn_layers", "gamma", "recipe_runs", "recipe_acc",
                                         "recipe_uar"]]))
    path = Path(path)
    written = [write_csv_atomic(table, path)]  # everything is computed before anything is written
    with atomic_write(path.with_suffix(".md")) as f:
        f.write(md)
    return written + [path.with_suffix(".md")]
