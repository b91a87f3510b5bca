"""The recipe study's decision rules (sierlib.recipe), on hand-made records: no training."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sierlib import recipe
from sierlib.corpora import corpus_info
from sierlib.recipe import Stage, crossed_best_epoch_accuracy, decide, stage_configs, study, validation_score
from sierlib.records import write_record


def _curves(per_epoch):
    return [{"epoch": i + 1, "val_speaker_emotion_accuracy": acc} for i, acc in enumerate(per_epoch)]


def test_crossed_estimate_does_not_score_the_epoch_a_speaker_chose():
    # speaker a peaks at epoch 1, speaker b at epoch 3: the best epoch overall scores 0.9 on
    # whichever speaker chose it, but the crossed estimate scores each where the other chose
    rec = {"name": "r", "n_utterances": {"val_by_speaker": {"a": 10, "b": 30}},
           "curves": _curves([{"a": 0.9, "b": 0.2}, {"a": 0.5, "b": 0.5}, {"a": 0.1, "b": 0.9}])}
    # a is scored at b's choice (epoch 3): 0.1; b at a's choice (epoch 1): 0.2
    assert crossed_best_epoch_accuracy(rec) == pytest.approx((0.1 * 10 + 0.2 * 30) / 40)
    rec["selections"] = {"swa": {"val_accuracy": 0.7}}
    assert validation_score(rec, "swa") == 0.7
    assert validation_score(rec, "best_val") == crossed_best_epoch_accuracy(rec)


def test_crossed_estimate_needs_two_speakers():
    rec = {"name": "r", "n_utterances": {"val_by_speaker": {"a": 10}}, "curves": _curves([{"a": 0.5}])}
    with pytest.raises(ValueError, match="r: .*2 validation speakers"):
        crossed_best_epoch_accuracy(rec)


STAGE = Stage("toy", (("simple", {}), ("fancy", {"epochs": 60}), ("fancier", {"epochs": 90})))
KEYS = [(1, f, s) for s in range(3) for f in range(5)]


def _series(values):
    return pd.Series(dict(zip(KEYS, values)))


def test_a_clear_winner_is_chosen():
    base = [0.5 + 0.01 * i for i in range(15)]
    chosen, table = decide(STAGE, {"simple": _series(base), "fancy": _series([v + 0.05 for v in base]),
                                   "fancier": _series([v + 0.02 for v in base])})
    assert chosen == "fancy"
    assert table.set_index("option")["chosen"].to_dict() == {"simple": False, "fancy": True, "fancier": False}
    row = table.set_index("option").loc["simple"]
    assert row.diff_to_best == pytest.approx(-5.0) and row.diff_sem == pytest.approx(0.0, abs=1e-9)
    assert row.n_runs == 15 and json.loads(row.settings) == {}


def test_a_difference_inside_its_standard_error_goes_to_the_simpler_option():
    base = [0.6] * 15
    noisy = [0.6 + (0.04 if i % 2 else -0.035) for i in range(15)]  # mean +0.0047, sem of the difference ~0.01
    chosen, table = decide(STAGE, {"simple": _series(base), "fancy": _series(noisy), "fancier": _series(base)})
    assert table.set_index("option").val_mean.idxmax() == "fancy"
    assert chosen == "simple"


def _record(config, val_accuracy):
    flat = {"a": val_accuracy, "b": val_accuracy}
    return {"status": "finished", "name": config.name, "config": config.to_dict(),
            "n_utterances": {"val_by_speaker": {"a": 10, "b": 10}}, "curves": _curves([flat]),
            "selections": {m: {"val_accuracy": val_accuracy + (0.1 if m == "swa" else 0.0)}
                           for m in ("best_val", "swa", "ema")}}


def test_the_study_walks_the_stages_and_stops_where_runs_are_missing(tmp_path, monkeypatch):
    stages = (Stage("lengths", (("padded", {"lengths": "padded"}), ("masked", {"lengths": "masked"}))),
              Stage("selection", (("best", {"selection": "best_val"}), ("swa", {"selection": "swa"}))),
              Stage("epochs", (("30", {}), ("60", {"epochs": 60}))))
    for c in stage_configs(stages[0], {}, {"lengths": "padded"}):
        write_record(_record(c, 0.50), tmp_path)
    for c in stage_configs(stages[0], {}, {"lengths": "masked"}):
        write_record(_record(c, 0.55 + 0.001 * c.fold), tmp_path)
    found = study(tmp_path, stages)
    recipe_so_far, table = found.recipe, found.decisions
    # masked wins, the selection stage reads the masked runs and picks swa, the epochs stage has no runs yet
    assert recipe_so_far == {"lengths": "masked", "selection": "swa"}
    assert list(table.stage.unique()) == [1, 2] and found.pending == ["epochs"]
    assert len(found.scores) == 2 * 15 + 2 * 15 and set(found.scores.stage) == {1, 2}
    asked = []

    def run_missing(todo, stage):
        asked.append((stage.factor, len(todo)))
        for c in todo:
            write_record(_record(c, 0.40), tmp_path)

    found = study(tmp_path, stages, run_missing=run_missing)
    recipe_so_far, table = found.recipe, found.decisions
    # only the 60-epoch option trains: the incumbent's 15 runs exist; 60 epochs scores worse
    assert asked == [("epochs", 15)]
    assert recipe_so_far == {"lengths": "masked", "selection": "swa"}
    # the study trains with the default selection: swa is a way of reading the same runs
    assert all(c["config"]["selection"] == "best_val" and c["config"]["lengths"] == "masked"
               for c in map(lambda p: json.loads(p.read_text()), tmp_path.glob("emodb/*.json"))
               if c["config"]["epochs"] == 60)
    out = recipe.write_decisions(table, tmp_path / "decisions.csv")
    written = pd.read_csv(out)
    assert list(written.columns[:2]) == ["stage", "factor"]
    assert {"option", "n_runs", "val_mean", "val_sem", "chosen"} <= set(written.columns)
    assert written.chosen.sum() == 3  # one per stage


def test_an_option_the_recipe_rules_out_is_left_out(tmp_path):
    stages = (Stage("aug", (("none", {}), ("speed", {"speed_perturbation": 0.1}))),)
    for c in stage_configs(stages[0], {}, {}):
        write_record(_record(c, 0.5), tmp_path)
    # padded inputs (the default) cannot be speed-perturbed: the stage decides among the rest
    found = study(tmp_path, stages)
    assert list(found.decisions.option) == ["none", "speed"] and found.recipe == {}
    speed = found.decisions.set_index("option").loc["speed"]
    assert speed.n_runs == 0 and not speed.chosen and speed.note.startswith("ruled out: speed_perturbation")


def test_a_decision_made_at_other_depths_holds_at_those_depths_only(tmp_path):
    from sierlib.recipe import recipe_config

    stages = (Stage("lengths", (("padded", {"lengths": "padded"}), ("masked", {"lengths": "masked"}))),
              Stage("stride", (("2", {"conv_stride": 2}), ("1", {"conv_stride": 1})), depths=(3, 4)))
    for lengths, score in (("padded", 0.5), ("masked", 0.6)):
        for c in stage_configs(stages[0], {}, {"lengths": lengths}):
            write_record(_record(c, score), tmp_path)
    masked = {"lengths": "masked"}
    for stride, score in ((2, 0.4), (1, 0.5)):
        for c in stage_configs(stages[1], masked, {"conv_stride": stride}):
            assert c.n_cnn_layers in (3, 4) and c.lengths == "masked"  # on top of the incumbent
            write_record(_record(c, score), tmp_path)
    found = study(tmp_path, stages)
    assert found.recipe == {"lengths": "masked", "at_depths": {"3": {"conv_stride": 1}, "4": {"conv_stride": 1}}}
    assert found.recipes[-1] == (2, found.recipe)  # re-derived from the decision table alone
    assert list(found.decisions.depths.unique()) == ["1", "3 4"]
    at = {d: recipe_config(found.recipe, n_cnn_layers=d, gamma=None, fold=0, seed=0) for d in (1, 2, 3, 4)}
    assert [at[d].conv_stride for d in (1, 2, 3, 4)] == [2, 2, 1, 1]  # 1-2 blocks were never compared
    assert all(c.lengths == "masked" for c in at.values())
    # the tables' run at 3 blocks is the very run the stage trained
    assert at[3].name == stage_configs(stages[1], masked, {"conv_stride": 1})[0].name
    # had the stride as written won, the recipe would not change at all
    for c in stage_configs(stages[1], masked, {"conv_stride": 2}):
        write_record(_record(c, 0.6), tmp_path)
    assert study(tmp_path, stages).recipe == masked


def test_an_option_refused_for_another_reason_is_a_mistake_not_a_silent_skip(tmp_path):
    stages = (Stage("typo", (("none", {}), ("bad", {"dropout": 1.5}))),)
    with pytest.raises(ValueError, match="dropout"):
        study(tmp_path, stages)


def test_recipe_comparison_reads_the_recipe_selection_and_pairs_al_with_without(tmp_path):
    from sierlib.config import RunConfig
    from sierlib.recipe import recipe_config
    from sierlib.recipe_tables import recipe_comparison

    recipe = {"lengths": "masked", "selection": "swa"}
    study_dir, reference = tmp_path / "study", tmp_path / "reference"
    for seed in range(3):
        for fold in range(5):
            for gamma, acc in ((None, 0.60), (3.33, 0.62 if fold else 0.58)):
                c = recipe_config(recipe, n_cnn_layers=1, gamma=gamma, fold=fold, seed=seed)
                rec = _record(c, 0.5)
                rec["selections"]["swa"].update(test_accuracy=acc, test_uar=acc - 0.01)
                rec["selections"]["best_val"].update(test_accuracy=0.1, test_uar=0.1)  # not the recipe's selection
                write_record(rec, study_dir)
        for fold in range(5):  # the paper-literal reference runs: seeds 0-2 count, seed 3 does not
            c = RunConfig(gamma=None, fold=fold, seed=seed)
            write_record({**_record(c, 0.5), "test_accuracy": 0.55, "test_uar": 0.5}, reference)
    write_record({**_record(RunConfig(gamma=None, fold=0, seed=3), 0.5), "test_accuracy": 0.0, "test_uar": 0.0},
                 reference)
    table = recipe_comparison(recipe, "emodb", study_dir, reference).set_index("gamma")
    assert list(table.index) == ["without AL", "3.33"]
    assert table.loc["without AL", "recipe_acc"] == "60.0 ± 0.0" and table.loc["without AL", "recipe_runs"] == 15
    assert table.loc["without AL", "literal_acc"] == "55.0 ± 0.0" and table.loc["without AL", "literal_runs"] == 15
    assert table.loc["without AL", "paper_acc"] == "67.3 ± 6.5"
    al = table.loc["3.33"]
    # paired over folds, each fold's seeds averaged: fold 0 loses (-2 points), folds 1-4 win (+2)
    assert al.paired_runs == 15 and al.folds_paired == 5 and al.fold_wins == 4 and al.fold_losses == 1
    assert al.vs_without_AL_diff == pytest.approx((4 * 2 - 2) / 5)
    assert al.permutation_p == pytest.approx(12 / 32)  # sign flips of (-2, 2, 2, 2, 2) with |mean| >= 1.2
    assert al.literal_runs == 0 and al.literal_acc == "missing"
    # the offline setting is another run name: nothing of it here
    assert recipe_comparison(recipe, "emodb", study_dir, reference, normalisation="per_speaker_offline").empty
    # an earlier encoder of Table 2 gets rows of its own, paired with its own runs without AL and
    # beside its own paper-literal runs; the paper gives it with AL only
    for fold in range(5):
        for gamma, acc in ((None, 0.40), (3.33, 0.45)):
            rec = _record(recipe_config(recipe, encoder="tdnn_bilstm", gamma=gamma, fold=fold, seed=0), 0.5)
            rec["selections"]["swa"].update(test_accuracy=acc, test_uar=acc)
            write_record(rec, study_dir)
        write_record({**_record(RunConfig(encoder="tdnn_bilstm", gamma=3.33, fold=fold, seed=0), 0.5),
                      "test_accuracy": 0.35, "test_uar": 0.3}, reference)
    table = recipe_comparison(recipe, "emodb", study_dir, reference)
    tdnn = table[table.encoder == "tdnn_bilstm"].set_index("gamma")
    assert list(tdnn.index) == ["without AL", "3.33"] and (table.encoder == "2dcnn_bigru").sum() == 2
    assert tdnn.loc["without AL", "paper_acc"] == "missing" and tdnn.loc["3.33", "paper_acc"] == "61.4 ± 8.7"
    assert tdnn.loc["3.33", "recipe_acc"] == "45.0 ± 0.0" and tdnn.loc["3.33", "vs_without_AL_diff"] == pytest.approx(5)
    assert tdnn.loc["3.33", "literal_acc"] == "35.0 ± 0.0" and tdnn.loc["without AL", "literal_runs"] == 0


def test_the_held_out_check_decides_again_without_each_test_folds_speakers(tmp_path):
    from sierlib.recipe import held_out_check

    stages = (Stage("lengths", (("padded", {"lengths": "padded"}), ("masked", {"lengths": "masked"}))),)
    # speakers as in the real folds: fold g validates on the pair that fold g+1 tests on
    pair = {k: [f"{k}a", f"{k}b"] for k in range(5)}
    masked_gain = {0: 2, 1: -1, 2: 2, 3: -1, 4: 10}  # points; fold 4 alone makes masked win
    for lengths in ("padded", "masked"):
        for c in stage_configs(stages[0], {}, {"lengths": lengths}):
            score = 0.5 + (masked_gain[c.fold] / 100 if lengths == "masked" else 0)
            rec = _record(c, score)
            rec["speakers"] = {"val": pair[(c.fold + 1) % 5], "test": pair[c.fold]}
            write_record(rec, tmp_path)
    assert study(tmp_path, stages).recipe == {"lengths": "masked"}
    check = held_out_check(tmp_path, stages).set_index("test_fold")
    # test fold 0's speakers validated fold 4: without fold 4 the gain (+0.5 +- 0.87) is inside its error
    assert check.loc[0, "decided_on_folds"] == "0 1 2 3"
    assert not check.loc[0, "same_recipe"] and json.loads(check.loc[0, "recipe"]) == {"lengths": "padded"}
    assert check.loc[1, "decided_on_folds"] == "1 2 3 4"
    assert check.loc[0, "test_speakers"] == "0a 0b"


def test_feature_variants_are_those_the_undecided_stages_can_read():
    from sierlib.config import RunConfig
    from sierlib.recipe import STAGES, feature_variants

    padded = feature_variants({}, STAGES, decided=0)
    masked = feature_variants({"lengths": "masked"}, STAGES, decided=0)
    assert not any("speed" in v for v in padded)  # speed perturbation is ruled out for padded inputs
    assert sorted(v["speed"] for v in masked if "speed" in v) == [0.9, 1.1]
    assert {v["top_db"] for v in masked} == {20.0, 30.0, 40.0} and {v["highpass_hz"] for v in masked} == {None, 80.0}
    # after every stage that touches features, none is left but the recipe's own, at each speed
    # it perturbs to and of each encoder's kind
    recipe = {"lengths": "masked", "speed_perturbation": 0.1, "highpass_hz": None}
    own = feature_variants(recipe, STAGES, decided=len(STAGES))
    assert sorted(v.get("speed", 1) for v in own) == [0.9, 1, 1.1] and {v["highpass_hz"] for v in own} == {None}
    both = feature_variants(recipe, STAGES, decided=len(STAGES), encoders=("2dcnn_bigru", "1dcnn_gru"))
    assert len(both) == 6 and own == both[:3]
    assert feature_variants({"lengths": "masked"}, STAGES, decided=len(STAGES)) == [RunConfig().feature_params]


def test_al_gamma_is_chosen_on_validation_not_test():
    from sierlib.recipe_tables import al_chosen_on_validation

    rows = [("2dcnn_bigru", 1, "without AL", 70.0, "71.0 ± 1.0", np.nan, np.nan, np.nan),
            ("2dcnn_bigru", 1, "1.25", 68.0, "75.0 ± 1.0", 4.0, 0.1, 5),  # best on test, not on validation
            ("2dcnn_bigru", 1, "2.5", 69.0, "66.0 ± 1.0", -5.0, 0.06, 5),
            ("2dcnn_bigru", 2, "without AL", 60.0, "61.0 ± 1.0", np.nan, np.nan, np.nan),
            ("tdnn_bilstm", 1, "3.33", 50.0, "52.0 ± 1.0", np.nan, np.nan, 0)]  # no run without AL
    comparison = pd.DataFrame(rows, columns=["encoder", "n_cnn_layers", "gamma", "recipe_val_mean", "recipe_acc",
                                             "vs_without_AL_diff", "permutation_p", "folds_paired"])
    chosen = al_chosen_on_validation(comparison).set_index(["encoder", "n_cnn_layers"])
    assert list(chosen.index) == [("2dcnn_bigru", 1), ("tdnn_bilstm", 1)]  # 2 blocks: no AL cell to choose
    one = chosen.loc[("2dcnn_bigru", 1)]
    assert (one.gamma_chosen, one.gammas_compared, one.test_chosen) == ("2.5", "1.25 2.5", "66.0 ± 1.0")
    assert (one.without_AL_test, one.vs_without_AL_diff, one.folds_paired) == ("71.0 ± 1.0", -5.0, 5)
    assert chosen.loc[("tdnn_bilstm", 1), "without_AL_test"] == "missing"


def test_recipe_curves_are_one_row_per_run_and_epoch_in_percent(tmp_path):
    from sierlib.recipe import recipe_config
    from sierlib.recipe_tables import recipe_curves

    recipe = {"lengths": "masked", "selection": "swa"}
    for gamma in (None, 2.5):
        for fold in (0, 1):
            rec = _record(recipe_config(recipe, gamma=gamma, fold=fold, seed=0), 0.5)
            rec["curves"] = [{"epoch": e, "lambda": 0.1 * e if gamma else 0.0, "val_emotion_accuracy": 0.5 + 0.1 * e,
                              **({"train_speaker_accuracy": 0.3} if gamma else {})} for e in (1, 2)]
            write_record(rec, tmp_path)
    curves = recipe_curves(recipe, "emodb", gammas=(None, 2.5, 3.33), study_runs=tmp_path, seeds=(0, 1))
    assert len(curves) == 2 * 2 * 2 and set(curves.gamma) == {"without AL", "2.5"}  # 3.33 was not run
    al = curves[curves.gamma == "2.5"]
    assert al.val_emotion_accuracy.tolist() == pytest.approx([60.0, 70.0] * 2) and (al.train_speaker_accuracy == 30).all()
    assert curves[curves.gamma == "without AL"].train_speaker_accuracy.isna().all()


def _confusion(correct, n=len(corpus_info("emodb").emotions)):
    """A test confusion matrix with 10 utterances per emotion, ``correct`` of them right (one
    number for every emotion, or one per emotion) and the rest taken for the next emotion."""
    c = np.zeros((n, n), int)
    np.fill_diagonal(c, correct)
    c[np.arange(n), (np.arange(n) + 1) % n] = 10 - np.asarray(correct)
    return c.tolist()


def test_recall_by_emotion_compares_the_runs_every_gamma_has(tmp_path):
    from sierlib.recipe import recipe_config
    from sierlib.recipe_tables import recipe_recall_by_emotion

    recipe = {"lengths": "masked", "selection": "swa"}
    n = len(corpus_info("emodb").emotions)
    for gamma, folds, correct in ((None, (0, 1, 2), 8), (2.5, (0, 1), [5] + [8] * (n - 1))):
        for fold in folds:
            rec = _record(recipe_config(recipe, gamma=gamma, fold=fold, seed=0), 0.5)
            rec["selections"]["swa"]["test_confusion"] = _confusion(correct)
            rec["selections"]["best_val"]["test_confusion"] = _confusion(0)  # not the recipe's selection
            write_record(rec, tmp_path)
    recall = recipe_recall_by_emotion(recipe, "emodb", gammas=(None, 2.5, 3.33), study_runs=tmp_path, seeds=(0,))
    assert list(recall.columns) == ["without AL", "2.5", "n_test"]  # 3.33 has no run and is left out
    assert recall.attrs["runs"] == 2 and (recall.n_test == 20).all()  # fold 2 has no AL run to compare
    assert list(recall.index) == list(corpus_info("emodb").emotions)
    assert (recall["without AL"] == 80).all() and recall["2.5"].iloc[0] == 50 and (recall["2.5"].iloc[1:] == 80).all()
    assert recipe_recall_by_emotion(recipe, "emodb", gammas=(None, 3.33), study_runs=tmp_path, seeds=(0,)).empty


def test_recall_change_is_paired_over_folds_per_depth(tmp_path):
    from sierlib.recipe import recipe_config
    from sierlib.recipe_tables import recipe_recall_change
    from sierlib.records import record_path

    recipe = {"lengths": "masked", "selection": "swa"}
    n = len(corpus_info("emodb").emotions)
    # 1 block: the first emotion 8/10 without AL, 4/10 and 6/10 at the two gammas on every fold;
    # 2 blocks: only without AL has runs, so it is left out
    cells = [(1, None, [8] * n), (1, 2.5, [4] + [8] * (n - 1)), (1, 3.33, [6] + [8] * (n - 1)), (2, None, [8] * n)]
    for depth, gamma, correct in cells:
        for fold in range(5):
            for seed in (0, 1):
                rec = _record(recipe_config(recipe, gamma=gamma, fold=fold, seed=seed, n_cnn_layers=depth), 0.5)
                rec["selections"]["swa"]["test_confusion"] = _confusion(correct)
                write_record(rec, tmp_path)
    record_path(recipe_config(recipe, gamma=3.33, fold=4, seed=1), tmp_path).unlink()  # fold 4 seed 1: not common
    change = recipe_recall_change(recipe, "emodb", depths=(1, 2), gammas=(2.5, 3.33), study_runs=tmp_path, seeds=(0, 1))
    assert set(change.n_cnn_layers) == {1} and len(change) == n and (change.runs == 9).all()
    first = change.iloc[0]
    assert (first.without_AL_recall, first.AL_recall, first["diff"]) == pytest.approx((80, 50, -30))
    assert (first.folds, first.fold_losses, first.permutation_p) == (5, 5, pytest.approx(0.0625))
    assert (change["diff"].iloc[1:] == 0).all() and (change.permutation_p.iloc[1:] == 1).all()


def test_recipe_tables_are_written_from_the_records_with_offline_kept_apart(tmp_path):
    from sierlib.recipe import recipe_config
    from sierlib.recipe_tables import recipe_tables, write_recipe_tables

    recipe = {"lengths": "masked", "selection": "swa"}
    study_dir, path = tmp_path / "study", tmp_path / "out" / "recipe_tables.csv"
    assert write_recipe_tables(recipe, study_dir, tmp_path / "reference", path) == [] and not path.parent.exists()
    for fold in range(5):
        rec = _record(recipe_config(recipe, gamma=None, fold=fold, seed=0), 0.5)
        rec["selections"]["swa"].update(test_accuracy=0.6, test_uar=0.6)
        write_record(rec, study_dir)
    assert len(write_recipe_tables(recipe, study_dir, tmp_path / "reference", path)) == 2  # no AL cell yet: no AL columns
    assert "| 2dcnn_bigru | 1 | without AL |" in path.with_suffix(".md").read_text()
    for fold in range(5):
        for gamma, normalisation, acc in ((2.5, "train_speakers", 0.50), (None, "per_speaker_offline", 0.90)):
            rec = _record(recipe_config(recipe, gamma=gamma, fold=fold, seed=0, normalisation=normalisation), 0.5)
            rec["selections"]["swa"].update(test_accuracy=acc, test_uar=acc)
            write_record(rec, study_dir)
    written = write_recipe_tables(recipe, study_dir, tmp_path / "reference", path)
    assert written == [path, path.with_suffix(".md")]
    table = recipe_tables(recipe, study_dir, tmp_path / "reference")
    assert path.read_text() == table.to_csv(index=False)  # what 07 checks the committed file against
    assert list(table.gamma) == ["without AL", "2.5"] and list(table.recipe_runs) == [5, 5]
    assert table.recipe_acc.tolist() == ["60.0 ± 0.0", "50.0 ± 0.0"]  # the offline runs are not in the tables
    assert table.loc[1, "vs_without_AL_diff"] == -10.0 and table.loc[1, "fold_losses"] == 5
    assert table.loc[1, "permutation_p"] == 0.0625  # 4 decimals: over 12 folds p can be 0.0005
    md = path.with_suffix(".md").read_text()
    assert "## Emo-DB" in md and "## RAVDESS" not in md and '`{"lengths": "masked", "selection": "swa"}`' in md
    main, offline = md.split("## Offline")
    assert "90.0 ± 0.0" not in main and "| emodb | 2dcnn_bigru | 1 | without AL | 5 | 90.0 ± 0.0 |" in offline
    assert "| 2dcnn_bigru | 1 | 2.5 | 2.5 | 60.0 | 50.0 ± 0.0 | 60.0 | 60.0 ± 0.0 | 5 | -10.0 | 0.0625 |" in main


def test_recipe_commands_keep_your_runs_apart_from_the_committed_study(tmp_path, monkeypatch, capsys):
    from types import SimpleNamespace

    from sierlib import workers
    from sierlib.cli import main as sier
    from sierlib.recipe import STAGES, recipe_config

    def main(argv):
        return sier(["recipe", *argv])

    committed, local = tmp_path / "committed", tmp_path / "local"
    monkeypatch.setattr(recipe, "STUDY_RUNS", committed)
    monkeypatch.setattr(recipe, "LOCAL_RECIPE", local)
    monkeypatch.setattr(recipe, "DECISIONS", tmp_path / "recipe_decisions.csv")
    trained = []
    monkeypatch.setattr(workers, "run_in_process", lambda todo, out_dir, **kw: trained.append(
        (sorted(c.fold for c in todo), Path(out_dir))) or SimpleNamespace(failed=[]))

    def run(config, folder, acc=0.6):
        rec = _record(config, acc)
        rec["selections"]["swa"].update(test_accuracy=acc, test_uar=acc)
        write_record(rec, folder)

    for lengths, acc in (("padded", 0.5), ("masked", 0.6)):  # the committed study has decided its first stage
        for c in stage_configs(STAGES[0], {}, {"lengths": lengths}):
            run(c, committed, acc)
    run(recipe_config({"lengths": "masked"}, gamma=2.5, fold=0, seed=0), committed)  # committed: never trained again
    run(recipe_config({"lengths": "masked"}, gamma=2.5, fold=1, seed=0), local / "runs")  # yours, finished earlier
    assert main(["tables", "--gammas", "none", "2.5", "--seeds", "0"]) == 0
    assert trained == [([2, 3, 4], local / "runs")]  # without AL is the study's own runs; 2.5 on the folds left
    assert main(["decide"]) == 0
    assert (local / "recipe_decisions.csv").exists() and (local / "recipe_tables.md").exists()
    assert not (tmp_path / "recipe_decisions.csv").exists() and not (committed.parent / "recipe_tables.csv").exists()
    assert main(["decide", "--reference"]) == 0 and (tmp_path / "recipe_decisions.csv").exists()
    assert (tmp_path / "recipe_tables.csv").exists()
    trained.clear()
    assert main(["tables", "--gammas", "2.5", "--seeds", "0", "--reference"]) == 0
    assert trained == [([1, 2, 3, 4], committed)]  # your own runs are not the committed study's
    with pytest.raises(SystemExit):
        main(["tables", "--reference", "--runs-dir", str(tmp_path / "elsewhere")])
    assert "leave out --runs-dir" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the committed study by another name
        main(["tables", "--runs-dir", str(committed / ".." / committed.name)])
    assert "use --reference" in capsys.readouterr().err


def test_a_stage_that_changes_the_recipe_leaves_the_tables_with_the_last_recipe_whose_cells_are_trained(tmp_path):
    from sierlib.recipe import recipe_config
    from sierlib.recipe_tables import (TRAIN_TABLED_CELLS, earlier_tabled_recipe, recipe_tables, tabled_recipe,
                                       write_recipe_tables)

    both = ("emodb", "ravdess")
    stages = (Stage("lengths", (("padded", {"lengths": "padded"}), ("masked", {"lengths": "masked"})), corpora=both),
              Stage("epochs", (("30", {}), ("60", {"epochs": 60})), corpora=both))
    old, new = {"lengths": "masked"}, {"lengths": "masked", "epochs": 60}

    def decided(stage, recipe, option, val):  # a stage's runs (1 block without AL, 3 seeds, every fold)
        for c in stage_configs(stage, recipe, option):
            rec = _record(c, val)
            rec["selections"]["best_val"].update(test_accuracy=val, test_uar=val)
            write_record(rec, tmp_path)

    def train(recipe, gammas, val):
        for corpus in ("emodb", "ravdess"):
            for fold in range(corpus_info(corpus).n_folds):
                for gamma in gammas:
                    rec = _record(recipe_config(recipe, corpus=corpus, gamma=gamma, fold=fold, seed=0), val)
                    rec["selections"]["best_val"].update(test_accuracy=val, test_uar=val)
                    write_record(rec, tmp_path)

    decided(stages[0], {}, {"lengths": "padded"}, 0.50)
    decided(stages[0], {}, old, 0.55)
    train(old, [1.25, 2.5, 3.33], 0.55)  # the masked recipe's AL cells at 1 block, every fold, on both corpora
    assert tabled_recipe(study(tmp_path, stages), tmp_path, seeds=(0,)) == old  # epochs not decided: the same
    decided(stages[1], old, {"epochs": 60}, 0.70)  # 60 epochs wins: its runs are the new recipe's cell without AL
    found = study(tmp_path, stages)
    assert found.recipe == new and [r for _, r in found.recipes] == [old, new]
    assert tabled_recipe(found, tmp_path, seeds=(0,)) == old  # the new recipe has no AL cells yet
    path = tmp_path / "tables" / "recipe_tables.csv"
    write_recipe_tables(tabled_recipe(found, tmp_path, seeds=(0,)), tmp_path, tmp_path / "reference", path, newest=new)
    md = path.with_suffix(".md").read_text()
    assert "55.0 ± 0.0" in md and "70.0 ± 0.0" not in md and TRAIN_TABLED_CELLS in md
    train(new, [1.25, 2.5], 0.60)
    assert tabled_recipe(found, tmp_path, seeds=(0,)) == old  # one γ still missing
    train(new, [3.33], 0.60)
    assert tabled_recipe(found, tmp_path, seeds=(0,)) == new and earlier_tabled_recipe(found, tmp_path, seeds=(0,)) == old
    table = recipe_tables(new, tmp_path, tmp_path / "reference", earlier=old)
    cells = table.set_index(["corpus", "gamma"])
    assert cells.loc[("ravdess", "without AL"), ["earlier_acc", "recipe_acc"]].tolist() == ["55.0 ± 0.0", "70.0 ± 0.0"]
    assert cells.loc[("emodb", "2.5"), ["earlier_runs", "recipe_runs"]].tolist() == [5, 5]  # AL: seed 0 only
    assert list(table.columns).index("earlier_acc") < list(table.columns).index("recipe_acc")


def test_the_depth_is_chosen_on_validation_among_the_cells_without_al():
    from sierlib.recipe_tables import depth_chosen_on_validation

    comparison = pd.DataFrame({"encoder": ["2dcnn_bigru"] * 4 + ["tdnn_bilstm"],
                               "n_cnn_layers": [1, 2, 2, 3, 1], "gamma": ["without AL", "without AL", "2.5", "without AL",
                                                                          "without AL"],
                               "recipe_runs": [15, 15, 15, 10, 15], "recipe_val_mean": [60.0, 62.0, 70.0, 55.0, 80.0],
                               "recipe_acc": ["58.0 ± 1.0", "57.0 ± 2.0", "65.0 ± 1.0", "50.0 ± 3.0", "75.0 ± 1.0"]})
    row = depth_chosen_on_validation(comparison).iloc[0]  # AL cells and the earlier encoders do not compete
    assert (row.depth_chosen, row.val_chosen, row.test_chosen) == (2, 62.0, "57.0 ± 2.0")
    assert (row.depths_compared, row.runs_per_depth, row.one_block_test) == ("1 2 3", "15 15 10", "58.0 ± 1.0")
    assert depth_chosen_on_validation(comparison[comparison.n_cnn_layers != 2]).iloc[0].depth_chosen == 1
    assert depth_chosen_on_validation(comparison[comparison.n_cnn_layers == 1]).empty


def test_the_committed_decisions_and_recipe_tables_are_those_of_the_committed_runs(tmp_path):
    from sierlib.paths import RECIPE_TABLES
    from sierlib.recipe import DECISIONS, write_decisions
    from sierlib.recipe_tables import earlier_tabled_recipe, recipe_tables, tabled_recipe

    found = study()
    write_decisions(found.decisions, tmp_path / "decisions.csv")
    assert DECISIONS.read_text() == (tmp_path / "decisions.csv").read_text(), "run `sier recipe decide --reference`"
    table = recipe_tables(tabled_recipe(found), earlier=earlier_tabled_recipe(found))
    assert RECIPE_TABLES.read_text() == table.to_csv(index=False), \
        "run `sier recipe decide --reference`"


def test_a_stage_of_both_corpora_weighs_each_corpus_equally_and_checks_each_corpus_test_folds(tmp_path):
    from sierlib.recipe import held_out_check
    from sierlib.registry import CORPORA

    stage = Stage("epochs", (("30", {}), ("60", {"epochs": 60})), corpora=("emodb", "ravdess"))
    # 60 epochs: RAVDESS (12 folds) gains 1 point, Emo-DB (5 folds) loses 3; each fold's noise is shared
    for option in ({}, {"epochs": 60}):
        for c in stage_configs(stage, {}, option):
            n = CORPORA[c.corpus].n_folds
            gain = (0.01 if c.corpus == "ravdess" else -0.03) if option else 0.0
            rec = _record(c, 0.5 + gain + 0.002 * c.fold)
            rec["speakers"] = {"val": [f"{c.corpus}{(c.fold + 1) % n}"], "test": [f"{c.corpus}{c.fold}"]}
            write_record(rec, tmp_path)
    found = study(tmp_path, (stage,))
    table = found.decisions.set_index("option")
    # corpora weighted equally: (1 - 3) / 2 = -1 (weighted by runs it would be (36 - 45) / 51 = -0.18)
    assert table.loc["60", "diff_to_best"] == pytest.approx(-1.0) and table.loc["30", "n_runs"] == 3 * (5 + 12)
    assert found.recipe == {} and set(table.corpora) == {"emodb ravdess"}
    assert set(found.scores.corpus) == {"emodb", "ravdess"}
    check = held_out_check(tmp_path, (stage,))
    assert check.groupby("corpus").size().to_dict() == {"emodb": 5, "ravdess": 12}
    # RAVDESS fold 0's test speaker validated fold 11: decided again without it (Emo-DB keeps all 5)
    row = check.set_index(["corpus", "test_fold"]).loc[("ravdess", 0)]
    assert row.decided_on_folds == " ".join(map(str, range(11))) and check.same_recipe.all()


def test_the_adversary_stage_gives_both_arms_the_same_budget_and_decides_at_1_and_2_blocks(tmp_path, monkeypatch):
    from sierlib.recipe import STAGES, recipe_config

    monkeypatch.setattr(recipe, "SEEDS", (0,))  # one seed is enough for the rule; 3 would write 408 records
    stage = STAGES[-1]
    assert stage.factor == "speaker adversary" and stage.depths == (1, 2) and stage.corpora == ("emodb", "ravdess")
    options = dict(stage.options)
    without = {k: v for k, v in options.items() if "gamma" not in v}
    assert len(without) == 2 and len(options) == 4
    for label, fields in without.items():  # each AL option is a no-AL option with γ and nothing else
        assert {**fields, "gamma": 2.5} in options.values()
    for label, fields in stage.options:  # AL at 60 epochs wins clearly, on both corpora and at both depths
        score = 0.6 if fields == {"gamma": 2.5, "epochs": 60, "swa_epochs": 10} else 0.5
        for c in stage_configs(stage, {}, fields):
            assert c.gamma == fields.get("gamma") and c.epochs == fields["epochs"]
            write_record(_record(c, score + 0.002 * c.fold), tmp_path)
    found = study(tmp_path, (stage,))
    assert found.decisions.chosen.sum() == 1 and len(found.scores) == 4 * 2 * (5 + 12)
    chosen = {"gamma": 2.5, "epochs": 60, "swa_epochs": 10}
    assert found.recipe == {"at_depths": {"1": chosen, "2": chosen}}
    # the tables' no-AL column at 1 block keeps the AL arm's budget; 3 blocks were never compared
    at1 = recipe_config(found.recipe, n_cnn_layers=1, gamma=None, fold=0, seed=0)
    at3 = recipe_config(found.recipe, n_cnn_layers=3, gamma=None, fold=0, seed=0)
    assert (at1.gamma, at1.epochs, at1.swa_epochs) == (None, 60, 10)
    assert (at3.epochs, at3.swa_epochs) == (30, 5)
