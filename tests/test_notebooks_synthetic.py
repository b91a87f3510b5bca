"""Every numbered notebook executed through papermill on the synthetic corpus, with tiny
parameters, and the values it prints checked against the corpus and the records (the pyhf way of
testing notebooks). They run where the real corpora are absent; `pytest --nbval` still compares
the committed outputs on the real corpora.

Each test gives the notebook explicit parameters, executes it into ``tmp_path`` and reads its
outputs back. Features go to a temporary cache and records to temporary folders: nothing in the
repository is written (checked with ``git status`` around each test)."""
import json
import re
import subprocess
from pathlib import Path

import nbformat
import numpy as np
import papermill as pm
import pytest

from sierlib.config import RunConfig, RunOptions
from sierlib.experiments import run
from sierlib.folds import fold_speakers, make_folds, n_folds, split_metadata
from sierlib.model import ENCODERS
from sierlib.registry import PRETTY

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
# a tiny network that still learns a little in 2 epochs, so runs differ from one another
TINY = dict(n_filters=8, gru_hidden=8, fc_hidden=8, batch_size=8, epochs=2, lr=0.01)
SYNTHETIC = PRETTY["synthetic"]
CNN2D = re.escape(ENCODERS["2dcnn_bigru"].title)


def git_status() -> str | None:
    """What git says has changed under results/ and notebooks/ (None outside a git checkout)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", "results", "notebooks"],
                             cwd=REPO, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


@pytest.fixture(autouse=True)
def writes_nothing_in_the_repository(synthetic_cache, monkeypatch):
    monkeypatch.setenv("SIER_CACHE", str(synthetic_cache))  # the synthetic features' cache, not cache/
    before = git_status()
    yield
    assert git_status() == before


def execute(name: str, tmp_path: Path, **parameters):
    out = tmp_path / name
    pm.execute_notebook(str(REPO / "notebooks" / name), str(out), parameters=parameters, cwd=str(REPO),
                        progress_bar=False, kernel_name="python3", start_timeout=300)
    return nbformat.read(out, 4)


def code_cell(nb, source: str):
    """The one code cell whose source holds ``source``."""
    cells = [c for c in nb.cells if c.cell_type == "code" and source in c.source]
    assert len(cells) == 1, f"{len(cells)} code cells hold {source!r}"
    return cells[0]


def cell_text(nb, source: str) -> str:
    """What that cell printed and displayed as text (printed text as it came, however the kernel
    split it into stream outputs; each displayed value on lines of its own)."""
    parts = []
    for o in code_cell(nb, source).outputs:
        if o.output_type == "stream":
            parts.append(o.text)
        else:
            parts.append(o.get("data", {}).get("text/plain", "") + "\n")
    return "".join(parts)


def count_outputs(nb, source: str, mime: str) -> int:
    """How many outputs of that cell carry ``mime`` (image/png: a figure; text/html: e.g. a player)."""
    return sum(mime in o.get("data", {}) for o in code_cell(nb, source).outputs)


def fmt(values) -> str:
    """Mean ± sample std of accuracies in %, as the tables print them."""
    values = 100 * np.asarray(values)
    return f"{values.mean():.1f} ± {values.std(ddof=1):.1f}"


# --------------------------------------------------------------------------------------------------
# 01-04: the corpus itself


def test_01_explores_the_synthetic_corpus(synthetic_root, synthetic_meta, tmp_path):
    m = synthetic_meta
    nb = execute("01_data_exploration.ipynb", tmp_path, corpora=["synthetic"], data_root=str(synthetic_root),
                 examples={"synthetic": ["21a01Wa", "22a01Ta"]}, n_jobs=1)
    assert f"corpora found under {synthetic_root}: ['synthetic']" in cell_text(nb, "corpora found under")
    overview = cell_text(nb, "overview = pd.DataFrame(")
    assert re.search(rf"^utterances\s+{len(m)}$", overview, re.M)
    assert re.search(rf"^speakers\s+{m.speaker.nunique()}$", overview, re.M)
    assert re.search(rf"^male speakers\s+{(m.drop_duplicates('speaker').gender == 'male').sum()}$", overview, re.M)
    assert re.search(rf"^emotions\s+{m.emotion.nunique()}$", overview, re.M)
    per_cell = m.groupby(["speaker", "emotion"]).size()
    assert (f"{SYNTHETIC}: {per_cell.min()} to {per_cell.max()} utterances per speaker and emotion; "
            f"{m.speaker.nunique() * m.emotion.nunique() - len(per_cell)} empty cells") in cell_text(nb, "counts = {}")
    assert re.search(rf"{re.escape(SYNTHETIC)}: \d+ of {len(m)} files have no silence before the speech",
                     cell_text(nb, "silence_margins("))
    # the two examples, each a figure and a player
    assert count_outputs(nb, "show_example(CORPORA[0], utterance)", "image/png") == 2
    assert count_outputs(nb, "show_example(CORPORA[0], utterance)", "text/html") == 2
    assert code_cell(nb, "show_example(c, utterance)").outputs == []  # one corpus: no second set
    # the browser starts on an utterance of the speaker and emotion its dropdowns show
    shown = re.search(r"showing synthetic (\S+) of (\d+) utterances of speaker (\S+) with emotion (\S+)",
                      cell_text(nb, "UtteranceBrowser("))
    utterance, n, speaker, emotion = shown.groups()
    same = m[(m.speaker == speaker) & (m.emotion == emotion)]
    assert utterance in set(same.utterance) and int(n) == len(same)


def test_02_preprocesses_the_synthetic_corpus(synthetic_root, synthetic_meta, synthetic_feats, tmp_path):
    m = synthetic_meta
    nb = execute("02_preprocessing.ipynb", tmp_path, corpus="synthetic", corpora=[], data_root=str(synthetic_root),
                 n_jobs=1)
    assert f"{SYNTHETIC}: {len(m)} utterances from {m.speaker.nunique()} speakers" in cell_text(nb, "metas = {")
    # the features the notebook caches are those the library extracts
    extraction = cell_text(nb, "feats = extract_features(")
    assert f"X {synthetic_feats.X.shape} float32 = (utterances, coefficients, frames)" in extraction
    assert "present = True" in extraction
    folds = make_folds(m)
    printed = re.findall(r"fold +(\d+): test (\d+) (\d+), val (\d+) (\d+)", cell_text(nb, "fold_grid(fl)"))
    assert len(printed) == n_folds(folds) == m.speaker.nunique() // 2
    for k, *speakers in printed:
        roles = fold_speakers(folds, int(k))
        assert speakers == roles["test"] + roles["val"]
    counts = cell_text(nb, "split_metadata(meta, folds[corpus], k)")
    for role in ("train", "val", "test"):
        expected = [len(split_metadata(m, folds, k)[role]) for k in range(n_folds(folds))]
        assert re.search(rf"^{role}\s+" + r"\s+".join(map(str, expected)) + "$", counts, re.M), role


def test_03_shows_padded_and_masked_inputs_of_the_synthetic_corpus(synthetic_root, synthetic_feats, tmp_path):
    nb = execute("03_model.ipynb", tmp_path, corpus="synthetic", data_root=str(synthetic_root))
    assert len(re.findall(r"--- \d CNN block\(s\): [\d,]+ parameters ---", cell_text(nb, "layer_table("))) == 4
    inputs = re.search(r"(\d+) speech frames of (\d+) .*padded (\S+), masked (\S+)$",
                       cell_text(nb, "fold_data(meta, feats, 0, masked=True)"))
    n, frames, _, masked = inputs.groups()
    assert int(frames) == synthetic_feats.X.shape[-1] and 0 < int(n) <= int(frames)
    assert float(masked) == 0.0  # a masked input is zero in its padding
    reversal = cell_text(nb, "gradient_reversal(z, lam)")
    lo, hi = map(float, re.search(r"min (\S+), max (\S+)", reversal).groups())
    assert lo == pytest.approx(-0.4, abs=1e-3) and hi == pytest.approx(-0.4, abs=1e-3)
    assert "speaker classifier gradient unchanged: True" in reversal


def test_04_trains_without_al_and_shows_the_record(synthetic_root, synthetic_meta, tmp_path):
    nb = execute("04_train.ipynb", tmp_path, corpus="synthetic", fold=2, gamma=None, data_root=str(synthetic_root),
                 out_dir=str(tmp_path / "runs"), **TINY)
    [path] = (tmp_path / "runs" / "synthetic").glob("*.json")
    rec = json.loads(path.read_text())
    assert rec["config"]["gamma"] is None and rec["config"]["fold"] == 2 and len(rec["curves"]) == TINY["epochs"]
    assert rec["speakers"]["test"] == fold_speakers(make_folds(synthetic_meta), 2)["test"]
    assert f"Trained and wrote {path.name}" in cell_text(nb, "record = run(config, options)")
    assert "NOTE: synthetic corpus" in cell_text(nb, "record = run(config, options)")
    metrics = cell_text(nb, "metrics_table(record)")
    assert re.search(rf"^test accuracy \(WA\) %\s+{round(100 * rec['test_accuracy'], 1)}$", metrics, re.M)
    assert re.search(rf"^test speakers\s+{', '.join(rec['speakers']['test'])}$", metrics, re.M)
    assert count_outputs(nb, "plot_curves(record)", "image/png") == 1


# --------------------------------------------------------------------------------------------------
# 05-06: tables from records: tiny synthetic runs, and Emo-DB without any


@pytest.fixture(scope="module")
def synthetic_runs(tmp_path_factory, synthetic_meta, synthetic_feats):
    """A folder of records: the tiny network with AL (γ 3.33) and without, on every fold."""
    out = tmp_path_factory.mktemp("runs")
    options = RunOptions(out_dir=str(out), torch_threads=1)
    records = [run(RunConfig(corpus="synthetic", fold=fold, gamma=gamma, **TINY), options, meta=synthetic_meta,
                   feats=synthetic_feats, progress=False)
               for gamma in (3.33, None) for fold in range(n_folds(make_folds(synthetic_meta)))]
    return out, records


def by_setting(records) -> dict:
    """{"3.33" or "without AL": the records of that setting, in fold order}."""
    out = {}
    for rec in sorted(records, key=lambda r: r["config"]["fold"]):
        out.setdefault("without AL" if rec["config"]["gamma"] is None else str(rec["config"]["gamma"]), []).append(rec)
    return out


def test_05_tables_from_synthetic_records_and_emodb_missing(synthetic_runs, synthetic_meta, tmp_path):
    runs_dir, records = synthetic_runs
    folds = n_folds(make_folds(synthetic_meta))
    nb = execute("05_ablations.ipynb", tmp_path, runs_dir=str(runs_dir), corpora=["synthetic", "emodb"])
    assert f"synthetic: {len(records)} finished runs\nemodb: 0 finished runs" in cell_text(nb, "finished runs")
    table = cell_text(nb, "wide.reindex(")
    settings = by_setting(records)
    for recs in settings.values():
        assert fmt([r["test_accuracy"] for r in recs]) in table
        assert fmt([r["test_uar"] for r in recs]) in table
    assert f"{folds}/{folds}" in table and "0/5" in table and "missing" in table
    assert count_outputs(nb, "sns.heatmap(data", "image/png") == 1
    # AL against without AL, paired over the folds
    diffs = [100 * (a["test_accuracy"] - b["test_accuracy"]) for a, b in zip(settings["3.33"], settings["without AL"])]
    [row] = re.findall(r"synthetic\s+1\s+3\.33\s+(\d+)\s+(\S+)\s+(\d+)\s+(\d+)", cell_text(nb, "al_vs_without(r, c)"))
    assert int(row[0]) == folds and float(row[1]) == pytest.approx(np.mean(diffs), abs=1e-3)
    assert (int(row[2]), int(row[3])) == (sum(d > 0 for d in diffs), sum(d < 0 for d in diffs))
    # the seed study takes only the default network's runs: none of these tiny ones
    seeds = cell_text(nb, "seed_spread(runs[seed_corpus]")
    assert "Seeds still missing" in seeds and "Empty DataFrame" in seeds


def test_06_comparison_from_synthetic_records_and_emodb_missing(synthetic_runs, synthetic_meta, tmp_path):
    runs_dir, records = synthetic_runs
    folds = n_folds(make_folds(synthetic_meta))
    nb = execute("06_comparison.ipynb", tmp_path, runs_dir=str(runs_dir), corpora=["synthetic", "emodb"])
    table = cell_text(nb, 'tables["table2_show"]')
    settings = by_setting(records)
    for gamma, recs in settings.items():
        assert re.search(rf"synthetic\s+AL network\s+{CNN2D}\s+{gamma}\s+{folds}/{folds}\s+"
                         rf"{re.escape(fmt([r['test_accuracy'] for r in recs]))}", table), gamma
    assert re.search(rf"synthetic\s+AL network\s+TDNN.*\s0/{folds}\s+missing", table)
    assert re.search(rf"emodb\s+AL network\s+{CNN2D}\s+3.33\s+0/5\s+missing", table)
    assert "ravdess" not in table
    assert count_outputs(nb, "sns.pointplot(", "image/png") == 1
    # the confusion matrix of the setting with the best validation accuracy over every fold
    chosen = re.search(r"chosen on validation: 2dcnn_bigru, depth 1, gamma (.+?) "
                       r"\(validation ([\d.]+) %, test ([\d.]+) %\)", cell_text(nb, "best_setting_on_validation("))
    gamma, val, test = chosen.groups()
    val_means = {g: 100 * np.mean([r["val_accuracy"] for r in recs]) for g, recs in settings.items()}
    assert float(val) == pytest.approx(val_means[gamma], abs=0.05)
    assert float(val) == pytest.approx(max(val_means.values()), abs=0.05)
    assert float(test) == pytest.approx(100 * np.mean([r["test_accuracy"] for r in settings[gamma]]), abs=0.05)
    assert count_outputs(nb, "best_setting_on_validation(", "image/png") == 1


# --------------------------------------------------------------------------------------------------
# 07: the recipe study, from hand-made study records (the study itself runs on Emo-DB)


def test_07_shows_the_decisions_of_the_records_it_is_given(tmp_path):
    from sierlib.recipe import STAGES, stage_configs
    from sierlib.records import write_record

    runs_dir = tmp_path / "study"
    val = {"padded": 0.50, "masked": 0.60}
    for lengths, score in val.items():
        for c in stage_configs(STAGES[0], {}, {"lengths": lengths}):
            per_speaker = {"a": score + 0.01 * c.fold, "b": score + 0.01 * c.fold}
            write_record({"status": "finished", "name": c.name, "config": c.to_dict(),
                          "n_utterances": {"val_by_speaker": {"a": 10, "b": 10}},
                          "speakers": {"val": [f"s{(c.fold + 1) % 5}"], "test": [f"s{c.fold}"]},
                          "curves": [{"epoch": 1, "val_emotion_accuracy": score,
                                      "val_speaker_emotion_accuracy": per_speaker}],
                          "selections": {m: {"val_accuracy": score + (0.05 if m == "ema" else 0), "test_accuracy": 0.5,
                                             "test_uar": 0.5} for m in ("best_val", "swa", "ema")}}, runs_dir)
    # one RAVDESS run of the recipe the two stages reach (the recipe is never decided on RAVDESS)
    from sierlib.recipe import recipe_config

    c = recipe_config({"lengths": "masked"}, corpus="ravdess", n_cnn_layers=1, gamma=None, fold=0, seed=0)
    confusion = (np.eye(8, dtype=int) * 10).tolist()  # every test utterance right: recall 100 % for each emotion
    write_record({"status": "finished", "name": c.name, "config": c.to_dict(),
                  "curves": [{"epoch": 1, "lambda": 0.0, "val_emotion_accuracy": 0.5}],
                  "selections": {m: {"val_accuracy": 0.6, "test_accuracy": 0.7 if m == "ema" else 0.55, "test_uar": 0.65,
                                     "test_confusion": confusion} for m in ("best_val", "swa", "ema")}}, runs_dir)
    # and one with AL, which the "How AL trains" cell draws against it and compares emotion by emotion
    c = recipe_config({"lengths": "masked"}, corpus="ravdess", n_cnn_layers=1, gamma=2.5, fold=0, seed=0)
    confusion = (np.eye(8, dtype=int) * 10).tolist()
    confusion[0][0], confusion[0][1] = 5, 5  # anger: half taken for calm
    write_record({"status": "finished", "name": c.name, "config": c.to_dict(),
                  "curves": [{"epoch": e, "lambda": 0.5, "val_emotion_accuracy": 0.4, "train_speaker_accuracy": 0.2}
                             for e in (1, 2)],
                  "selections": {m: {"val_accuracy": 0.5, "test_accuracy": 0.5, "test_uar": 0.5,
                                     "test_confusion": confusion} for m in ("best_val", "swa", "ema")}}, runs_dir)
    nb = execute("07_recipe.ipynb", tmp_path, runs_dir=str(runs_dir))
    head = cell_text(nb, "found = study(")
    assert f"2 of {len(STAGES)} stages decided" in head
    assert "{'lengths': 'masked', 'selection': 'ema'}" in head and "not decided yet: schedule" in head
    table = cell_text(nb, "found.decisions[cols].round(2) if")
    assert re.search(r"1\s+lengths\s+1\s+masked\s+15\s+62\.0\s.*True", table)
    assert re.search(r"2\s+selection\s+1\s+EMA 0.99\s+15\s+65\.0\s.*True", table)
    assert count_outputs(nb, "plot_recipe_stages(", "image/png") == 1
    # masked wins on every fold: each held-out decision agrees
    check = cell_text(nb, "check = held_out_check(")
    assert re.search(r"0\s+s0\s+0 1 2 3\s+2\s+True", check) and check.count("True") == 5
    # the recipe so far (masked, EMA) at 1 block without AL is the study's last stage's runs, read with
    # EMA's test numbers; no AL cell has been trained with it
    # (one row per recipe held: after stage 1 read at the best epoch, after stage 2 with EMA)
    comparison = cell_text(nb, "comparison = by_recipe()")
    rows = re.findall(r"^\d+\s+(\d)\s+2dcnn_bigru\s+1\s+without AL\s+67\.3 ± 6\.5\s+\d+\s+\S+ ± \S+\s+\S+ ± \S+\s+15\s+50\.0 ± 0\.0",
                      comparison, re.M)
    assert rows == ["1", "2"]
    assert "3.33" not in comparison and "no offline runs yet" in cell_text(nb, "offline = by_recipe(")
    assert "no AL cell run with the recipe yet" in cell_text(nb, "chosen = al_chosen_on_validation(")
    al_cell = cell_text(nb, "curves = recipe_curves(")
    assert al_cell.count("no AL run to compare with yet") == 1  # Emo-DB; RAVDESS has an AL run
    assert "ravdess: recall by emotion (%), the test confusions of the 1 runs every γ has" in al_cell
    assert re.search(r"^anger\s+100\.0\s+50\.0\s+10\s*$", al_cell, re.M)
    assert re.search(r"^calm\s+100\.0\s+100\.0\s+10\s*$", al_cell, re.M)
    ravdess = cell_text(nb, 'ravdess = by_recipe("ravdess")')
    assert re.search(r"^1\s+70\.0\s+50\.0\s*$", ravdess, re.M), ravdess  # the Table-1 grid: 1 block, without AL, γ 2.5
    # γ chosen on validation (the only one run), 20 points below without AL, both read with EMA
    assert re.search(r"^0\s+2dcnn_bigru\s+1\s+2\.5\s+2\.5\s+50\.0\s+50\.0\s+60\.0\s+70\.0\s+1\.0\s+-20\.0\s",
                     ravdess, re.M)
    assert re.search(r"^\d+\s+2\s+2dcnn_bigru\s+1\s+without AL\s+56\.3 ± 8\.1\s+12\s+.*\s1\s+70\.0\s+65\.0\s", ravdess, re.M)


# --------------------------------------------------------------------------------------------------
# 08: the adversary study, from hand-made probe runs (the study itself runs on the real corpora)


def test_08_shows_the_tradeoff_and_verdict_of_the_probe_runs_it_is_given(tmp_path):
    from sierlib.records import write_record

    runs_dir = tmp_path / "probes"
    # 4 RAVDESS folds x 2 seeds; λ×3 takes the held-out speaker probe from 90 % to 40 % (margin over
    # chance 85 -> 35: more than half removed) and costs 5 points of emotion on every fold
    for fold in range(4):
        for seed in (0, 1):
            for lam, acc, probe in ((0.0, 0.60, 0.90), (3.0, 0.55, 0.40)):
                config = RunConfig(corpus="ravdess", gamma=2.5, lambda_max=lam, speaker_holdout=0.2, fold=fold,
                                   seed=seed)
                metrics = {"test_accuracy": acc, "test_uar": acc, "val_accuracy": acc + 0.01 * seed}
                info = {"speaker_linear_probe": probe, "speaker_mlp_probe": probe, "speaker_head": probe,
                        "unseen_speaker_eer": 0.40, "emotion_linear_probe": 0.70, "speaker_chance": 0.05,
                        "emotion_chance": 0.125}
                write_record({"status": "finished", "name": config.name, "config": config.to_dict(), **metrics,
                              "speakers": {"train": [], "val": [f"s{(fold + 1) % 4}"], "test": [f"s{fold}"]},
                              "selections": {"best_val": dict(metrics), "swa": dict(metrics)},
                              "curves": [{"epoch": e, "lambda": lam * e / 2, "holdout_speaker_accuracy": probe,
                                          "train_speaker_accuracy": probe} for e in (1, 2)],
                              "speaker_information": info}, runs_dir)
    nb = execute("08_adversary.ipynb", tmp_path, runs_dir=str(runs_dir), cross_dir=str(tmp_path / "no-cross"))
    counts = cell_text(nb, "rows = probe_rows(runs_dir)")
    assert re.search(r"ravdess\s+1\s+2\.5\s+λ×3\s+8\s+4\s+2\n\s+control\s+8\s+4\s+2\n", counts), counts
    table = cell_text(nb, "table = tradeoff_table(rows)")
    assert re.search(r"λ×3\s+8\s+55\.0 ± 0\.0\s+40\.0 ± 0\.0", table), table
    assert re.search(r"\s-5\.0\s", table) and re.search(r"\s-50\.0\s", table)  # paired against the control
    assert count_outputs(nb, "plot_tradeoff(table)", "image/png") == 1
    summary = "".join(o.get("data", {}).get("text/markdown", "") for o in code_cell(nb, "adversary_summary(").outputs)
    assert summary == "No paper-adversary probe runs are paired with a control yet.\n"  # λ×3 only here
    assert count_outputs(nb, "plot_speaker_head_curves(curves)", "image/png") == 1
    assert "no cross-corpus runs yet" in cell_text(nb, "cross = cross_rows(cross_dir)")
    text = cell_text(nb, "print(verdict(table))")
    assert "capacity control (lambda_max 0) speaker probe 90.0 %" in text
    assert "removes most speaker information" in text
