"""Tables, selection and paired tests built from run records (sierlib.results)."""
import numpy as np
import pandas as pd
import pytest

from sierlib.results import (N_FOLDS, PAPER_TABLE1, al_vs_without, paired_test, select_size_on_validation,
                             seed_averaged_test, seed_spread, summarise, table1, table2)

COLUMNS = ["corpus", "fold", "gamma", "n_cnn_layers", "kernel_size", "n_filters", "gru_hidden", "fc_hidden",
           "dropout", "epochs", "batch_size", "lr", "weight_decay", "seed", "encoder", "test_accuracy", "test_uar",
           "val_accuracy"]


def run(fold, gamma, acc, *, depth=1, seed=0, encoder="2dcnn_bigru", n_filters=64, val=0.5, corpus="emodb"):
    return dict(corpus=corpus, fold=fold, gamma=gamma, n_cnn_layers=depth, kernel_size=5, n_filters=n_filters,
                gru_hidden=128, fc_hidden=64, dropout=0.3, epochs=30, batch_size=16, lr=1e-3, weight_decay=0.0,
                seed=seed, encoder=encoder, test_accuracy=acc, test_uar=acc - 0.05, val_accuracy=val)


def frame(rows):
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["gamma"] = df["gamma"].astype(object).where(df["gamma"].notna(), None)
    return df


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
    chosen = select_size_on_validation(frame(rows), ["n_cnn_layers", "gamma"])
    assert set(chosen.n_filters) == {64} and len(chosen) == 5
    # a size with more folds wins over a better-validating size with fewer
    rows += [run(0, None, 0.90, n_filters=256, val=0.99)]
    assert set(select_size_on_validation(frame(rows), ["n_cnn_layers", "gamma"]).n_filters) == {64}


def test_table1_keeps_missing_cells_missing(tmp_path):
    rows = [run(f, 3.33, 0.6 + 0.01 * f) for f in range(5)] + [run(f, None, 0.55) for f in range(3)]
    rows += [run(f, 3.33, 0.99, seed=1) for f in range(5)]  # other seeds are not Table 1
    frame(rows).to_csv(tmp_path / "runs_emodb.csv", index=False)
    t = table1(corpora=("emodb", "ravdess"), folder=tmp_path)
    assert len(t) == len(PAPER_TABLE1["emodb"]) + len(PAPER_TABLE1["ravdess"])
    cell = t[(t.corpus == "emodb") & (t.n_cnn_layers == 1) & (t.gamma == 3.33)].iloc[0]
    assert cell.folds == 5 and cell.acc_mean == pytest.approx(62.0) and cell.paper_acc_mean == 73.6
    base = t[(t.corpus == "emodb") & (t.n_cnn_layers == 1) & (t.gamma == "without AL")].iloc[0]
    assert base.folds == 3 and base.of_folds == N_FOLDS["emodb"]
    empty = t[(t.corpus == "emodb") & (t.n_cnn_layers == 2)]
    assert (empty.folds == 0).all() and empty.acc_mean.isna().all()
    assert (t[t.corpus == "ravdess"].folds == 0).all()  # no runs_ravdess.csv at all


def test_table2_rows_per_encoder_with_and_without_al(tmp_path):
    rows = [run(f, 3.33, 0.5, encoder="tdnn_bilstm") for f in range(5)] + [run(0, None, 0.4, encoder="1dcnn_gru")]
    frame(rows).to_csv(tmp_path / "runs_emodb.csv", index=False)
    t = table2(corpora=("emodb",), folder=tmp_path)
    assert len(t) == 6  # 3 encoders x (AL, without AL)
    tdnn = t[t.encoder.str.startswith("TDNN")].set_index("gamma")
    assert tdnn.loc[3.33, "folds"] == 5 and tdnn.loc[3.33, "acc_mean"] == pytest.approx(50.0)
    assert tdnn.loc[3.33, "paper_acc_mean"] == 61.4 and np.isnan(tdnn.loc["without AL", "paper_acc_mean"])
    assert tdnn.loc["without AL", "folds"] == 0
    gru = t[t.encoder.str.startswith("1D")].set_index("gamma")
    assert gru.loc["without AL", "folds"] == 1 and gru.loc[3.33, "folds"] == 0


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
