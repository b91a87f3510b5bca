"""The recipe study: decide each training choice on the validation speakers, one stage at a time.

The paper leaves most of its training recipe unsaid, and the paper-literal defaults of
:class:`~sierlib.config.RunConfig` train well below its figures. This study decides, factor by
factor, what the project recommends, **looking only at validation speakers**:

- every stage compares a few options of one factor on top of the recipe decided so far (the
  *incumbent*), on Emo-DB, 1 CNN block, without AL (but the last), 3 seeds x 5 folds (the stride stage at
  depths 3 and 4), so every comparison is paired by fold and seed. The stages after the
  tenth (the front end, the pooling, the training length, the speaker adversary) are decided on
  the **validation speakers of both corpora** (Emo-DB's 5 folds and RAVDESS's 12, 3 seeds
  each), each corpus weighted equally, so that the recipe is not tuned to Emo-DB's ten speakers;
- the last stage asks whether the paper's adversary (AL at γ 2.5) belongs in the recipe, at 1
  and 2 blocks, each arm trained 30 and 60 epochs so that AL is not judged on a budget that
  suits the network without it. Its choice holds at 1-2 blocks only: a budget other than the
  training-length stage's changes the runs at 1-2 blocks and leaves 3-4 at that stage's. The
  recipe's tables keep both columns (without AL and with AL) whatever it decides; the decision
  says which one the project recommends;
- a decision made at 1 block holds at every depth; one made at other depths (the stride) holds
  at those depths only, under the recipe's ``at_depths`` (:func:`recipe_fields`);
- an option's score is its mean validation accuracy over those runs. For ``selection=swa``
  and ``ema`` that is the validation accuracy of the averaged weights, which looked at no
  validation data. The best epoch's own validation accuracy is a maximum over epochs and so
  biased upward (issue 11 measured 68 % selected validation against 60 % test); its score is
  therefore *crossed*: the epoch is chosen on one validation speaker and scored on the other,
  both ways, weighted by their utterances. That is pessimistic (the choice sees half the
  speakers); the decision table also lists the best epoch's own, optimistic, validation accuracy
  (``val_mean_best_epoch_own``, never decided on), so the truth is bracketed;
- the best-scoring option wins unless a simpler option (listed earlier) is within one standard
  error of the paired difference: then the simplest such option wins. The standard errors are
  over folds, each fold's runs averaged over seeds first: the seeds of a fold share its
  speakers, so they are not independent samples of speakers. Over two corpora the score is
  the mean of the corpora's means, and its standard error combines theirs (each corpus's over
  its own folds, weighted 1/2);
- the ``selection`` stage trains nothing: every run records all its selection methods;
- test accuracy is never read here.

The committed study is ``results/recipe/runs`` (:data:`STUDY_RUNS`), with its decisions in
``results/recipe_decisions.csv`` and the recipe's rows of Tables 1-2 in
``results/recipe_tables.csv``/``.md``, all derived from those runs by code. ``sier recipe run``,
``tables`` and ``decide`` read the committed runs and
write your own new runs, and what is derived from the two together, under
``results/local/recipe/`` (git-ignored), so they never change the committed study or the tests;
``--reference`` writes into the committed study instead, for a deliberate extension of it (as
``sier sweep --reference``). ``run`` and ``tables`` are resumable: finished runs are read back
and never trained again, so a study stopped halfway goes on where it stopped. Stages run in
order because each one starts from the decisions before it.

This module is longer than the others (about 490 lines): a quarter of it is the sixteen stages,
which are data, and the rule that walks them, decides and checks the decisions belongs with them.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .config import CNN2D_FIELDS, RunConfig
from .paths import DECISIONS, LOCAL_RECIPE, STUDY_RUNS, write_csv_atomic
from .records import iter_records
from .registry import CORPORA, PAPER_CORPORA
STUDY_BASE = {"corpus": "emodb", "gamma": None, "n_cnn_layers": 1}
SEEDS = (0, 1, 2)
FOLDS = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class Stage:
    """One factor and its options, simplest first: ``(label, run-config fields)``. An option's
    fields are set on top of the incumbent recipe; ``{}`` keeps the incumbent."""

    factor: str
    options: tuple
    depths: tuple = (STUDY_BASE["n_cnn_layers"],)  # where it is decided; see :func:`with_decision`
    why: str = ""
    corpora: tuple = (STUDY_BASE["corpus"],)  # whose validation speakers decide it, each weighted equally


def recipe_fields(recipe: dict, depth: int) -> dict:
    """The run-config fields of ``recipe`` at ``depth``: its fields for every depth with those
    decided at that depth only (``recipe["at_depths"][str(depth)]``) on top. ``selection`` is
    left out: it changes what a run reports, not what it trains (see :func:`stage_configs`)."""
    fields = {k: v for k, v in recipe.items() if k not in ("selection", "at_depths")}
    return {**fields, **recipe.get("at_depths", {}).get(str(depth), {})}


def with_decision(recipe: dict, stage: Stage, option: dict) -> dict:
    """``recipe`` with a stage's chosen option. A stage decided at the study's own depth (1
    block) sets the option for every depth; one decided at other depths (the stride at 3-4)
    sets it at those depths only, since it was never compared anywhere else, and only where it
    changes the run (the stride as written adds nothing)."""
    if stage.depths == (STUDY_BASE["n_cnn_layers"],):
        return {**recipe, **option}
    at = dict(recipe.get("at_depths", {}))
    for depth in stage.depths:
        now = RunConfig(**{**STUDY_BASE, **recipe_fields(recipe, depth), "n_cnn_layers": depth})
        changed = {k: v for k, v in option.items() if getattr(now, k) != v}
        if changed:
            at[str(depth)] = {**at.get(str(depth), {}), **changed}
    return {**recipe, "at_depths": at} if at else recipe


STAGES = (
    Stage("lengths", (("padded (paper)", {"lengths": "padded"}), ("masked", {"lengths": "masked"})),
          why="padding is ~3/4 of every Emo-DB input and leaks length and loudness (issue 11)"),
    Stage("selection", (("best epoch (paper)", {"selection": "best_val"}), ("SWA, last 5 epochs", {"selection": "swa"}),
                        ("EMA 0.99", {"selection": "ema"})),
          why="validation accuracy jumps 8 points between epochs; the best epoch is a spike"),
    Stage("schedule", (("30 epochs, constant lr", {}),
                       ("30 epochs, cosine, 2 warm-up", {"lr_schedule": "cosine", "warmup_epochs": 2}),
                       ("60 epochs, cosine, 2 warm-up", {"epochs": 60, "lr_schedule": "cosine", "warmup_epochs": 2})),
          why="an independent implementation reached 66 % with 60 epochs"),
    Stage("batch and learning rate", (("batch 16, lr 1e-3", {}), ("batch 32, lr 1e-3", {"batch_size": 32}),
                                      ("batch 16, lr 5e-4", {"lr": 5e-4}))),
    Stage("dropout", (("0.3 everywhere", {}), ("convolutions 0.1", {"conv_dropout": 0.1}),
                      ("classifiers 0.5, convolutions 0.3", {"dropout": 0.5, "conv_dropout": 0.3}))),
    Stage("augmentation", (("none", {}), ("SpecAugment 2 time + 2 row masks", {"time_masks": 2, "freq_masks": 2}),
                           ("mixup 0.2", {"mixup_alpha": 0.2}),
                           ("speed 0.9 / 1 / 1.1", {"speed_perturbation": 0.1})),
          why="speed perturbation needs length-aware runs; it is left out if the study chose padded inputs"),
    Stage("network size", (("kernel 5, 64 filters, GRU 128, FC 64", {}),
                           ("kernel 5, 128 filters, GRU 256, FC 128", {"n_filters": 128, "gru_hidden": 256,
                                                                       "fc_hidden": 128}),
                           ("kernel 2, 64 filters, GRU 128, FC 64", {"kernel_size": 2})),
          why="the paper's section 4.2 grid, its cheapest point, its largest, and the other kernel"),
    Stage("high-pass filter", (("off", {"highpass_hz": None}), ("80 Hz (ours so far)", {"highpass_hz": 80.0}))),
    Stage("trimming threshold", (("30 dB", {}), ("20 dB", {"top_db": 20.0}), ("40 dB", {"top_db": 40.0}))),
    Stage("convolution stride", (("stride 2 (as written)", {"conv_stride": 2}), ("stride 1 (pool only)", {"conv_stride": 1})),
          depths=(3, 4), why="at 4 blocks, stride 2 leaves the GRU 2 time steps"),
    # issue 29: the front end, the pooling and the training length, decided on both corpora
    Stage("window and hop", (("93 ms / 23 ms (paper)", {}), ("23 ms / 10 ms", {"n_fft": 512, "hop_length": 220})),
          corpora=PAPER_CORPORA, why="speech front ends use about 25 ms windows every 10 ms; the paper's are 4 times longer"),
    Stage("input features", (("20 MFCCs (paper)", {}), ("40 MFCCs", {"n_mfcc": 40}),
                             ("64 log-Mel with Δ and ΔΔ as channels", {"front_end": "logmel_deltas"})), corpora=PAPER_CORPORA),
    Stage("per-utterance normalisation", (("none", {}), ("mean", {"utterance_norm": "mean"}),
                                          ("mean and variance", {"utterance_norm": "mean_var"})),
          corpora=PAPER_CORPORA, why="each speaker standardised on its own audio (offline) reached 80 % on Emo-DB; an "
                            "utterance's own statistics are a legitimate part of that"),
    Stage("pooling", (("statistics (paper)", {}), ("attentive statistics", {"pooling": "attentive"})), corpora=PAPER_CORPORA),
    Stage("training length", (("30 epochs, SWA over 5", {}), ("60 epochs, SWA over 10", {"epochs": 60, "swa_epochs": 10})),
          corpora=PAPER_CORPORA, why="with speed perturbation in place, longer training may no longer overfit"),
    # issue 26: does the speaker adversary earn a place in the recipe? Both arms get the same budget,
    # at 30 and at 60 epochs, since AL underfits emotion at 30 (training accuracy 87.5 % without AL
    # against 71.5 % with AL at γ 2.5, RAVDESS, 1 block)
    Stage("speaker adversary", (("without AL, 30 epochs", {"epochs": 30, "swa_epochs": 5}),
                                ("without AL, 60 epochs", {"epochs": 60, "swa_epochs": 10}),
                                ("AL γ 2.5, 30 epochs", {"gamma": 2.5, "epochs": 30, "swa_epochs": 5}),
                                ("AL γ 2.5, 60 epochs", {"gamma": 2.5, "epochs": 60, "swa_epochs": 10})),
          depths=(1, 2), corpora=PAPER_CORPORA,
          why="the paper's method, given the no-AL arm's budget; γ 2.5 is the paper's best on RAVDESS and "
              "within 3 points of its best on Emo-DB at 1-2 blocks"),
)


def corpus_folds(corpus: str, folds=None) -> tuple:
    """The folds of ``corpus`` a study uses: ``folds`` is None (every fold), a dict
    ``{corpus: folds}`` (a corpus it does not name keeps every fold) or a tuple (Emo-DB's, as
    the study's first stages, which were Emo-DB's only, took it)."""
    every = tuple(range(CORPORA[corpus].n_folds))
    if folds is None:
        return every
    if isinstance(folds, dict):
        return tuple(folds.get(corpus, every))
    return tuple(folds) if corpus == STUDY_BASE["corpus"] else every


def stage_configs(stage: Stage, incumbent: dict, option: dict, folds=None) -> list[RunConfig]:
    """The runs of one option: the incumbent recipe with the option's fields, every corpus,
    depth, seed and fold of the stage (``folds``: see :func:`corpus_folds`). ``selection`` is
    left at its default: it changes what a run reports, not what it trains, and every run
    records every selection method, so the study trains each network once
    (:func:`selection_of` says which of its numbers count)."""
    option = {k: v for k, v in option.items() if k != "selection"}
    return [RunConfig(**{**STUDY_BASE, **recipe_fields(incumbent, depth), **option, "corpus": corpus,
                         "n_cnn_layers": depth, "fold": fold, "seed": seed})
            for corpus in stage.corpora for depth in stage.depths for seed in SEEDS
            for fold in corpus_folds(corpus, folds)]


def ruled_out(stage: Stage, incumbent: dict, option: dict) -> str | None:
    """Why the recipe so far rules an option out (e.g. speed perturbation of padded inputs, which
    :class:`~sierlib.config.RunConfig` refuses), or None: the stage goes on without it and the
    decision table says so."""
    try:
        stage_configs(stage, incumbent, option)
    except ValueError as exc:
        if "lengths='masked'" in str(exc):
            return str(exc)
        raise  # any other refusal is a mistake in the stage's options
    return None


def selection_of(incumbent: dict, option: dict) -> str:
    return {**incumbent, **option}.get("selection", "best_val")


def crossed_best_epoch_accuracy(record: dict) -> float:
    """Validation accuracy of the best epoch, chosen on one validation speaker and scored on the
    other (both ways, weighted by their utterances): an estimate that the choice did not see."""
    try:
        by_epoch = [c["val_speaker_emotion_accuracy"] for c in record["curves"]]
        counts = record["n_utterances"]["val_by_speaker"]
    except KeyError:
        raise ValueError(f"{record.get('name')}: the record has no per-speaker validation accuracy (records "
                         f"written before the recipe study lack it); train the run again") from None
    speakers = sorted(counts)
    if len(speakers) < 2:
        raise ValueError(f"{record['name']}: the crossed estimate needs >= 2 validation speakers")
    total = 0.0
    for scored in speakers:
        chooser = [s for s in speakers if s != scored]
        # the epoch the other speakers like best (ties to the earlier epoch)
        score = [sum(e[s] * counts[s] for s in chooser) for e in by_epoch]
        total += by_epoch[int(np.argmax(score))][scored] * counts[scored]
    return total / sum(counts.values())


def validation_score(record: dict, selection: str) -> float:
    """The study's score of one run under one selection method (see the module docstring)."""
    if selection == "best_val":
        return crossed_best_epoch_accuracy(record)
    return record["selections"][selection]["val_accuracy"]


