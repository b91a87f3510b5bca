"""Reference records -> per-corpus runs CSV -> the paper's Tables 1 and 2. The only place those
tables are derived (the recipe's tables: :mod:`sierlib.recipe_tables`).

:func:`collect_runs` writes ``results/runs_<corpus>.csv`` (one row per run, :mod:`sierlib.stats`);
:func:`table1`, :func:`table2` and the paired tests read those rows; :func:`write_tables`
regenerates every committed table from the reference records (``sier tables``; a deliberate
reference sweep calls it too). Notebooks 05 and 06 call :func:`build_tables` and only plot and
explain.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .classical import classical_table
from .config import DEFAULTS
from .corpora import corpus_info
from .paper import BEST_GAMMA, PAPER_TABLE1, PAPER_TABLE2, TABLE1_CELLS, TABLE2_ENCODERS
from .paths import REFERENCE_RUNS, RESULTS, atomic_write, write_csv_atomic
from .records import iter_records
from .registry import ENCODER_INFO, PAPER_CORPORA
from .stats import (CONFIG_COLS, WITHOUT_AL, fmt, gamma_label, load_runs, main_table_runs, markdown_table, paired_test,
                    setting_id, summarise)


def best_gamma(corpus: str) -> float:
    """The γ of a corpus's AL rows in Table 2: the paper's best of Table 1, or for a corpus outside
    the paper (the synthetic corpus, a manifest) the default run's γ."""
    return BEST_GAMMA.get(corpus, DEFAULTS["gamma"])


def collect_runs(corpus: str, runs_dir=None, out_csv=None) -> pd.DataFrame:
    """Write ``results/runs_<corpus>.csv`` (or ``out_csv``): one row per finished record."""
    runs = load_runs(runs_dir, corpus)
    runs = runs.sort_values(["encoder", "n_cnn_layers", "gamma", "setting", "seed", "fold"]).reset_index(drop=True)
    write_csv_atomic(runs, out_csv if out_csv is not None else RESULTS / f"runs_{corpus}.csv")
    return runs


def select_on_validation(runs: pd.DataFrame, cell: list[str]) -> pd.DataFrame:
    """For each cell (e.g. depth x gamma), keep the runs of the one setting (e.g. a point of the
    section 4.2 grid) with the most folds and, among those, the best mean *validation* accuracy
    over folds. Test accuracy plays no part in the choice."""
    runs = main_table_runs(runs)
    if runs.empty:
        return runs
    stats = runs.groupby(cell + ["setting"], dropna=False).agg(folds=("fold", "nunique"), val=("val_accuracy", "mean"))
    best = stats.reset_index().sort_values(["folds", "val"], ascending=False).drop_duplicates(cell)
    return runs[runs.setting.isin(best.setting)]


def n_folds_of(corpus: str, runs_dir=None) -> int | None:
    """How many folds a corpus has: the registry's count, or for the synthetic corpus (whose size
    is chosen when it is made) the count its records under ``runs_dir`` imply (a record names the
    fold's training, validation and test speakers: every speaker, two per fold); None if unknown."""
    n = corpus_info(corpus).n_folds
    if n is None:
        rec = next(iter_records(runs_dir, corpus), None)
        if rec is not None:
            n = sum(len(speakers) for speakers in rec["speakers"].values()) // 2
    return n


def _folds_label(folds, of_folds) -> str:
    """"3/5": folds run of the corpus's folds ("3/?" where the count is unknown)."""
    known = of_folds is not None and not pd.isna(of_folds)
    return f"{int(folds)}/{int(of_folds) if known else '?'}"


def _cell_row(sel: pd.DataFrame, corpus: str, of_folds: int | None = None) -> dict:
    of_folds = corpus_info(corpus).n_folds if of_folds is None else of_folds
    row = {"folds": int(sel.fold.nunique()) if len(sel) else 0, "of_folds": of_folds,
           "acc_mean": np.nan, "acc_std": np.nan, "uar_mean": np.nan, "uar_std": np.nan}
    if len(sel):
        s = summarise(sel.assign(_all=0), ["_all"]).iloc[0]
        row.update({k: s[k] for k in ("acc_mean", "acc_std", "uar_mean", "uar_std")})
    return row


