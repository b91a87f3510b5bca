"""The headline experiment (``make run``, ``sier reproduce``): train one corpus's 1-block network
without AL and with AL on every fold, into your own runs folder, and print mean ± std test
accuracy and UAR beside the committed records of the same runs, the paper-literal reference
records and the paper, with the time it took.

By default it trains the **recipe** (the training choices decided on validation speakers,
:mod:`sierlib.recipe`) without AL and with the γ that the validation speakers chose for it
(:func:`sierlib.recipe_tables.al_chosen_on_validation`), seed 0: the project's best answer.
``literal=True`` trains the paper-literal headline instead (Table 1's best setting, the paper's
γ, against the same network without AL).
"""
from __future__ import annotations

import time

import pandas as pd
from tqdm.auto import tqdm

from .config import RunConfig, RunOptions
from .dataset import load_corpus_features
from .experiments import run
from .paper import HEADLINE, PAPER_TABLE1
from .paths import REFERENCE_RUNS, STUDY_RUNS
from .recipe import recipe_config, study
from .recipe_tables import TRAIN_TABLED_CELLS, al_chosen_on_validation, recipe_comparison, tabled_recipe
from .records import read_record, record_path
from .registry import CORPORA, PRETTY
from .stats import fmt, gamma_label, gamma_value, mean_std


def headline_settings(corpus: str = "emodb", literal: bool = False) -> tuple[dict, list[float | None]]:
    """The recipe (``{}`` for the paper-literal runs) and the γs of the headline (None: without AL)."""
    if literal:
        return {}, [gamma for _, gamma in HEADLINE[corpus]]
    recipe = tabled_recipe(study(STUDY_RUNS))  # the recipe of the committed tables
    chosen = al_chosen_on_validation(recipe_comparison(recipe, corpus))
    row = chosen[(chosen.encoder == "2dcnn_bigru") & (chosen.n_cnn_layers == 1)]
    if not len(row):
        raise ValueError(f"the committed recipe study has no AL cells at 1 block on {corpus}: use literal=True, "
                         f"or train them: {TRAIN_TABLED_CELLS}")
    return recipe, [None, gamma_value(row.gamma_chosen.iloc[0])]


def _selected(record: dict, selection: str) -> dict:
    """The test metrics of ``selection`` (best_val, swa, ema) in a record."""
    return record["selections"][selection] if selection in record.get("selections", {}) else record


def reproduce_headline(corpus: str = "emodb", literal: bool = False, epochs: int | None = None, folds=None,
                       data_root=None, device: str = "auto", out_dir=None, seed: int = 0) -> pd.DataFrame:
    """Train the headline runs of ``corpus`` (see the module docstring) on ``folds`` (default all),
    reading back runs finished earlier in ``out_dir`` (default ``results/local/runs``), and print
    the table it returns: one row per setting with your accuracy and UAR (mean ± std over folds,
    %), the committed records of the same runs, the paper-literal reference and the paper."""
    t0 = time.time()
    recipe, gammas = headline_settings(corpus, literal)
    selection = recipe.get("selection", "best_val")
    options = RunOptions(device=device, data_root=None if data_root is None else str(data_root),
                         out_dir=None if out_dir is None else str(out_dir))
    folds = list(range(CORPORA[corpus].n_folds)) if folds is None else list(folds)
    overrides = {"epochs": epochs} if epochs is not None else {}
    configs = {gamma: [recipe_config(recipe, corpus=corpus, fold=fold, gamma=gamma, n_cnn_layers=1, seed=seed,
                                     **overrides) for fold in folds] for gamma in gammas}
    meta, feats = load_corpus_features(configs[gammas[0]][0], data_root)
    records, read_back = {gamma: [] for gamma in gammas}, 0
    bar = tqdm([(g, c) for g in gammas for c in configs[g]], desc=f"{PRETTY[corpus]} headline runs", unit="run")
    for gamma, config in bar:
        rec = read_record(record_path(config, options.out_dir))
        if rec is None:
            bar.set_postfix(fold=config.fold, gamma=gamma_label(gamma))
            rec = run(config, options, meta=meta, feats=feats, progress=False)
        else:
            read_back += 1
        records[gamma].append(rec)
    minutes = (time.time() - t0) / 60
    committed_dir = REFERENCE_RUNS if literal else STUDY_RUNS
    rows = []
    for gamma in gammas:
        ours = [_selected(r, selection) for r in records[gamma]]
        committed = [_selected(r, selection) for c in configs[gamma]
                     if (r := read_record(record_path(c, committed_dir)))]
        literal_refs = [r for fold in folds
                        if (r := read_record(record_path(RunConfig(corpus=corpus, fold=fold, gamma=gamma), REFERENCE_RUNS)))]
        rows.append({"setting": ("paper-literal" if literal else "recipe") + (" without AL" if gamma is None else
                                                                             f" AL γ {gamma_label(gamma)}"),
                     "folds": len(ours),
                     "your accuracy": fmt(*mean_std([m["test_accuracy"] for m in ours])),
                     "your UAR": fmt(*mean_std([m["test_uar"] for m in ours])),
                     "committed accuracy": fmt(*mean_std([m["test_accuracy"] for m in committed])) if committed
                     else "missing",
                     "paper-literal reference": fmt(*mean_std([r["test_accuracy"] for r in literal_refs]))
                     if literal_refs else "missing",
                     "paper": fmt(*PAPER_TABLE1[corpus][(1, gamma)]) if (1, gamma) in PAPER_TABLE1.get(corpus, {})
                     else ""})
    table = pd.DataFrame(rows)
    what = "the paper-literal network" if literal else f"the recipe {recipe}"
    print(f"{len(folds) * len(gammas) - read_back} runs trained now, {read_back} read back from earlier runs in "
          f"{record_path(configs[gammas[0]][0], options.out_dir).parent}; {minutes:.1f} min in all")
    print(f"\n{PRETTY[corpus]}, {what}, 1 CNN block, seed {seed}, {len(folds)} folds: test speakers, mean ± std "
          f"over folds (%). committed = the same runs in {committed_dir.relative_to(committed_dir.parents[1])}; "
          f"paper-literal reference = results/runs at the same γ; paper = its Table 1:")
    print(table.to_string(index=False))
    return table