def study_folders(runs_dir=None) -> tuple[Path, ...]:
    """The folders a study reads: ``runs_dir`` as a tuple, one folder or a list of them (e.g. the
    committed study and your own runs); None is the committed study, :data:`STUDY_RUNS`."""
    if runs_dir is None:
        return (STUDY_RUNS,)
    return (Path(runs_dir),) if isinstance(runs_dir, (str, os.PathLike)) else tuple(Path(d) for d in runs_dir)


def records_by_name(runs_dir) -> dict:
    """Every finished record of the study's folders by run name (the first folder wins)."""
    out = {}
    for folder in reversed(study_folders(runs_dir)):
        out.update({r["name"]: r for r in iter_records(folder)})
    return out


def decide(stage: Stage, scores: dict[str, pd.Series]) -> tuple[str, pd.DataFrame]:
    """Choose among a stage's options from their validation scores (one Series per option
    label, indexed by (depth, fold, seed), or by (corpus, depth, fold, seed) over several
    corpora); returns the chosen label and one row per option.

    The best mean (over corpora: the mean of their means) wins unless a simpler option
    (earlier in ``stage.options``) is within one standard error of its paired difference to the
    best; then the simplest such option wins."""
    labels = [label for label, _ in stage.options if label in scores]
    means = {k: _pooled_mean(scores[k]) for k in labels}
    best = max(labels, key=lambda k: means[k])
    rows, chosen = [], best
    for label in labels:
        s = scores[label]
        diff = (s - scores[best]).dropna()
        rows.append({"factor": stage.factor, "option": label,
                     "settings": json.dumps(dict(stage.options)[label], sort_keys=True),
                     "n_runs": int(s.notna().sum()), "val_mean": 100 * _pooled_mean(s), "val_sem": 100 * _fold_sem(s),
                     "diff_to_best": 100 * _pooled_mean(diff), "diff_sem": 100 * _fold_sem(diff)})
    for row in rows:  # simplest first
        if row["option"] == best or abs(row["diff_to_best"]) <= row["diff_sem"]:
            chosen = row["option"]
            break
    for row in rows:
        row["chosen"] = row["option"] == chosen
    return chosen, pd.DataFrame(rows)