def table1(runs_by_corpus: dict[str, pd.DataFrame], n_folds: dict[str, int] | None = None) -> pd.DataFrame:
    """The paper's Table 1 (depth x gamma) from our seed-0 2D CNN biGRU runs (``{corpus: runs
    frame}``), beside the paper (NaN for a corpus outside it). Cells without runs are kept, with 0
    folds and no numbers. ``n_folds`` (``{corpus: count}``) overrides the registry's fold counts."""
    rows = []
    for corpus, runs in runs_by_corpus.items():
        runs = select_on_validation(runs[(runs.encoder == "2dcnn_bigru") & (runs.seed == 0)],
                                    ["n_cnn_layers", "gamma"])
        paper = PAPER_TABLE1.get(corpus, {})
        for depth, gamma in TABLE1_CELLS:
            pm, ps = paper.get((depth, gamma), (np.nan, np.nan))
            sel = runs[(runs.n_cnn_layers == depth) & (runs.gamma == gamma_label(gamma))]
            row = {"corpus": corpus, "n_cnn_layers": depth, "gamma": gamma_label(gamma),
                   **_cell_row(sel, corpus, (n_folds or {}).get(corpus)),
                   "paper_acc_mean": pm, "paper_acc_std": ps}
            if len(sel):
                size = sel.iloc[0]
                row["size"] = f"k{size.kernel_size} c{size.n_filters} h{size.gru_hidden} fc{size.fc_hidden}"
            rows.append(row)
    return pd.DataFrame(rows)


def table2(runs_by_corpus: dict[str, pd.DataFrame], n_folds: dict[str, int] | None = None) -> pd.DataFrame:
    """The paper's Table 2: each encoder (1 block for the 2D CNN biGRU) with AL at the corpus's
    best gamma of Table 1 (:func:`best_gamma`) and without AL, seed 0, beside the paper's AL
    numbers (NaN for a corpus outside the paper). ``n_folds`` as in :func:`table1`."""
    rows = []
    for corpus, runs in runs_by_corpus.items():
        runs = select_on_validation(runs[(runs.seed == 0) & (runs.n_cnn_layers == 1)], ["encoder", "gamma"])
        paper = PAPER_TABLE2.get(corpus, {})
        for encoder in TABLE2_ENCODERS:
            pm, ps = paper.get(encoder, (np.nan, np.nan))
            for gamma in (best_gamma(corpus), None):
                sel = runs[(runs.encoder == encoder) & (runs.gamma == gamma_label(gamma))]
                rows.append({"corpus": corpus, "encoder": ENCODER_INFO[encoder].title, "gamma": gamma_label(gamma),
                             **_cell_row(sel, corpus, (n_folds or {}).get(corpus)),
                             "paper_acc_mean": pm if gamma is not None else np.nan,
                             "paper_acc_std": ps if gamma is not None else np.nan})
    return pd.DataFrame(rows)


def _partner_key(runs: pd.DataFrame) -> pd.Series:
    """A key equal for an AL run and the without-AL run of the same setting and fold."""
    others = [c for c in CONFIG_COLS if c not in ("gamma", "fold")]
    return pd.Series([json.dumps([None if pd.isna(v) else v for v in row], default=str)
                      for row in runs[others].itertuples(index=False)], index=runs.index, dtype=object)


def al_vs_without(runs: pd.DataFrame, corpus: str) -> pd.DataFrame:
    """For each setting with AL, the paired test against the same setting without AL (every other
    field equal), over the folds both have; seed 0 of the 2D CNN biGRU, as Table 1."""
    runs = main_table_runs(runs[(runs.encoder == "2dcnn_bigru") & (runs.seed == 0)])
    runs = runs.assign(_partner=_partner_key(runs))
    base = runs[runs.gamma == WITHOUT_AL]
    rows = []
    for (depth, gamma, partner), al in runs[runs.gamma != WITHOUT_AL].groupby(["n_cnn_layers", "gamma", "_partner"]):
        b = base[base._partner == partner].set_index("fold")
        al = al.set_index("fold")
        folds = sorted(set(al.index) & set(b.index))
        if not folds:
            continue
        t = paired_test(100 * al.loc[folds, "test_accuracy"].to_numpy(), 100 * b.loc[folds, "test_accuracy"].to_numpy())
        rows.append({"corpus": corpus, "n_cnn_layers": depth, "gamma": gamma, **t})
    return pd.DataFrame(rows)


