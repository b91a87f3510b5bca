"""Run records -> tables: one metrics row per run (ERTK-style), aggregated over folds."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .corpora import REPO_ROOT
from .folds import N_FOLDS

# The paper's Table 1 (accuracy %, mean +- std over folds), keyed by (depth, gamma or None).
PAPER_TABLE1 = {
    "emodb": {(1, None): (67.3, 6.5), (1, 1.25): (72.1, 8.4), (1, 2.5): (70.6, 5.9), (1, 3.33): (73.6, 7.1),
              (2, None): (68.3, 9.6), (2, 1.25): (68.0, 8.0), (2, 2.5): (71.0, 7.6), (2, 3.33): (67.6, 7.4),
              (3, None): (65.7, 10.6), (3, 1.25): (65.1, 7.2), (3, 2.5): (66.0, 5.5), (3, 3.33): (66.6, 5.6),
              (4, None): (59.6, 5.3), (4, 1.25): (66.0, 6.9), (4, 2.5): (62.9, 9.6), (4, 3.33): (65.2, 7.2)},
    "ravdess": {(1, None): (56.3, 8.1), (1, 1.25): (60.6, 10.3), (1, 2.5): (61.2, 8.4), (1, 3.33): (60.6, 10.6),
                (2, None): (56.3, 9.8), (2, 1.25): (59.4, 7.6), (2, 2.5): (60.9, 8.5), (2, 3.33): (60.5, 9.9),
                (3, None): (55.8, 8.8), (3, 1.25): (53.7, 6.7), (3, 2.5): (59.4, 7.6), (3, 3.33): (58.9, 8.5),
                (4, None): (54.0, 11.3), (4, 1.25): (54.2, 8.7), (4, 2.5): (54.1, 9.3), (4, 3.33): (51.3, 11.1)},
}

ROW_FIELDS = ["test_accuracy", "test_uar", "test_macro_f1", "val_accuracy", "best_epoch",
              "train_speaker_accuracy_final", "train_speaker_accuracy_best", "wall_time_s", "device", "git_commit"]


def load_records(folder: str | os.PathLike | None = None, corpus: str | None = None) -> pd.DataFrame:
    """One row per finished run record under ``folder`` (default ``results/runs``)."""
    folder = Path(folder) if folder is not None else REPO_ROOT / "results" / "runs"
    rows = []
    for path in sorted(folder.rglob("*.json")):
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if rec.get("status") != "finished" or (corpus and rec["params"]["corpus"] != corpus):
            continue
        p = {k: v for k, v in rec["params"].items() if k not in ("features", "encoder_sizes")}
        row = {**p, **{k: rec.get(k) for k in ROW_FIELDS}, "encoder": rec["params"].get("encoder", "2dcnn_bigru"),
               "name": rec["name"]}
        rows.append(row)
    df = pd.DataFrame(rows)
    if len(df):
        df["gamma"] = df["gamma"].astype(object).where(df["gamma"].notna(), None)
    return df


def summarise(runs: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean and std (over folds, ddof=1) of test accuracy and UAR in %, with the fold count."""
    g = runs
    if "gamma" in runs:
        g = runs.assign(gamma=runs["gamma"].map(lambda v: "without AL" if v is None or pd.isna(v) else v))
    out = g.groupby(by, dropna=False).agg(
        folds=("fold", "nunique"),
        acc_mean=("test_accuracy", lambda s: 100 * s.mean()),
        acc_std=("test_accuracy", lambda s: 100 * s.std(ddof=1) if len(s) > 1 else np.nan),
        uar_mean=("test_uar", lambda s: 100 * s.mean()),
        uar_std=("test_uar", lambda s: 100 * s.std(ddof=1) if len(s) > 1 else np.nan),
    ).reset_index()
    return out


def fmt(mean: float, std: float) -> str:
    if mean is None or pd.isna(mean):
        return "missing"
    return f"{mean:.1f} ± {std:.1f}" if not pd.isna(std) else f"{mean:.1f}"


PAPER_TABLE2 = {  # accuracy %, AL, from the paper's Table 2
    "emodb": {"tdnn_bilstm": (61.4, 8.7), "1dcnn_gru": (44.2, 4.7), "2dcnn_bigru": (73.6, 7.1)},
    "ravdess": {"tdnn_bilstm": (52.4, 10.9), "1dcnn_gru": (30.5, 4.6), "2dcnn_bigru": (61.2, 8.4)},
}
SIZE_COLS = ["kernel_size", "n_filters", "gru_hidden", "fc_hidden", "dropout", "epochs", "batch_size", "lr",
             "weight_decay"]