def _by_corpus(values: pd.Series) -> list[pd.Series]:
    """Values indexed by (depth, fold, seed) as one corpus's, or by (corpus, depth, fold, seed)
    split by corpus, each indexed by (depth, fold, seed)."""
    if values.index.nlevels == 3:
        return [values]
    return [part.droplevel(0) for _, part in values.groupby(level=0)]


def _pooled_mean(values: pd.Series) -> float:
    """The mean of each corpus's mean (one corpus: the mean)."""
    return float(np.mean([part.mean() for part in _by_corpus(values)]))


def _fold_sem(values: pd.Series) -> float:
    """Standard error over folds of values indexed by (depth, fold, seed): each fold's values
    are averaged first (its seeds and depths share its speakers). Over several corpora, of
    :func:`_pooled_mean`: each corpus's over its folds, combined with weights 1 / corpora."""
    parts = _by_corpus(values)
    sems = []
    for part in parts:
        per_fold = part.groupby(level=1).mean()
        sems.append(per_fold.std(ddof=1) / math.sqrt(len(per_fold)) if len(per_fold) > 1 else math.nan)
    return float(math.sqrt(sum(e ** 2 for e in sems)) / len(parts))


def option_scores(stage: Stage, incumbent: dict, records: dict, folds=None) -> dict[str, pd.Series] | None:
    """Each option's validation scores (indexed by (depth, fold, seed), with the corpus first
    for a stage of several corpora), or None while a run is missing."""
    scores = {}
    for label, option in stage.options:
        if ruled_out(stage, incumbent, option):
            continue
        selection = selection_of(incumbent, option)
        values = {}
        for c in stage_configs(stage, incumbent, option, folds):  # the selection stage: the incumbent's runs
            rec = records.get(c.name)
            if rec is None:
                return None
            key = (c.n_cnn_layers, c.fold, c.seed)
            values[(c.corpus,) + key if len(stage.corpora) > 1 else key] = validation_score(rec, selection)
        scores[label] = pd.Series(values)
    return scores