def _seed_study_runs(runs: pd.DataFrame, depth: int, gamma: float) -> pd.DataFrame:
    """The runs of the seed study: the default 2D CNN biGRU at ``depth``, with AL at ``gamma``
    and without AL, every other field at its default (so no other setting is averaged in)."""
    runs = paper_literal_runs(runs)
    return runs[(runs.n_cnn_layers == depth) & runs.gamma.isin([gamma_label(gamma), WITHOUT_AL])]


def seed_spread(runs: pd.DataFrame, depth: int = 1, gamma: float = 3.33) -> pd.DataFrame:
    """Per seed, the mean over folds of test accuracy (%) for AL (depth, gamma) and without AL."""
    r = _seed_study_runs(runs, depth, gamma)
    r = r.assign(setting=np.where(r.gamma == WITHOUT_AL, WITHOUT_AL, f"γ = {gamma}"))
    per_seed = r.groupby(["setting", "seed"]).agg(folds=("fold", "nunique"), acc=("test_accuracy", "mean"))
    per_seed["acc"] *= 100
    return per_seed.reset_index()


def seed_averaged_test(runs: pd.DataFrame, depth: int = 1, gamma: float = 3.33) -> dict:
    """AL (depth, gamma) against without AL, paired over folds, each fold's accuracy (%) averaged
    over the seeds that both settings have for it. Averaging over seeds removes most of the seed
    noise from each fold's difference; the test is still over folds, so on Emo-DB its p cannot
    fall below 0.0625. Also returns the per-fold table: seed means, the seeds used and the std
    between seeds (ddof 1) of each setting on that fold, i.e. how much one run's accuracy moves
    with the seed alone."""
    r = _seed_study_runs(runs, depth, gamma)
    al = r[r.gamma != WITHOUT_AL].groupby(["fold", "seed"]).test_accuracy.mean()
    base = r[r.gamma == WITHOUT_AL].groupby(["fold", "seed"]).test_accuracy.mean()
    both = pd.concat({"al": al, "without": base}, axis=1).dropna()
    per_fold = (100 * both).groupby("fold").agg(al=("al", "mean"), without=("without", "mean"),
                                                seeds=("al", "size"), al_seed_std=("al", "std"),
                                                without_seed_std=("without", "std"))
    per_fold["diff"] = per_fold["al"] - per_fold["without"]
    test = paired_test(per_fold["al"].to_numpy(), per_fold["without"].to_numpy())
    return {**test, "per_fold": per_fold.reset_index()}


def best_setting_on_validation(runs: pd.DataFrame, n_folds: int) -> pd.Series | None:
    """Among the seed-0 settings that have every fold, the one with the best mean *validation*
    accuracy (with its mean test accuracy, reported, never used to choose); None if none has."""
    r = runs[runs.seed == 0]
    stats = r.groupby("setting").agg(folds=("fold", "nunique"), val=("val_accuracy", "mean"),
                                     test=("test_accuracy", "mean"), encoder=("encoder", "first"),
                                     n_cnn_layers=("n_cnn_layers", "first"), gamma=("gamma", "first"))
    stats = stats[stats.folds == n_folds]
    return None if stats.empty else stats.loc[stats.val.idxmax()]


def pooled_confusion(records: list[dict]) -> np.ndarray:
    """Sum of the test confusion matrices of several runs (e.g. every fold of one setting)."""
    return np.sum([np.array(r["test_confusion"]) for r in records], axis=0)


def setting_records(corpus: str, setting: str, seed: int = 0, folder=None) -> list[dict]:
    """The full records of one setting (:func:`setting_id`) and seed of a corpus."""
    out = []
    for rec in iter_records(folder, corpus):
        config = {**DEFAULTS, **rec["config"]}
        if config["seed"] == seed and setting_id(config) == setting:
            out.append(rec)
    return out