def load_runs_csv(corpus: str, folder=None) -> pd.DataFrame:
    """``results/runs_<corpus>.csv`` (written by the sweep's collect step), gamma as float or None."""
    folder = Path(folder) if folder is not None else REPO_ROOT / "results"
    path = folder / f"runs_{corpus}.csv"
    try:
        df = pd.read_csv(path)
    except (FileNotFoundError, pd.errors.EmptyDataError):  # no runs of this corpus yet
        return pd.DataFrame()
    df["gamma"] = df["gamma"].astype(object).where(df["gamma"].notna(), None)
    return df


def select_size_on_validation(runs: pd.DataFrame, setting: list[str]) -> pd.DataFrame:
    """For each setting (e.g. depth x gamma), keep the runs of the network size (section 4.2 grid
    point and training settings) with the best mean *validation* accuracy over folds, among the
    sizes with the most folds. Test accuracy plays no part in the choice."""
    if runs.empty:
        return runs
    keys = setting + SIZE_COLS
    g = runs.assign(_g=runs["gamma"].map(str)).groupby([c if c != "gamma" else "_g" for c in keys], dropna=False)
    stats = g.agg(folds=("fold", "nunique"), val=("val_accuracy", "mean")).reset_index()
    stats = stats.sort_values(["folds", "val"], ascending=False)
    best = stats.drop_duplicates([c if c != "gamma" else "_g" for c in setting])
    chosen = runs.assign(_g=runs["gamma"].map(str)).merge(best[[c if c != "gamma" else "_g" for c in keys]])
    return chosen.drop(columns="_g")


def table1(corpora=("emodb", "ravdess"), folder=None) -> pd.DataFrame:
    """The paper's Table 1 (depth x gamma) from our seed-0 2D CNN biGRU runs, beside the paper.
    Cells without runs are kept, with 0 folds and no numbers."""
    rows = []
    for corpus in corpora:
        runs = load_runs_csv(corpus, folder)
        if not runs.empty:
            runs = runs[(runs.encoder == "2dcnn_bigru") & (runs.seed == 0)]
            runs = select_size_on_validation(runs, ["n_cnn_layers", "gamma"])
        for (depth, gamma), (pm, ps) in PAPER_TABLE1[corpus].items():
            sel = runs[(runs.n_cnn_layers == depth) & (runs.gamma.map(str) == str(gamma))] if not runs.empty else runs
            row = {"corpus": corpus, "n_cnn_layers": depth, "gamma": "without AL" if gamma is None else gamma,
                   "folds": int(sel.fold.nunique()) if len(sel) else 0, "of_folds": N_FOLDS[corpus],
                   "acc_mean": np.nan, "acc_std": np.nan, "uar_mean": np.nan, "uar_std": np.nan,
                   "paper_acc_mean": pm, "paper_acc_std": ps}
            if len(sel):
                s = summarise(sel, ["n_cnn_layers"]).iloc[0]
                row.update({k: s[k] for k in ("acc_mean", "acc_std", "uar_mean", "uar_std")})
                size = sel.iloc[0]
                row["size"] = f"k{size.kernel_size} c{size.n_filters} h{size.gru_hidden} fc{size.fc_hidden}"
            rows.append(row)
    return pd.DataFrame(rows)