@dataclass
class Study:
    """What :func:`study` found: the recipe decided so far (run-config fields on top of the
    paper-literal defaults), the decision table (one row per option) and every run's
    validation score (one row per option x depth x fold x seed), for plots."""

    recipe: dict
    decisions: pd.DataFrame
    scores: pd.DataFrame
    pending: list = field(default_factory=list)  # the factors not decided yet

    @property
    def recipes(self) -> list[tuple[int, dict]]:
        """Each distinct recipe the study has held, with the last stage it held through:
        ``[(stage, recipe), ...]``, the current one last (for tables of earlier recipes)."""
        out, recipe = [], {}
        for stage, rows in self.decisions.groupby("stage", sort=True):
            chosen = rows[rows.chosen.astype(bool)].iloc[0]
            depths = tuple(int(d) for d in str(chosen.depths).split())
            recipe = with_decision(recipe, Stage(chosen.factor, (), depths), json.loads(chosen.settings))
            if out and out[-1][1] == recipe:
                out[-1] = (stage, recipe)
            else:
                out.append((stage, recipe))
        return out


def study(runs_dir=STUDY_RUNS, stages=STAGES, run_missing=None, folds=None, records: dict | None = None) -> Study:
    """Walk the stages in order, deciding each from its records. ``run_missing(configs, stage)``
    is called with a stage's unfinished runs (None: stop at the first stage with missing runs).
    ``folds`` restricts the decisions to those folds (:func:`corpus_folds`, :func:`held_out_check`);
    ``records`` (``{name: record}``) saves reading ``runs_dir`` again."""
    incumbent, tables, score_rows = {}, [], []
    records = records_by_name(runs_dir) if records is None else records
    for number, stage in enumerate(stages, 1):
        for _, option in stage.options:  # a mistake in a stage's options stops the study at once
            ruled_out(stage, incumbent, option)
        scores = option_scores(stage, incumbent, records, folds)
        if scores is None and run_missing is not None:
            todo = [c for _, option in stage.options if not ruled_out(stage, incumbent, option)
                    for c in stage_configs(stage, incumbent, option) if c.name not in records]
            run_missing(todo, stage)
            records = records_by_name(runs_dir)
            scores = option_scores(stage, incumbent, records, folds)
        if scores is None:
            return _study(incumbent, tables, score_rows, [s.factor for s in stages[number - 1:]])
        chosen, table = decide(stage, scores)
        # for reference only, never decided on: the best epoch's own validation accuracy, biased
        # upward, so that the crossed score's pessimism can be seen
        table["val_mean_best_epoch_own"] = [
            100 * np.mean([records[c.name]["selections"]["best_val"]["val_accuracy"]
                           for c in stage_configs(stage, incumbent, dict(stage.options)[label], folds)])
            if selection_of(incumbent, dict(stage.options)[label]) == "best_val" else np.nan
            for label in table.option]
        out = [{"factor": stage.factor, "option": label, "settings": json.dumps(option, sort_keys=True), "n_runs": 0,
                "chosen": False, "note": f"ruled out: {why}"}
               for label, option in stage.options if (why := ruled_out(stage, incumbent, option))]
        tables.append(pd.concat([table, pd.DataFrame(out)], ignore_index=True)
                      .assign(stage=number, depths=" ".join(map(str, stage.depths)), corpora=" ".join(stage.corpora)))
        score_rows += [{"stage": number, "factor": stage.factor, "option": label,
                        "corpus": key[0] if len(key) == 4 else stage.corpora[0], "n_cnn_layers": key[-3],
                        "fold": key[-2], "seed": key[-1], "val_score": 100 * v}
                       for label, series in scores.items() for key, v in series.items()]
        incumbent = with_decision(incumbent, stage, dict(stage.options)[chosen])
    return _study(incumbent, tables, score_rows, [])