def build_tables(runs_dir=None, corpora=PAPER_CORPORA) -> dict[str, pd.DataFrame]:
    """Table 1 and Table 2 (with the openSMILE peers) of ``corpora`` from the records in
    ``runs_dir`` (default the reference records), as frames with numbers and with formatted
    "mean ± std" columns. A corpus without records gets every cell, each "missing"."""
    runs = {corpus: load_runs(runs_dir, corpus) for corpus in corpora}
    n_folds = {corpus: n_folds_of(corpus, runs_dir) for corpus in corpora}
    t1 = table1(runs, n_folds)
    t1_show = t1.assign(
        folds=[_folds_label(f, n) for f, n in zip(t1.folds, t1.of_folds)],
        ours=[fmt(m, s) if f else "missing" for m, s, f in zip(t1.acc_mean, t1.acc_std, t1.folds)],
        our_UAR=[fmt(m, s) if f else "missing" for m, s, f in zip(t1.uar_mean, t1.uar_std, t1.folds)],
        paper=[fmt(m, s) if not pd.isna(m) else "" for m, s in zip(t1.paper_acc_mean, t1.paper_acc_std)])
    t2 = table2(runs, n_folds).assign(method="AL network")
    ct = classical_table()
    ct = ct[ct.corpus.isin(list(corpora))]
    if len(ct):
        ct = ct.assign(method="openSMILE + SVM", encoder=ct.feature_set + " functionals, " + ct.kernel + " SVM",
                       gamma="", of_folds=[corpus_info(c).n_folds for c in ct.corpus])
        t2 = pd.concat([t2, ct], ignore_index=True)
    t2_show = t2.assign(
        folds=[_folds_label(f, n) for f, n in zip(t2.folds, t2.of_folds)],
        ours=[fmt(m, s) if f else "missing" for m, s, f in zip(t2.acc_mean, t2.acc_std, t2.folds)],
        our_UAR=[fmt(m, s) if f else "missing" for m, s, f in zip(t2.uar_mean, t2.uar_std, t2.folds)],
        paper=[fmt(m, s) if not pd.isna(m) else "" for m, s in zip(t2.paper_acc_mean, t2.paper_acc_std)])
    return {"table1": t1, "table1_show": t1_show, "table2": t2, "table2_show": t2_show}


def write_tables(runs_dir=None, results_dir=None) -> list[Path]:
    """Regenerate the committed tables from the reference records: ``runs_<corpus>.csv``,
    ``table1.csv``/``.md`` and ``table2.csv``/``.md`` (``sier tables``)."""
    runs_dir = Path(runs_dir) if runs_dir is not None else REFERENCE_RUNS
    out = Path(results_dir) if results_dir is not None else RESULTS
    for corpus in PAPER_CORPORA:
        collect_runs(corpus, runs_dir, out / f"runs_{corpus}.csv")
    t = build_tables(runs_dir)
    written = [write_csv_atomic(t["table1"], out / "table1.csv"), write_csv_atomic(t["table2"], out / "table2.csv")]
    with atomic_write(out / "table1.md") as f:
        f.write("# Table 1: test accuracy (%) by CNN depth and γ, mean ± std over folds\n\n"
                "Generated by `sier tables` (sierlib.results.write_tables) from the records in results/runs. "
                "'missing' = not run yet; folds = folds run / folds of the corpus.\n\n"
                + markdown_table(t["table1_show"][["corpus", "n_cnn_layers", "gamma", "folds", "ours", "our_UAR",
                                                   "paper"]]))
    with atomic_write(out / "table2.md") as f:
        f.write("# Table 2: encoders with and without AL, and openSMILE + SVM peers; test accuracy %, "
                "mean ± std over folds\n\n"
                "Generated by `sier tables` (sierlib.results.write_tables) from the records in results/runs and "
                "results/classical. 'missing' = not run yet; the paper reports AL only.\n\n"
                + markdown_table(t["table2_show"][["corpus", "method", "encoder", "gamma", "folds", "ours", "our_UAR",
                                                   "paper"]]))
    return written + [out / "table1.md", out / "table2.md"]


def paper_literal_runs(runs: pd.DataFrame, encoder: str = "2dcnn_bigru") -> pd.DataFrame:
    """The runs of ``encoder`` (default: the paper's 2D CNN biGRU) with every field at its default
    but corpus, fold, seed, gamma and depth: the paper-literal setting, all seeds."""
    fixed = {k: v for k, v in DEFAULTS.items() if k not in ("corpus", "fold", "seed", "gamma", "n_cnn_layers")}
    fixed["encoder"] = encoder
    mask = pd.Series(True, index=runs.index)
    for k, v in fixed.items():
        mask &= runs[k].isna() if v is None else runs[k] == v
    return runs[mask]