def paired_test(a: np.ndarray, b: np.ndarray) -> dict:
    """Paired comparison across folds: mean difference a - b, Wilcoxon signed-rank p and an exact
    sign-flip permutation p (two-sided). With 5 folds neither p can fall below 0.0625."""
    from itertools import product

    from scipy.stats import wilcoxon

    d = np.asarray(a, float) - np.asarray(b, float)
    out = {"n_folds": len(d), "mean_diff": float(d.mean()) if len(d) else np.nan,
           "wins": int((d > 0).sum()), "losses": int((d < 0).sum())}
    if len(d) < 2:
        return {**out, "wilcoxon_p": np.nan, "permutation_p": np.nan}
    observed = abs(d.mean())
    flips = np.array(list(product([1, -1], repeat=len(d)))) if len(d) <= 16 else None
    perm = float(np.mean(np.abs((flips * d).mean(axis=1)) >= observed - 1e-12)) if flips is not None else np.nan
    try:
        w = float(wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
    except ValueError:
        w = np.nan
    return {**out, "wilcoxon_p": w, "permutation_p": perm}


def al_vs_without(runs: pd.DataFrame, corpus: str) -> pd.DataFrame:
    """For each depth and gamma, the paired test of AL against without-AL over the folds both have."""
    rows = []
    runs = runs[(runs.encoder == "2dcnn_bigru") & (runs.seed == 0)]
    for depth in sorted(runs.n_cnn_layers.unique()):
        base = runs[(runs.n_cnn_layers == depth) & runs.gamma.isna()].set_index("fold")
        for gamma in sorted(g for g in runs.gamma.dropna().unique()):
            al = runs[(runs.n_cnn_layers == depth) & (runs.gamma == gamma)].set_index("fold")
            folds = sorted(set(al.index) & set(base.index))
            if not folds:
                continue
            t = paired_test(100 * al.loc[folds, "test_accuracy"].to_numpy(),
                            100 * base.loc[folds, "test_accuracy"].to_numpy())
            rows.append({"corpus": corpus, "n_cnn_layers": depth, "gamma": gamma, **t})
    return pd.DataFrame(rows)


def markdown_table(df: pd.DataFrame) -> str:
    """A plain Markdown table (no extra dependency)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join("" if pd.isna(v) else str(v) for v in r.tolist()) + " |")
    return "\n".join(lines) + "\n"


BEST_GAMMA = {"emodb": 3.33, "ravdess": 2.5}  # the paper's best AL setting (1 CNN block) per corpus
ENCODER_NAMES = {"2dcnn_bigru": "2D CNN biGRU (MFCC)", "tdnn_bilstm": "TDNN biLSTM (MFCC)",
                 "1dcnn_gru": "1D CNN GRU (log-Mel, energy, pitch)"}


def table2(corpora=("emodb", "ravdess"), folder=None) -> pd.DataFrame:
    """The paper's Table 2: each encoder (1 block for the 2D CNN biGRU) with AL at the corpus's
    best gamma of Table 1 and without AL, seed 0, beside the paper's AL numbers."""
    rows = []
    for corpus in corpora:
        runs = load_runs_csv(corpus, folder)
        if not runs.empty:
            runs = runs[(runs.seed == 0) & (runs.n_cnn_layers == 1)]
            runs = select_size_on_validation(runs, ["encoder", "gamma"])
        for encoder, (pm, ps) in PAPER_TABLE2[corpus].items():
            for gamma in (BEST_GAMMA[corpus], None):
                sel = runs[(runs.encoder == encoder) & (runs.gamma.map(str) == str(gamma))] if not runs.empty else runs
                row = {"corpus": corpus, "encoder": ENCODER_NAMES[encoder],
                       "gamma": "without AL" if gamma is None else gamma,
                       "folds": int(sel.fold.nunique()) if len(sel) else 0, "of_folds": N_FOLDS[corpus],
                       "acc_mean": np.nan, "acc_std": np.nan, "uar_mean": np.nan, "uar_std": np.nan,
                       "paper_acc_mean": pm if gamma is not None else np.nan,
                       "paper_acc_std": ps if gamma is not None else np.nan}
                if len(sel):
                    s = summarise(sel, ["encoder"]).iloc[0]
                    row.update({k: s[k] for k in ("acc_mean", "acc_std", "uar_mean", "uar_std")})
                rows.append(row)
    return pd.DataFrame(rows)


def seed_spread(runs: pd.DataFrame, depth: int = 1, gamma: float = 3.33) -> pd.DataFrame:
    """Per seed, the mean over folds of test accuracy (%) for AL (depth, gamma) and without AL,
    using only seeds that have every fold for both settings."""
    r = runs[(runs.encoder == "2dcnn_bigru") & (runs.n_cnn_layers == depth)]
    r = r[r.gamma.isna() | (r.gamma == gamma)].assign(setting=lambda d: np.where(d.gamma.isna(), "without AL", f"γ = {gamma}"))
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
    r = runs[(runs.encoder == "2dcnn_bigru") & (runs.n_cnn_layers == depth)]
    al = r[r.gamma == gamma].groupby(["fold", "seed"]).test_accuracy.mean()
    base = r[r.gamma.isna()].groupby(["fold", "seed"]).test_accuracy.mean()
    both = pd.concat({"al": al, "without": base}, axis=1).dropna()
    per_fold = (100 * both).groupby("fold").agg(al=("al", "mean"), without=("without", "mean"),
                                                seeds=("al", "size"), al_seed_std=("al", "std"),
                                                without_seed_std=("without", "std"))
    per_fold["diff"] = per_fold["al"] - per_fold["without"]
    test = paired_test(per_fold["al"].to_numpy(), per_fold["without"].to_numpy()) if len(per_fold) else \
        paired_test(np.array([]), np.array([]))
    return {**test, "per_fold": per_fold.reset_index()}


def pooled_confusion(records: list[dict]) -> np.ndarray:
    """Sum of the test confusion matrices of several runs (e.g. every fold of one setting)."""
    return np.sum([np.array(r["test_confusion"]) for r in records], axis=0)


def read_records(corpus: str, where: dict, folder=None) -> list[dict]:
    """Full JSON records of a corpus whose params match ``where`` (e.g. {"gamma": 3.33})."""
    folder = Path(folder) if folder is not None else REPO_ROOT / "results" / "runs"
    out = []
    for path in sorted((folder / corpus).glob("*.json")):
        rec = json.loads(path.read_text())
        p = rec.get("params", {})
        if rec.get("status") == "finished" and all(p.get(k, "2dcnn_bigru" if k == "encoder" else None) == v
                                                   for k, v in where.items()):
            out.append(rec)
    return out
