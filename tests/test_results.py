"""Tables, selection and paired tests built from run records (sierlib.results)."""
import numpy as np
import pandas as pd
import pytest

from sierlib.config import RunConfig
from sierlib.corpora import corpus_info
from sierlib.results import (PAPER_TABLE1, al_vs_without, collect_runs, paired_test, seed_averaged_test, seed_spread,
                             select_on_validation, summarise, table1, table2)
from sierlib.stats import records_frame


def run(fold, gamma, acc, *, depth=1, seed=0, encoder="2dcnn_bigru", n_filters=64, val=0.5, corpus="emodb", **kw):
    sizes = {"n_cnn_layers": depth, "n_filters": n_filters} if encoder == "2dcnn_bigru" else {}
    config = RunConfig(corpus=corpus, fold=fold, gamma=gamma, seed=seed, encoder=encoder, **sizes, **kw)
    return {"status": "finished", "name": config.name, "config": config.to_dict(), "test_accuracy": acc,
            "test_uar": acc - 0.05, "val_accuracy": val}


def frame(rows):
    return records_frame(rows)


def test_summarise_is_mean_and_sample_std_over_folds_in_percent():
    s = summarise(frame([run(0, None, 0.5), run(1, None, 0.6), run(2, None, 0.7)]), ["n_cnn_layers"]).iloc[0]
    assert s.folds == 3
    assert s.acc_mean == pytest.approx(60.0) and s.acc_std == pytest.approx(10.0)  # ddof=1
    assert s.uar_mean == pytest.approx(55.0)
    one = summarise(frame([run(0, None, 0.5)]), ["n_cnn_layers"]).iloc[0]
    assert one.acc_mean == pytest.approx(50.0) and np.isnan(one.acc_std)


def test_paired_test_floor_with_five_folds_and_sign():
    better = paired_test(np.array([61.0, 62, 63, 64, 65]), np.array([60.0] * 5))
    assert better["wins"] == 5 and better["losses"] == 0 and better["mean_diff"] == pytest.approx(3.0)
    # all five folds the same way: the smallest two-sided p five paired folds allow
    assert better["permutation_p"] == pytest.approx(2 / 32) and better["wilcoxon_p"] == pytest.approx(0.0625)
    mixed = paired_test(np.array([61.0, 59, 61, 59]), np.array([60.0] * 4))
    assert mixed["mean_diff"] == pytest.approx(0.0) and mixed["permutation_p"] == pytest.approx(1.0)
    assert np.isnan(paired_test(np.array([1.0]), np.array([0.0]))["wilcoxon_p"])


def test_size_is_chosen_on_validation_never_on_test():
    # size c128 is better on test but worse on validation: the table must use c64
    rows = [run(f, None, 0.80, n_filters=128, val=0.40) for f in range(5)]
    rows += [run(f, None, 0.60, n_filters=64, val=0.70) for f in range(5)]
    chosen = select_on_validation(frame(rows), ["n_cnn_layers", "gamma"])
    assert set(chosen.n_filters) == {64} and len(chosen) == 5
    # a size with more folds wins over a better-validating size with fewer
    rows += [run(0, None, 0.90, n_filters=256, val=0.99)]
    assert set(select_on_validation(frame(rows), ["n_cnn_layers", "gamma"]).n_filters) == {64}


def test_table1_keeps_missing_cells_missing(tmp_path):
    rows = [run(f, 3.33, 0.6 + 0.01 * f) for f in range(5)] + [run(f, None, 0.55) for f in range(3)]
    rows += [run(f, 3.33, 0.99, seed=1) for f in range(5)]  # other seeds are not Table 1
    t = table1({"emodb": frame(rows), "ravdess": frame([])})
    assert len(t) == len(PAPER_TABLE1["emodb"]) + len(PAPER_TABLE1["ravdess"])
    cell = t[(t.corpus == "emodb") & (t.n_cnn_layers == 1) & (t.gamma == "3.33")].iloc[0]
    assert cell.folds == 5 and cell.acc_mean == pytest.approx(62.0) and cell.paper_acc_mean == 73.6
    base = t[(t.corpus == "emodb") & (t.n_cnn_layers == 1) & (t.gamma == "without AL")].iloc[0]
    assert base.folds == 3 and base.of_folds == corpus_info("emodb").n_folds
    empty = t[(t.corpus == "emodb") & (t.n_cnn_layers == 2)]
    assert (empty.folds == 0).all() and empty.acc_mean.isna().all()
    assert (t[t.corpus == "ravdess"].folds == 0).all()  # no RAVDESS runs at all