def held_out_check(runs_dir=STUDY_RUNS, stages=STAGES) -> pd.DataFrame:
    """Does the recipe depend on the test speakers it is reported on?

    With leave-two-speakers-out folds every speaker validates one fold and is tested in another,
    so a study over all folds has seen, as validation speakers, the test speakers of every fold.
    For each test fold (of each corpus whose validation speakers a decided stage used, once a run
    of every fold of it is there) this decides the study again without that corpus's folds whose
    validation speakers are that fold's test speakers, and says whether it reaches the same
    recipe. Where it does, that fold's test accuracy of the recipe is free of this selection
    effect. (A study that diverges stops at the stage where its own path has no runs.)"""
    records = records_by_name(runs_dir)
    full = study(runs_dir, stages, records=records)
    full_decided = full.decisions.stage.nunique() if len(full.decisions) else 0
    # the corpora whose validation speakers a decided stage used: only their test folds can be affected
    corpora = [c for c in CORPORA if any(c in stage.corpora for stage in stages[:full_decided])]
    roles = {corpus: {} for corpus in corpora}
    for rec in records.values():
        c = rec["config"]
        if c.get("corpus") in roles:
            roles[c["corpus"]][c["fold"]] = (set(rec["speakers"]["val"]), set(rec["speakers"]["test"]))
    rows = []
    for corpus in corpora:
        every = tuple(range(CORPORA[corpus].n_folds))
        if set(roles[corpus]) != set(every):
            continue
        for fold in every:
            keep = tuple(g for g in every if not roles[corpus][g][0] & roles[corpus][fold][1])
            sub = study(runs_dir, stages, folds={corpus: keep}, records=records)
            decided = sub.decisions.stage.nunique() if len(sub.decisions) else 0
            rows.append({"corpus": corpus, "test_fold": fold, "test_speakers": " ".join(sorted(roles[corpus][fold][1])),
                         "decided_on_folds": " ".join(map(str, keep)), "stages_decided": decided,
                         "same_recipe": sub.recipe == full.recipe and decided == full_decided,
                         "recipe": json.dumps(sub.recipe, sort_keys=True)})
    return pd.DataFrame(rows)


