"""The adversary study: does the speaker adversary remove speaker information, and where does that
help emotion? Probe runs (runs with ``speaker_holdout > 0``, see :mod:`sierlib.speakerinfo`) of
the recipe at a depth, with the adversary's strength ``lambda_max`` going from 0 (the capacity
control: the speaker head learns on the embedding, the encoder is not pushed, so the encoder is
the network without AL) to strong, paired by fold and seed.

The committed study is ``results/adversary/runs`` (written only by ``sier adversary run
--reference``); its tables are derived here: ``results/probes_<corpus>.csv`` (one row per run)
and ``results/adversary_tables.csv``/``.md`` (one row per setting: means ± std over fold x seed
runs, and each AL setting paired against the capacity control of the same folds and seeds).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from .config import ADVERSARY_FIELDS, RunConfig
from .paper import PAPER_TABLE1
from .paths import ADVERSARY_RUNS, ADVERSARY_TABLES, RESULTS, atomic_write, write_csv_atomic
from .recipe import Stage, decide, recipe_config, validation_score
from .records import iter_records, speaker_information_at
from .registry import CORPORA, PRETTY
from .stats import WITHOUT_AL, fmt, gamma_label, markdown_table, mean_std, paired_test

PAIRED_COLUMNS = ["paired_runs", "folds_paired", "emotion_diff", "emotion_ci_low", "emotion_ci_high", "emotion_p",
                  "speaker_probe_diff", "speaker_probe_p"]  # an AL setting against its control, in tradeoff_table
MIN_VERDICT_FOLDS = 3  # fewer paired folds are listed, judged on nothing (2 folds can give a CI of width 0)
HOLDOUT = 0.2  # the share of each training speaker's utterances a probe run holds out
STRENGTHS = (0.0, 1.0, 3.0, 9.0)  # lambda_max: 0 is the capacity control, 1 the paper
PROBE_COLUMNS = ["speaker_linear_probe", "speaker_mlp_probe", "speaker_head", "unseen_speaker_eer",
                 "unseen_speaker_eer_standardised", "emotion_linear_probe"]  # the EER standardised: newer runs only
# The weights whose emotion and speaker information the trade-off puts side by side: the best
# validation epoch's, because most committed probe runs measured speaker information on those
# only (a run made by the current code measures every selection's weights; see
# sierlib.records.speaker_information_at). The recipe selects the SWA weights: the tables show
# them too, over the runs that measured them.
PROBE_SELECTION = "best_val"

# Runs with adversary_head_steps > 1 made at these commits folded each batch into the speaker
# head's BatchNorm running statistics k times (fixed in sierlib.train.head_steps), so the head
# scored in eval mode saw mostly the last batches before it: their per-epoch head curves are left
# out, and so is their head's score on the held-out utterances (speaker_head). The rest reads the
# encoder, whose statistics the extra head steps never touch: the probes, the EER and the
# emotion accuracies are unaffected.
BIASED_HEAD_CURVES = ("993a6175623a6ff9880db7b5cf5434fb3561cef2",)


def _biased_head(rec: dict) -> bool:
    return (rec["config"].get("adversary_head_steps", 1) > 1
            and str(rec.get("git_commit", "")).startswith(BIASED_HEAD_CURVES))


def adversary_plan(recipe: dict, corpus: str, gamma: float, strengths=STRENGTHS, depths=(1,), seeds=(0, 1),
                   folds=None, **knobs) -> list[RunConfig]:
    """The probe runs of the study: the recipe at each depth, AL at ``gamma`` with each
    ``lambda_max`` (0: the capacity control), every fold and seed, ``speaker_holdout`` :data:`HOLDOUT`.
    ``knobs`` (``adversary_warmup_epochs``, ``adversary_lr_scale``, ``adversary_head_steps``,
    ``speaker_fc_hidden``) set the
    adversary's other knobs of the runs with ``lambda_max > 0``; the capacity control keeps the
    paper's head, so every variant pairs with the same control runs."""
    unknown = set(knobs) - set(ADVERSARY_FIELDS[1:])
    if unknown:
        raise ValueError(f"unknown adversary knobs {sorted(unknown)}; the knobs are {', '.join(ADVERSARY_FIELDS[1:])}")
    folds = range(CORPORA[corpus].n_folds) if folds is None else folds
    return [recipe_config(recipe, corpus=corpus, n_cnn_layers=depth, gamma=gamma, lambda_max=float(s),
                          speaker_holdout=HOLDOUT, fold=fold, seed=seed, **(knobs if s > 0 else {}))
            for depth in depths for s in strengths for seed in seeds for fold in folds]


