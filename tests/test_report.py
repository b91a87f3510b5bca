"""papers/reproduction.md is generated from the committed records and tables (sierlib.report): it
must be exactly what the code writes now, so no figure in it can differ from the tables."""
from sierlib.report import README, REPORT, readme_with_headline, render_report


def test_the_committed_report_is_what_the_code_writes():
    assert REPORT.read_text() == render_report(), "regenerate it: sier report (and commit papers/reproduction.md)"


def test_the_report_includes_the_generated_tables_and_speaks_of_no_session():
    text = REPORT.read_text()
    for name in ("table1.md", "table2.md", "recipe_tables.md"):
        body = (REPORT.parents[1] / "results" / name).read_text().split("\n", 1)[1].strip()
        assert body.replace("\n## ", "\n### ") in text, name  # its headings under the report's sections
    assert "session" not in text.lower()


def test_the_readme_headline_table_is_the_generated_one():
    text = README.read_text()
    assert text == readme_with_headline(text), "regenerate it: sier report"
    first_screen = "\n".join(text.splitlines()[:60])  # what the method is, the headline table, the set-up
    assert "gradient-reversal" in first_screen and "recipe, AL (γ chosen on validation)" in first_screen
    assert "make run" in first_screen and "make test" in first_screen


def test_the_headline_shows_the_earlier_recipe_once_a_newer_one_is_tabled(tmp_path):
    import shutil

    import pandas as pd

    from sierlib.paths import RESULTS
    from sierlib.report import headline_table

    for name in ("table1.csv", "table2.csv", "recipe_tables.csv"):
        shutil.copy(RESULTS / name, tmp_path / name)
    assert "earlier recipe" not in headline_table(tmp_path)
    tables = pd.read_csv(tmp_path / "recipe_tables.csv")
    tables.insert(7, "earlier_acc", "12.5 ± 0.5")
    tables.insert(8, "earlier_uar", "11.5 ± 0.5")
    tables.to_csv(tmp_path / "recipe_tables.csv", index=False)
    row = next(line for line in headline_table(tmp_path).splitlines() if line.startswith("| earlier recipe, without AL"))
    assert row == "| earlier recipe, without AL | 12.5 ± 0.5 | 11.5 ± 0.5 | 12.5 ± 0.5 | 11.5 ± 0.5 |"


def test_the_open_items_name_each_depth_whose_control_or_paper_adversary_lacks_seeds():
    import pandas as pd

    from sierlib.report import probe_coverage

    rows = [{"corpus": "emodb", "n_cnn_layers": d, "adversary": a, "seed": s, "fold": f}
            for d in (1, 2, 3, 4) for a in ("control", "λ×1") for s in (0, 1) for f in range(5)
            if not (d == 3 and a == "λ×1" and s == 1 and f == 4)]  # one fold short: that seed is not complete
    rows += [{"corpus": "emodb", "n_cnn_layers": 1, "adversary": "λ×3", "seed": 0, "fold": f} for f in range(5)]
    lines = probe_coverage(pd.DataFrame(rows))
    assert len(lines) == 2  # Emo-DB, and RAVDESS, which has no probe runs
    emodb, ravdess = lines
    assert "emodb: fewer than 2 seeds over all folds at 3 blocks λ×1 (1 seed):" in emodb
    assert "`sier adversary run --corpus emodb --depths 3 --strengths 1 --seeds 0 1`" in emodb
    assert "1 block control (0 seeds)" in ravdess and "4 blocks λ×1 (0 seeds)" in ravdess
    assert "--depths 1 2 3 4" in ravdess
    assert probe_coverage(pd.DataFrame([r for r in rows if r["corpus"] == "emodb"]), min_seeds=1)[0].startswith(
        "- Adversary study, ravdess")
    # λ×1 counts only at the validation-chosen γ where one is given; the control at any γ
    rows = [{**r, "gamma": "3.33"} for r in rows]
    emodb = probe_coverage(pd.DataFrame(rows), min_seeds=1, gammas={("emodb", 2): "1.25"})[0]
    assert "at 2 blocks λ×1 at γ 1.25 (0 seeds):" in emodb and "control" not in emodb
    assert "`sier adversary run --corpus emodb --gamma 1.25 --depths 2 --strengths 1 --seeds 0`" in emodb


def test_the_adversary_summary_pairs_the_paper_adversary_with_the_control_and_marks_the_chosen_gamma(tmp_path):
    from sierlib.adversary import probe_rows, tradeoff_table
    from sierlib.config import RunConfig
    from sierlib.records import write_record
    from sierlib.report import adversary_summary

    for fold in range(4):
        for lam, gamma, acc, probe in ((0.0, 2.5, 0.60, 0.90), (1.0, 2.5, 0.50, 0.70), (1.0, 1.25, 0.58, 0.88)):
            config = RunConfig(corpus="ravdess", gamma=gamma, lambda_max=lam, speaker_holdout=0.2, fold=fold)
            metrics = {"test_accuracy": acc, "test_uar": acc, "val_accuracy": acc}
            write_record({"status": "finished", "name": config.name, "config": config.to_dict(), **metrics,
                          "speakers": {"train": [], "val": [f"s{(fold + 1) % 4}"], "test": [f"s{fold}"]},
                          "selections": {"best_val": dict(metrics)}, "curves": [],
                          "speaker_information": {"speaker_linear_probe": probe, "unseen_speaker_eer": 0.4,
                                                  "speaker_chance": 0.05, "emotion_chance": 0.125}}, tmp_path)
    text = adversary_summary(tradeoff_table(probe_rows(tmp_path)), {("ravdess", 1): "1.25"})
    lines = [line for line in text.splitlines() if line.startswith("| RAVDESS")]
    assert len(lines) == 2  # λ×1 at each γ; the control is the left side of every arrow
    low, high = sorted(lines)  # "1.25" sorts before "2.5"
    assert "| 1.25 | yes |" in low and "90.0 → 88.0" in low and "-2.0 (0.12)" in low
    assert "| 2.5 |  |" in high and "60.0 → 50.0" in high and "-10.0 [" in high
    two_folds = probe_rows(tmp_path)
    two_folds = two_folds[two_folds.fold < 2]
    assert "fewer than 3 folds" in adversary_summary(tradeoff_table(two_folds), {})  # as the verdict, no Δ judged