def _study(incumbent, tables, score_rows, pending) -> Study:
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["stage", "factor", "option"])
    first = [c for c in ("stage", "factor", "depths", "corpora") if c in table.columns]
    table = table[first + [c for c in table.columns if c not in first]]
    return Study(incumbent, table, pd.DataFrame(score_rows), pending)


def recipe_config(recipe: dict, **fields) -> RunConfig:
    """The run of ``recipe`` with ``fields`` (corpus, encoder, depth, gamma, fold, seed...) set:
    what the study trained (the selection is read from its record, see :func:`stage_configs`).
    For one of Table 2's earlier encoders the recipe's 2D-CNN fields (the convolution dropout,
    the pooling, the log-Mel front end) are left out, since that network has no 2D CNN, and so
    are the window, the hop and the number of MFCCs: each earlier encoder keeps its own front
    end (the 1D CNN GRU's pitch tracker needs long windows); its other choices apply as they are."""
    depth = fields.get("n_cnn_layers", RunConfig().n_cnn_layers)
    chosen = recipe_fields(recipe, depth)
    if fields.get("encoder", RunConfig().encoder) != "2dcnn_bigru":
        chosen = {k: v for k, v in chosen.items() if k not in CNN2D_FIELDS + ("n_mfcc", "n_fft", "hop_length")}
    return RunConfig(**{**chosen, **fields})