def adversary_label(config: dict) -> str:
    """A setting of the adversary in words: ``"control"`` (``lambda_max`` 0), ``"λ×1"`` (the
    paper), ``"λ×3, warm-up 5, head lr ×10"``, ..."""
    c = {**RunConfig().to_dict(), **config}
    if c["gamma"] is None:
        return WITHOUT_AL  # no speaker head: lambda_max and the other knobs do nothing
    if c["lambda_max"] == 0:
        return "control"
    words = [f"λ×{c['lambda_max']:g}"]
    words += [f"warm-up {c['adversary_warmup_epochs']}"] if c["adversary_warmup_epochs"] else []
    words += [f"head lr ×{c['adversary_lr_scale']:g}"] if c["adversary_lr_scale"] != 1 else []
    words += [f"{c['adversary_head_steps']} head steps"] if c["adversary_head_steps"] != 1 else []
    words += [f"head {c['speaker_fc_hidden']} units"] if c["speaker_fc_hidden"] is not None else []
    return ", ".join(words)


def _knobs(c: dict) -> tuple:
    """A setting's sort key: the knobs, the paper's head first (0 for a default hidden size)."""
    hidden = c["speaker_fc_hidden"]
    return (c["lambda_max"], c["adversary_warmup_epochs"], c["adversary_lr_scale"], c["adversary_head_steps"],
            0 if pd.isna(hidden) else hidden)


def recipe_key(config: dict) -> str:
    """What a probe run trained, less what the study varies (fold, seed, γ, the adversary's knobs):
    a short hash, equal for the runs of one recipe, so that runs of two recipes are never pooled."""
    c = {**RunConfig().to_dict(), **config}
    base = {k: v for k, v in c.items() if k not in {"fold", "seed", "gamma", *ADVERSARY_FIELDS}}
    return hashlib.sha256(json.dumps(base, sort_keys=True).encode()).hexdigest()[:8]


def _one_recipe_per_cell(rows: pd.DataFrame) -> None:
    if rows.empty:
        return
    mixed = rows.groupby(["corpus", "n_cnn_layers", "gamma"]).recipe.nunique()
    if (mixed > 1).any():
        cells = ", ".join(f"{c} {d} block(s) γ {g}" for c, d, g in mixed[mixed > 1].index)
        raise ValueError(f"the probe runs of {cells} were trained with different recipes (other settings than fold, "
                         f"seed and the adversary's knobs), and pairing them would compare unlike networks: keep one "
                         f"recipe's runs in a runs folder (--runs-dir) and derive the tables from it")


def probe_rows(runs_dir=None, corpus: str | None = None, selection: str = PROBE_SELECTION) -> pd.DataFrame:
    """One row per probe run that measured the weights of ``selection``: its setting, and the
    emotion test accuracy and UAR and the speaker information (fractions) of those same weights.
    The adversary's own head is left blank for the runs of :data:`BIASED_HEAD_CURVES`."""
    rows = []
    for rec in iter_records(runs_dir if runs_dir is not None else ADVERSARY_RUNS, corpus):
        info = speaker_information_at(rec, selection)
        if info is None:
            continue
        c = {**RunConfig().to_dict(), **rec["config"]}
        chosen = rec["selections"][selection]
        probes = {k: info.get(k) for k in PROBE_COLUMNS}
        if _biased_head(rec):
            probes["speaker_head"] = None
        rows.append({"corpus": c["corpus"], "encoder": c["encoder"], "n_cnn_layers": c["n_cnn_layers"],
                     "gamma": gamma_label(c["gamma"]), "adversary": adversary_label(c), "recipe": recipe_key(c),
                     **{k: c[k] for k in ADVERSARY_FIELDS}, "fold": c["fold"], "seed": c["seed"],
                     "selection": selection, "test_accuracy": chosen["test_accuracy"], "test_uar": chosen["test_uar"],
                     "val_accuracy": chosen["val_accuracy"], **probes,
                     "speaker_chance": info["speaker_chance"], "emotion_chance": info["emotion_chance"],
                     "device": rec.get("device"), "git_commit": rec.get("git_commit"), "name": rec["name"]})
    return pd.DataFrame(rows)