def test_table2_rows_per_encoder_with_and_without_al(tmp_path):
    rows = [run(f, 3.33, 0.5, encoder="tdnn_bilstm") for f in range(5)] + [run(0, None, 0.4, encoder="1dcnn_gru")]
    t = table2({"emodb": frame(rows)})
    assert len(t) == 6  # 3 encoders x (AL, without AL)
    tdnn = t[t.encoder.str.startswith("TDNN")].set_index("gamma")
    assert tdnn.loc["3.33", "folds"] == 5 and tdnn.loc["3.33", "acc_mean"] == pytest.approx(50.0)
    assert tdnn.loc["3.33", "paper_acc_mean"] == 61.4 and np.isnan(tdnn.loc["without AL", "paper_acc_mean"])
    assert tdnn.loc["without AL", "folds"] == 0
    gru = t[t.encoder.str.startswith("1D")].set_index("gamma")
    assert gru.loc["without AL", "folds"] == 1 and gru.loc["3.33", "folds"] == 0


def test_al_vs_without_pairs_only_shared_folds():
    rows = [run(f, 2.5, 0.6) for f in range(5)] + [run(f, None, 0.5) for f in (0, 2, 4)]
    t = al_vs_without(frame(rows), "emodb")
    assert len(t) == 1 and t.iloc[0].n_folds == 3 and t.iloc[0].mean_diff == pytest.approx(10.0)


def test_seed_study_averages_seeds_within_each_fold():
    rows = []
    for f in range(5):
        for seed, noise in enumerate([-0.04, 0.0, 0.04]):
            rows.append(run(f, 3.33, 0.62 + noise, seed=seed))
            rows.append(run(f, None, 0.60 - noise, seed=seed))
    rows.append(run(0, 3.33, 0.99, seed=7))  # a seed without its without-AL partner: left out
    df = frame(rows)
    res = seed_averaged_test(df, depth=1, gamma=3.33)
    per_fold = res["per_fold"]
    assert list(per_fold.seeds) == [3] * 5
    assert per_fold["diff"].to_numpy() == pytest.approx([2.0] * 5)
    # noise of -4, 0, +4 points: sample std 4 for both settings; the unpaired seed 7 is not in it
    assert per_fold.al_seed_std.to_numpy() == pytest.approx([4.0] * 5)
    assert per_fold.without_seed_std.to_numpy() == pytest.approx([4.0] * 5)
    assert res["mean_diff"] == pytest.approx(2.0) and res["wins"] == 5 and res["permutation_p"] == pytest.approx(1 / 16)
    spread = seed_spread(df, depth=1, gamma=3.33)
    assert set(spread[spread.setting == "without AL"].folds) == {5}
    assert spread[(spread.seed == 7)].folds.tolist() == [1]


def test_unlike_runs_are_never_paired_or_averaged():
    """A 2-epoch run of fold 1 among 30-epoch runs is another setting: it is neither paired with
    the 30-epoch without-AL runs nor averaged into the AL cell (it once broke 05)."""
    rows = [run(f, 2.5, 0.6) for f in range(5)] + [run(f, None, 0.5) for f in range(5)]
    rows.append(run(1, 2.5, 0.2, epochs=2))
    t = al_vs_without(frame(rows), "emodb")
    main = t[t.n_folds == 5].iloc[0]
    assert main.mean_diff == pytest.approx(10.0)
    assert (t.n_folds == 5).sum() == 1 and len(t) == 1  # the 2-epoch setting has no without-AL partner
    chosen = select_on_validation(frame(rows), ["n_cnn_layers", "gamma"])
    assert set(chosen[chosen.gamma == "2.5"].epochs) == {30}
    res = seed_averaged_test(frame(rows), depth=1, gamma=2.5)
    assert res["n_folds"] == 5 and res["mean_diff"] == pytest.approx(10.0)