def write_decisions(table: pd.DataFrame, path=DECISIONS):
    """The decision table, numbers rounded to 0.01 points."""
    return write_csv_atomic(table.round({"val_mean": 2, "val_sem": 2, "diff_to_best": 2, "diff_sem": 2,
                                         "val_mean_best_epoch_own": 2}), path)


def feature_variants(recipe: dict, stages=STAGES, decided: int = 0, corpus: str = "emodb",
                     encoders=("2dcnn_bigru",)) -> list[dict]:
    """The feature parameters, for ``sier pack --recipe``, that the recipe's own runs read (for
    each of ``encoders``, at every speed it perturbs to) and that the stages after the first
    ``decided`` ones can need on top of it (their high-pass, trimming and speed options, each on
    its own): a machine without the audio then reads them all from the pack."""
    wanted = {}

    def want(config):
        for speed in (1.0,) + config.speed_factors:
            params = {**config.feature_params, **({"speed": speed} if speed != 1 else {})}
            wanted[json.dumps(params, sort_keys=True)] = params

    for encoder in encoders:
        want(recipe_config(recipe, corpus=corpus, encoder=encoder))
    for stage in stages[decided:]:
        for _, option in stage.options:
            if ruled_out(stage, recipe, option):
                continue
            for config in stage_configs(stage, recipe, option)[:1]:
                want(config.replace(corpus=corpus))
    return list(wanted.values())


def recipe_plan(recipe: dict, corpus: str = "emodb", depths=(1,), gammas=(None,), seeds=SEEDS,
                normalisation: str = "train_speakers", encoders=("2dcnn_bigru",)) -> list[RunConfig]:
    """The runs of the recipe's tables: every encoder x depth x gamma x seed x fold of
    ``corpus``; ``depths`` are the 2D CNN biGRU's, the earlier encoders have one size."""
    return [recipe_config(recipe, corpus=corpus, encoder=encoder, n_cnn_layers=depth, gamma=gamma, seed=seed,
                          fold=fold, normalisation=normalisation)
            for encoder in encoders for depth in (depths if encoder == "2dcnn_bigru" else (1,))
            for gamma in gammas for seed in seeds for fold in range(CORPORA[corpus].n_folds)]


def study_paths(reference: bool = False, runs_dir=None, decisions=None) -> tuple[Path, tuple[Path, ...], Path]:
    """Where ``sier recipe`` writes new runs, which folders it reads, and where the decision table
    goes: your own runs under ``results/local/recipe/`` beside the committed study (never
    shadowing it), or with ``reference`` the committed study itself (a deliberate extension)."""
    if reference and runs_dir is not None:
        raise ValueError("--reference writes into the committed study; leave out --runs-dir")
    if runs_dir is not None and Path(runs_dir).resolve() == STUDY_RUNS.resolve():
        raise ValueError(f"--runs-dir {runs_dir} is the committed study: use --reference to extend it on purpose")
    out_dir = STUDY_RUNS if reference else Path(runs_dir) if runs_dir else LOCAL_RECIPE / "runs"
    folders = (STUDY_RUNS,) if reference else (STUDY_RUNS, out_dir)
    table = Path(decisions) if decisions else DECISIONS if reference else LOCAL_RECIPE / DECISIONS.name
    return out_dir, folders, table