def _lend_controls(cells: dict, recipe_of) -> dict:
    """``cells``: ``(corpus, depth, γ label)`` -> ``(config, payload)`` pairs. To each AL cell without
    control runs of its own, ``(γ trained at, pair)`` for the controls of its corpus, depth and
    recipe (``recipe_of``) at other γ, one per fold and seed (the γ with most controls first): λ is
    0 throughout a control, so γ trains nothing in it. Runs without AL (γ None) borrow nothing."""
    controls = {key: [item for item in items if item[0]["lambda_max"] == 0] for key, items in cells.items()}
    lent = {}
    for (corpus, depth, gamma), items in cells.items():
        if gamma == WITHOUT_AL or controls[(corpus, depth, gamma)] or not items:
            continue
        recipes = {recipe_of(item) for item in items}
        donors = sorted(((g, ctl) for (c, d, g), ctl in controls.items() if (c, d) == (corpus, depth) and ctl),
                        key=lambda gc: (-len(gc[1]), gc[0]))
        seen, borrowed = set(), []
        for g, ctl in donors:
            for item in ctl:
                unit = (item[0]["fold"], item[0]["seed"])
                if recipe_of(item) in recipes and unit not in seen:
                    seen.add(unit)
                    borrowed.append((g, item))
        if borrowed:
            lent[(corpus, depth, gamma)] = borrowed
    return lent