def test_regenerated_tables_equal_the_committed_ones(tmp_path):
    """Migrated records give exactly the committed tables (numbers, not just shapes)."""
    from sierlib.paths import RESULTS
    from sierlib.results import build_tables

    t = build_tables()
    for name in ("table1", "table2"):
        committed = pd.read_csv(RESULTS / f"{name}.csv", dtype={"gamma": str})
        ours = t[name].reset_index(drop=True)
        assert list(ours.columns) == list(committed.columns)
        for col in committed.columns:
            if committed[col].dtype.kind == "f":
                np.testing.assert_allclose(ours[col].astype(float), committed[col], atol=1e-9, err_msg=col)
            else:
                assert ours[col].fillna("").astype(str).tolist() == committed[col].fillna("").astype(str).tolist(), col


def test_runs_csv_round_trip(tmp_path):
    rows = [run(f, g, 0.5 + 0.01 * f) for f in range(3) for g in (None, 2.5)]
    from sierlib.records import write_record

    for r in rows:
        write_record({**r, "curves": []}, tmp_path / "runs")
    written = collect_runs("emodb", tmp_path / "runs", tmp_path / "runs_emodb.csv")
    back = pd.read_csv(tmp_path / "runs_emodb.csv", dtype={"gamma": str, "setting": str})
    assert len(back) == len(written) == 6 and set(back.gamma) == {"without AL", "2.5"}
    assert back.setting.nunique() == 2


def test_tables_of_a_corpus_outside_the_paper_and_of_a_corpus_without_runs(tmp_path):
    """05 and 06 on the synthetic corpus: its cells are filled from its records (its fold count
    from a record's speakers), with no paper numbers; a corpus without records is all missing."""
    from sierlib.records import write_record
    from sierlib.results import build_tables, n_folds_of

    speakers = {"train": ["23", "24"], "val": ["25", "26"], "test": ["21", "22"]}  # 6 speakers: 3 folds
    for f, acc in [(0, 0.5), (1, 0.6)]:
        write_record({**run(f, 3.33, acc, corpus="synthetic"), "speakers": speakers}, tmp_path)
    assert n_folds_of("synthetic", tmp_path) == 3 and n_folds_of("synthetic", tmp_path / "none") is None
    t = build_tables(tmp_path, corpora=("emodb", "synthetic"))
    t1 = t["table1_show"]
    assert set(t1.corpus) == {"emodb", "synthetic"} and len(t1) == 2 * len(PAPER_TABLE1["emodb"])
    cell = t1[(t1.corpus == "synthetic") & (t1.n_cnn_layers == 1) & (t1.gamma == "3.33")].iloc[0]
    assert cell.folds == "2/3" and cell.acc_mean == pytest.approx(55.0) and cell.ours == "55.0 ± 7.1"
    assert cell.paper == "" and np.isnan(cell.paper_acc_mean)
    emodb = t1[t1.corpus == "emodb"]
    assert (emodb.ours == "missing").all() and (emodb.folds == "0/5").all() and (emodb.paper != "").all()
    t2 = t["table2_show"]
    assert "ravdess" not in set(t2.corpus)  # nor its openSMILE rows
    al = t2[(t2.corpus == "synthetic") & (t2.encoder.str.startswith("2D")) & (t2.gamma == "3.33")].iloc[0]
    assert al.folds == "2/3" and al.ours == "55.0 ± 7.1" and al.paper == ""
    empty = build_tables(tmp_path / "none", corpora=("synthetic",))
    assert (empty["table1_show"].folds == "0/?").all() and (empty["table2_show"].ours == "missing").all()