def share_controls(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` (:func:`probe_rows`) with the capacity control runs lent to each γ whose AL runs
    have none of their own (:func:`_lend_controls`), relabelled to that γ; column
    ``control_gamma``: the γ a lent control was trained at, blank for a γ's own runs."""
    cells = {}
    for r in rows.to_dict("records"):
        cells.setdefault((r["corpus"], r["n_cnn_layers"], r["gamma"]), []).append((r, None))
    lent = [{**r, "gamma": key[2], "control_gamma": g}
            for key, items in _lend_controls(cells, lambda item: item[0]["recipe"]).items() for g, (r, _) in items]
    own = rows.assign(control_gamma="")
    return pd.concat([own, pd.DataFrame(lent)], ignore_index=True) if lent else own


def tradeoff_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per corpus, depth, gamma and adversary setting (:func:`adversary_label`): means ± std (%) over its fold x seed
    runs of emotion test accuracy, held-out speaker identification (linear, MLP, the adversary's
    head), unseen-speaker EER and the emotion probe; and, for ``lambda_max > 0``, the paired
    difference from the capacity control (``lambda_max = 0``, same folds and seeds; each fold's
    seeds averaged first) in emotion test accuracy and in the linear speaker probe, with exact
    sign-flip p-values. A γ without control runs of its own is paired with those of another γ
    (:func:`share_controls`; ``control_gamma`` names it)."""
    _one_recipe_per_cell(rows)
    rows = share_controls(rows)
    out = []
    keys = ["corpus", "n_cnn_layers", "gamma", "adversary"]
    rows = rows.assign(_order=[_knobs(r) for r in rows[list(ADVERSARY_FIELDS)].to_dict("records")])
    for key, cell in sorted(rows.groupby(keys), key=lambda kc: kc[0][:3] + (kc[1]._order.iloc[0],)):
        row = {**dict(zip(keys, key)), **cell[list(ADVERSARY_FIELDS)].iloc[0].to_dict()}
        row["runs"] = len(cell)
        for col in ["test_accuracy", "test_uar"] + PROBE_COLUMNS:
            m, s = mean_std(cell[col].dropna())
            row[f"{col}_mean"], row[col] = m, fmt(m, s) if len(cell[col].dropna()) else ""
        row["speaker_chance"] = 100 * cell.speaker_chance.mean()
        row["control_gamma"] = " ".join(sorted(set(cell.control_gamma) - {""}))
        control = rows[(rows.corpus == key[0]) & (rows.n_cnn_layers == key[1]) & (rows.gamma == key[2])
                       & (rows.lambda_max == 0)]
        if row["lambda_max"] > 0 and len(control):
            both = cell.merge(control, on=["fold", "seed"], suffixes=("", "_control"))
            per_fold = both.groupby("fold")[["test_accuracy", "test_accuracy_control", "speaker_linear_probe",
                                             "speaker_linear_probe_control"]].mean()
            emo = paired_test(100 * per_fold.test_accuracy, 100 * per_fold.test_accuracy_control)
            spk = paired_test(100 * per_fold.speaker_linear_probe, 100 * per_fold.speaker_linear_probe_control)
            row.update(paired_runs=len(both), folds_paired=len(per_fold), emotion_diff=emo["mean_diff"],
                       emotion_ci_low=emo["ci_low"], emotion_ci_high=emo["ci_high"],
                       emotion_p=emo["permutation_p"], speaker_probe_diff=spk["mean_diff"],
                       speaker_probe_p=spk["permutation_p"])
        out.append(row)
    table = pd.DataFrame(out)
    for col in PAIRED_COLUMNS:  # blank where nothing was paired (a study of controls only)
        table[col] = table.get(col, float("nan"))
    return table


def strength_stage(settings) -> Stage:
    """The adversary's settings (dicts of :data:`~sierlib.config.ADVERSARY_FIELDS`) as a stage of
    the recipe's kind: options simplest first (no push, then by ``lambda_max`` and the other knobs)."""
    settings = sorted({tuple(s[k] for k in ADVERSARY_FIELDS) for s in settings},
                      key=lambda t: _knobs(dict(zip(ADVERSARY_FIELDS, t))))
    return Stage("adversary strength (lambda_max)",
                 tuple(("no push (capacity control)" if s[0] == 0 else
                        adversary_label(dict(zip(ADVERSARY_FIELDS, s))).replace("λ×", "lambda_max "),
                        {k: v for k, v in zip(ADVERSARY_FIELDS, s) if k == "lambda_max" or v != RunConfig().to_dict()[k]})
                       for s in settings))


def decide_strength(runs_dir=None, selection: str = "swa") -> pd.DataFrame:
    """The adversary's strength decided on the validation speakers, as the recipe's stages are
    (:func:`sierlib.recipe.decide`: the best mean validation accuracy of ``selection`` wins unless a
    simpler option, "no push" first, is within one standard error of the paired difference),
    for each corpus, depth and γ of the probe runs with two settings or more, over the fold x
    seed runs that every setting has. With a held-out check: for each test fold, the decision again without the folds whose
    validation speakers are that fold's test speakers, and the test accuracy that decision has
    on that fold (against no push); a cell whose settings share fewer than :data:`MIN_VERDICT_FOLDS` folds is
    skipped. A γ without controls decides against another γ's (:func:`_lend_controls`, ``control_gamma``)."""
    records = list(iter_records(runs_dir if runs_dir is not None else ADVERSARY_RUNS))
    by_cell = {}
    for rec in records:
        if "speaker_information" not in rec:
            continue
        c = {**RunConfig().to_dict(), **rec["config"]}
        by_cell.setdefault((c["corpus"], c["n_cnn_layers"], gamma_label(c["gamma"])), []).append((c, rec))
    _one_recipe_per_cell(pd.DataFrame([{"corpus": k[0], "n_cnn_layers": k[1], "gamma": k[2], "recipe": recipe_key(c)}
                                       for k, runs in by_cell.items() for c, _ in runs]))
    lent = _lend_controls(by_cell, lambda item: recipe_key(item[0]))
    for key, items in lent.items():
        by_cell[key] = by_cell[key] + [item for _, item in items]
    out = []
    for (corpus, depth, gamma), runs in sorted(by_cell.items()):
        stage = strength_stage([c for c, _ in runs])
        if len(stage.options) < 2:  # a cell with the control only has nothing to decide
            continue
        defaults = RunConfig().to_dict()
        label_of = {tuple({**defaults, **opt}[k] for k in ADVERSARY_FIELDS): label for label, opt in stage.options}
        scores, tests, roles = {}, {}, {}
        for c, rec in runs:
            key, label = (c["n_cnn_layers"], c["fold"], c["seed"]), label_of[tuple(c[k] for k in ADVERSARY_FIELDS)]
            scores.setdefault(label, {})[key] = validation_score(rec, selection)
            tests.setdefault(label, {})[key] = rec["selections"][selection]["test_accuracy"]
            roles[c["fold"]] = (set(rec["speakers"]["val"]), set(rec["speakers"]["test"]))
        common = set.intersection(*(set(v) for v in scores.values()))
        if len({fold for _, fold, _ in common}) < MIN_VERDICT_FOLDS:  # too few folds to decide on, as the verdict
            continue
        scores = {k: pd.Series({i: v[i] for i in common}).sort_index() for k, v in scores.items()}
        tests = {k: pd.Series({i: v[i] for i in common}).sort_index() for k, v in tests.items()}
        chosen, table = decide(stage, scores)
        table.insert(0, "corpus", corpus)
        table.insert(1, "n_cnn_layers", depth)
        table.insert(2, "gamma", gamma)
        table["control_gamma"] = " ".join(sorted({g for g, _ in lent.get((corpus, depth, gamma), [])}))
        table["check"] = "all folds"
        out.append(table)
        folds = sorted({f for _, f, _ in common})
        control = stage.options[0][0]
        for fold in folds:
            keep = [g for g in folds if not roles[g][0] & roles[fold][1] and g != fold]
            sub = {k: v[v.index.get_level_values(1).isin(keep)] for k, v in scores.items()}
            held_chosen, _ = decide(stage, sub)
            on_fold = {k: v[v.index.get_level_values(1) == fold].mean() for k, v in tests.items()}
            out.append(pd.DataFrame([{"corpus": corpus, "n_cnn_layers": depth, "gamma": gamma,
                                      "factor": stage.factor, "option": held_chosen, "chosen": True,
                                      "check": f"test fold {fold} held out (decided on folds "
                                               f"{' '.join(map(str, keep))})",
                                      "test_fold_accuracy": 100 * on_fold[held_chosen],
                                      "test_fold_accuracy_no_push": 100 * on_fold[control]}]))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


SHOWN = ["corpus", "n_cnn_layers", "gamma", "adversary", "runs", "test_accuracy", "speaker_linear_probe",
         "speaker_mlp_probe", "speaker_head", "unseen_speaker_eer", "emotion_linear_probe", "folds_paired",
         "emotion_diff", "emotion_p", "speaker_probe_diff", "speaker_probe_p", "control_gamma"]


def write_adversary_tables(runs_dir=None, results_dir=None) -> list[Path]:
    """Write ``probes_<corpus>.csv`` for each corpus with probe runs and ``adversary_tables.csv``/``.md``."""
    out = Path(results_dir) if results_dir is not None else RESULTS
    rows = probe_rows(runs_dir)
    if rows.empty:
        folder = runs_dir if runs_dir is not None else ADVERSARY_RUNS
        raise FileNotFoundError(f"no probe runs in {folder}: train some with `sier adversary run` (they go there), "
                                "or derive the committed study's tables with `sier adversary tables --reference`")
    swa_rows = probe_rows(runs_dir, selection="swa")  # the recipe's weights, where they were measured
    written = []
    for corpus, part in pd.concat([rows, swa_rows]).groupby("corpus"):
        written.append(write_csv_atomic(
            part.sort_values(["selection", "n_cnn_layers", "gamma", *ADVERSARY_FIELDS, "seed", "fold"]),
            out / f"probes_{corpus}.csv"))
    table = tradeoff_table(rows)
    swa_table = tradeoff_table(swa_rows) if len(swa_rows) else pd.DataFrame()
    decisions = decide_strength(runs_dir)
    written.append(write_csv_atomic(decisions, out / "adversary_decisions.csv"))
    csv_path = out / ADVERSARY_TABLES.name
    written.append(write_csv_atomic(pd.concat([table.assign(selection=PROBE_SELECTION),
                                               swa_table.assign(selection="swa")], ignore_index=True), csv_path))
    md = ("# The speaker adversary: speaker information and emotion, by the adversary's strength\n\n"
          "Generated by `sier adversary tables` (sierlib.adversary.write_adversary_tables) from the probe runs in "
          "results/adversary/runs. Each run is the recipe with 20 % of every training speaker's utterances held out "
          "of training; λ×k scales the adversarial weight by lambda_max = k (control = 0: the speaker head learns "
          "but the encoder is not pushed; λ×1: the paper); warm-up n holds λ at 0 for the first n epochs, head lr ×m "
          "trains the speaker head at m times the learning rate, k head steps gives it k - 1 more updates of its own "
          "per batch, head n units widens it. Means ± std (%) over fold x seed runs: test_accuracy = "
          "emotion on the test speakers; speaker_linear_probe / speaker_mlp_probe / speaker_head = speaker "
          "identification of the held-out utterances (chance 1/training speakers); unseen_speaker_eer = cosine "
          "verification EER over the validation and test speakers (chance 50); emotion_linear_probe = emotion of the "
          "held-out utterances. *_diff: paired against lambda_max 0 over folds (seeds averaged), exact sign-flip p; "
          "control_gamma: a γ without control runs of its own is paired with the controls trained at this γ (λ is 0 "
          "throughout a control, so γ trains nothing in it). "
          "Every figure of a row is of the same weights: the best validation epoch's (every probe run measured "
          "those), then, in the sections marked SWA, the recipe's SWA weights (the runs that measured them).\n")
    for weights, part_table in (("best validation epoch", table), ("SWA", swa_table)):
        for corpus, part in (part_table.groupby("corpus", sort=False) if len(part_table) else ()):
            chance = part.speaker_chance.iloc[0]
            shown = part[[c for c in SHOWN if c in part]].drop(columns="corpus")
            if "folds_paired" in shown:
                shown = shown.astype({"folds_paired": "Int64"})
            md += (f"\n## {PRETTY.get(corpus, corpus)} (speaker chance {chance:.1f} %; weights: {weights})\n\n"
                   + markdown_table(shown.round(
                       {"emotion_diff": 1, "speaker_probe_diff": 1, "emotion_p": 4, "speaker_probe_p": 4})))
    if len(decisions):
        full = decisions[decisions.check == "all folds"]
        held = decisions[decisions.check != "all folds"]
        md += ("\n## The strength decided on validation speakers\n\nAs the recipe's stages: the best mean validation "
               "accuracy wins unless a simpler option (no push first) is within one standard error of the paired "
               "difference (val_mean, val_sem, diff_to_best, diff_sem in %, over the fold x seed runs every strength "
               "has; adversary_decisions.csv).\n\n"
               + markdown_table(full[["corpus", "n_cnn_layers", "gamma", "option", "n_runs", "val_mean", "val_sem",
                                      "diff_to_best", "diff_sem", "chosen", "control_gamma"]].astype(
                                          {"n_runs": int}).round(2))
               + "\nHeld-out check: for each test fold, the decision again without the folds whose validation "
                 "speakers are its test speakers, and that decision's test accuracy on the fold against no push:\n\n"
               + markdown_table(held[["corpus", "n_cnn_layers", "gamma", "check", "option", "test_fold_accuracy",
                                      "test_fold_accuracy_no_push"]].round(1)))
    with atomic_write(csv_path.with_suffix(".md")) as f:
        f.write(md)
    return written + [csv_path.with_suffix(".md")]


def adversary_curves(runs_dir=None) -> pd.DataFrame:
    """The speaker head's accuracy on the held-out utterances after each epoch, one row per run and
    epoch: ``corpus, n_cnn_layers, gamma, adversary, lambda_max, fold, seed, epoch, lambda,
    holdout_speaker_accuracy, train_speaker_accuracy`` (without the runs of
    :data:`BIASED_HEAD_CURVES`)."""
    rows = []
    for rec in iter_records(runs_dir if runs_dir is not None else ADVERSARY_RUNS):
        if "speaker_information" not in rec:
            continue
        c = {**RunConfig().to_dict(), **rec["config"]}
        if _biased_head(rec):
            continue
        for row in rec["curves"]:
            if "holdout_speaker_accuracy" in row:
                rows.append({"corpus": c["corpus"], "n_cnn_layers": c["n_cnn_layers"], "gamma": gamma_label(c["gamma"]),
                             "adversary": adversary_label(c), "lambda_max": c["lambda_max"], "fold": c["fold"], "seed": c["seed"],
                             "epoch": row["epoch"], "lambda": row["lambda"],
                             "holdout_speaker_accuracy": row["holdout_speaker_accuracy"],
                             "train_speaker_accuracy": row.get("train_speaker_accuracy")})
    return pd.DataFrame(rows)


def verdict(table: pd.DataFrame) -> str:
    """For each corpus and depth of a :func:`tradeoff_table`: the control's speaker information,
    each strength's, and whether it removes most of it -- the held-out linear speaker probe's margin
    over chance at most half the control's, or the unseen-speaker EER at 45 % or more where the control's is below
    that (where the control is already there, the EER cannot tell) -- with its paired effect on
    emotion. A setting paired on fewer than :data:`MIN_VERDICT_FOLDS` folds is listed without a verdict."""
    lines = []
    for (corpus, depth, gamma), part in table.groupby(["corpus", "n_cnn_layers", "gamma"], sort=False):
        control = part[part.lambda_max == 0]
        if not len(control):
            continue
        c = control.iloc[0]
        eer_informative = c.unseen_speaker_eer_mean < 45
        lent = f", trained at γ {c.control_gamma}: λ is 0 throughout, so γ trains nothing" if pd.notna(c.get("control_gamma")) and str(c.control_gamma) else ""
        lines.append(f"{PRETTY.get(corpus, corpus)}, {depth} CNN block(s), γ {gamma}: capacity control "
                     f"(lambda_max 0{lent}) speaker probe {c.speaker_linear_probe_mean:.1f} % (chance "
                     f"{c.speaker_chance:.1f} %), EER {c.unseen_speaker_eer_mean:.1f} %, emotion "
                     f"{c.test_accuracy_mean:.1f} %."
                     + ("" if eer_informative else " Its EER is already at least 45 %: the EER criterion "
                                                   "cannot tell here, only the probe can."))
        removing = []
        for _, r in part[part.lambda_max > 0].iterrows():
            judged = r.folds_paired >= MIN_VERDICT_FOLDS
            chance = c.speaker_chance  # "most" of what the control holds above chance
            removed = judged and (r.speaker_linear_probe_mean - chance <= (c.speaker_linear_probe_mean - chance) / 2
                                  or (eer_informative and r.unseen_speaker_eer_mean >= 45))
            removing += [r.adversary] if removed else []
            lines.append(f"  {r.adversary.replace('λ×', 'lambda_max ')}: speaker probe {r.speaker_linear_probe_mean:.1f} % "
                         f"({r.speaker_probe_diff:+.1f}, p {r.speaker_probe_p:.4g}), EER "
                         f"{r.unseen_speaker_eer_mean:.1f} %, emotion {r.test_accuracy_mean:.1f} % "
                         f"({r.emotion_diff:+.1f}, 95 % CI [{r.emotion_ci_low:+.1f}, {r.emotion_ci_high:+.1f}], p "
                         f"{r.emotion_p:.4g}; {int(r.folds_paired)} folds, {int(r.paired_runs)} paired runs)"
                         + ("  <- removes most speaker information" if removed else "")
                         + ("" if judged else f"  (fewer than {MIN_VERDICT_FOLDS} paired folds: no verdict)"))
        if not removing:
            lines.append("  No setting tried removes most speaker information.")
        paper = PAPER_TABLE1.get(corpus, {})
        judged = part[(part.adversary == "λ×1") & (part.folds_paired >= MIN_VERDICT_FOLDS)]
        if (depth, float(gamma)) in paper and (depth, None) in paper and len(judged):
            gain = paper[(depth, float(gamma))][0] - paper[(depth, None)][0]
            r = judged.iloc[0]
            holds = r.emotion_ci_low <= gain <= r.emotion_ci_high
            lines.append(f"  The paper's claim at this cell: AL {gain:+.1f} over no AL ({paper[(depth, float(gamma))][0]} "
                         f"against {paper[(depth, None)][0]}). The paper's adversary (lambda_max 1) here: "
                         f"{r.emotion_diff:+.1f}, 95 % CI [{r.emotion_ci_low:+.1f}, {r.emotion_ci_high:+.1f}]: the "
                         f"claim is {'inside' if holds else 'outside'} it.")
    return "\n".join(lines)
