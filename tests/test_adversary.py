"""The speaker adversary's knobs, the probe run and its measurements (sierlib.speakerinfo), and
the adversary study's tables (sierlib.adversary)."""
import numpy as np
import pandas as pd
import pytest
import torch

from sierlib.adversary import (BIASED_HEAD_CURVES, PROBE_COLUMNS, adversary_label, adversary_plan, decide_strength,
                               probe_rows,
                               tradeoff_table, verdict, write_adversary_tables)
from sierlib.config import RunConfig, RunOptions
from sierlib.dataset import holdout_split
from sierlib.experiments import run
from sierlib.model import SIERNet, adversarial_weight
from sierlib.records import write_record
from sierlib.speakerinfo import linear_probe, verification_eer

TINY = dict(n_filters=8, gru_hidden=8, fc_hidden=8, batch_size=8, epochs=3, lr=0.01)


def test_the_adversary_knobs_need_a_speaker_head_and_keep_the_paper_as_default():
    assert RunConfig().lambda_max == 1.0 and RunConfig().speaker_holdout == 0.0
    assert RunConfig(gamma=2.5).name == RunConfig(gamma=2.5, lambda_max=1, adversary_warmup_epochs=0).name
    for knob in ({"lambda_max": 0.0}, {"adversary_warmup_epochs": 2}, {"adversary_lr_scale": 3.0},
                 {"adversary_head_steps": 3}, {"speaker_fc_hidden": 32}):
        with pytest.raises(ValueError, match="need a speaker head"):
            RunConfig(gamma=None, **knob)
        assert RunConfig(gamma=2.5, **knob).name != RunConfig(gamma=2.5).name
    RunConfig(gamma=None, speaker_holdout=0.2)  # a probe of the network without AL
    with pytest.raises(ValueError, match="speaker_holdout must be 0"):
        RunConfig(speaker_holdout=0.9)


def test_lambda_zero_sends_no_speaker_gradient_into_the_encoder():
    """The capacity control: the head learns from the speaker loss, the encoder gets none of it."""
    torch.manual_seed(0)
    net = SIERNet(4, 3, n_mfcc=6, n_filters=4, gru_hidden=4, fc_hidden=8, speaker_hidden=5)
    assert net.speaker_head[0].out_features == 5 and net.emotion_head[0].out_features == 8
    x, s = torch.randn(6, 6, 40), torch.tensor([0, 1, 2, 0, 1, 2])
    for lam, encoder_moves in ((0.0, False), (1.0, True)):
        net.zero_grad()
        _, spk, _ = net(x, lam)
        torch.nn.functional.cross_entropy(spk, s).backward()
        encoder_grad = sum(float(p.grad.abs().sum()) for p in net.encoder.parameters() if p.grad is not None)
        head_grad = sum(float(p.grad.abs().sum()) for p in net.speaker_head.parameters())
        assert head_grad > 0 and (encoder_grad > 0) == encoder_moves


def test_extra_head_steps_train_the_speaker_head_alone():
    """adversary_head_steps = 3: at λ = 0 (no speaker gradient into the encoder) and without
    dropout, the encoder and the emotion head end exactly where one head step leaves them, and
    the speaker head, updated three times as often, fits the training speakers better."""
    from sierlib.train import train_epoch

    g = torch.Generator().manual_seed(0)
    part = {"X": torch.randn(48, 6, 30, generator=g), "y": torch.randint(0, 3, (48,), generator=g),
            "s": torch.arange(48) % 4, "lengths": torch.full((48,), 30)}
    part["X"] += part["s"][:, None, None] * 0.5  # the speakers can be told apart
    nets = {}
    for steps in (1, 3):
        config = RunConfig(gamma=2.5, lambda_max=0.0, dropout=0.0, batch_size=8, lr=0.01, adversary_head_steps=steps)
        torch.manual_seed(0)
        net = SIERNet(3, 4, n_mfcc=6, n_filters=4, gru_hidden=4, fc_hidden=8, dropout=0.0)
        opt = torch.optim.Adam(net.parameters(), lr=config.lr)
        for epoch in range(2):
            train_epoch(net, opt, part, config, torch.Generator().manual_seed(epoch), lambda step: 0.0, 0, "cpu")
        nets[steps] = net
    one, three = nets[1].state_dict(), nets[3].state_dict()
    head = [k for k in one if k.startswith("speaker_head.")]
    assert head and all(torch.equal(one[k], three[k]) for k in one if k not in head)
    assert not all(torch.equal(one[k], three[k]) for k in head)
    losses = {}
    for steps, net in nets.items():
        net.eval()
        with torch.no_grad():
            _, spk, _ = net(part["X"])
        losses[steps] = float(torch.nn.functional.cross_entropy(spk, part["s"]))
    assert losses[3] < losses[1]


def test_extra_head_steps_leave_the_heads_batchnorm_statistics_to_the_joint_step():
    from sierlib.layers import classifier_head
    from sierlib.train import head_steps

    torch.manual_seed(0)
    head = classifier_head(8, 6, 4, 0.0)
    norm = next(m for m in head.modules() if isinstance(m, torch.nn.BatchNorm1d))
    before = (norm.running_mean.clone(), norm.running_var.clone(), [p.detach().clone() for p in head.parameters()])
    opt = torch.optim.Adam(head.parameters(), lr=0.01)
    head.train()
    head_steps(head, opt, torch.randn(16, 8) + 3, torch.arange(16) % 4, torch.nn.functional.cross_entropy, 5)
    assert torch.equal(norm.running_mean, before[0]) and torch.equal(norm.running_var, before[1])
    assert norm.momentum == 0.1  # restored
    assert not all(torch.equal(p, q) for p, q in zip(head.parameters(), before[2]))  # the head did learn


def test_the_holdout_is_stratified_disjoint_and_seeded(synthetic_meta):
    train = synthetic_meta[synthetic_meta.speaker.isin(sorted(synthetic_meta.speaker.unique())[:4])]
    kept, held = holdout_split(train, 0.2, seed=3)
    assert len(kept) + len(held) == len(train) and not set(kept.utterance) & set(held.utterance)
    for (spk, emo), group in train.groupby(["speaker", "emotion"]):
        n_held = ((held.speaker == spk) & (held.emotion == emo)).sum()
        assert n_held == min(int(np.floor(0.2 * len(group) + 0.5)), len(group) - 1)
    again, _ = holdout_split(train, 0.2, seed=3)
    other, _ = holdout_split(train, 0.2, seed=4)
    assert again.utterance.tolist() == kept.utterance.tolist() and other.utterance.tolist() != kept.utterance.tolist()


def test_verification_eer_and_probes_on_known_embeddings():
    rng = np.random.default_rng(0)
    speakers = np.repeat(np.arange(4), 10)
    centres = rng.normal(size=(4, 16)) * 10
    apart = centres[speakers] + rng.normal(size=(40, 16))
    assert verification_eer(apart, speakers) < 0.02
    noise = rng.normal(size=(40, 16))
    assert 0.35 < verification_eer(noise, speakers) < 0.65
    assert linear_probe(apart[::2], speakers[::2], apart[1::2], speakers[1::2]) == 1.0
    with pytest.raises(ValueError, match="same and of different speakers"):
        verification_eer(apart[:3], [0, 0, 0])
    # one loud dimension that carries no speaker (as a pooled std can be) swamps the raw cosine;
    # standardised with statistics of other (training) utterances, the speakers show again
    loud = np.column_stack([200 * rng.normal(size=40) + 100, centres[speakers] / 10 + 0.3 * rng.normal(size=(40, 16))])
    train = np.column_stack([200 * rng.normal(size=200) + 100, rng.normal(size=(200, 16))])
    assert verification_eer(loud, speakers) > 0.4
    assert verification_eer(loud, speakers, train.mean(0), train.std(0)) < 0.1


@pytest.mark.slow
def test_a_probe_run_records_speaker_information_and_the_scaled_lambda(synthetic_root, synthetic_feats,
                                                                        synthetic_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("SIER_CACHE", str(synthetic_cache))
    config = RunConfig(corpus="synthetic", fold=0, gamma=2.5, lambda_max=2.0, adversary_warmup_epochs=1,
                       speaker_holdout=0.25, **TINY)
    rec = run(config, RunOptions(device="cpu", data_root=str(synthetic_root), out_dir=str(tmp_path)), progress=False)
    info = rec["speaker_information"]
    assert set(PROBE_COLUMNS) <= set(info) and all(0 <= info[k] <= 1 for k in PROBE_COLUMNS)
    # every selection's weights are measured; the headline figures are the config's selection's
    assert all(set(PROBE_COLUMNS) <= set(sel["speaker_information"]) for sel in rec["selections"].values())
    assert rec["selections"][config.selection]["speaker_information"] == info
    assert rec["selections"]["swa"]["speaker_information"] != info  # other weights, other figures
    assert info["speaker_chance"] == 1 / len(rec["speakers"]["train"]) and info["eer_chance"] == 0.5
    assert info["n_holdout_utterances"] > 0 and rec["n_utterances"]["train"] == info["n_train_utterances"]
    # lambda is 0 during the warm-up epoch, then lambda_max times the paper's schedule
    lams = [row["lambda"] for row in rec["curves"]]
    assert lams[0] == 0 and 0 < lams[1] < lams[2]
    assert adversarial_weight(1, 2.5) < lams[-1] <= 2 * adversarial_weight(1, 2.5)  # above the unscaled schedule
    assert all("holdout_speaker_accuracy" in row for row in rec["curves"])


def test_the_capacity_control_trains_the_same_network_at_every_gamma(synthetic_root, synthetic_feats,
                                                                     synthetic_cache, tmp_path, monkeypatch):
    """What lets a γ borrow another γ's controls (sierlib.adversary.share_controls): at
    lambda_max 0, λ is 0 throughout, so γ changes nothing the run records."""
    monkeypatch.setenv("SIER_CACHE", str(synthetic_cache))
    recs = [run(RunConfig(corpus="synthetic", fold=0, gamma=gamma, lambda_max=0.0, speaker_holdout=0.25, **TINY),
                RunOptions(device="cpu", data_root=str(synthetic_root), out_dir=str(tmp_path / str(gamma))),
                progress=False) for gamma in (1.25, 3.33)]
    low, high = ({k: rec[k] for k in ("curves", "selections", "speaker_information")} for rec in recs)
    assert low == high and all(row["lambda"] == 0 for row in recs[0]["curves"])


def _record(corpus, lam, fold, seed, acc, probe, val=None, gamma=2.5, **knobs):
    config = RunConfig(corpus=corpus, gamma=gamma, lambda_max=lam, speaker_holdout=0.2, fold=fold, seed=seed, **knobs)
    metrics = {"test_accuracy": acc, "test_uar": acc, "val_accuracy": acc if val is None else val}
    # leave-two-speakers-out roles: fold k's validation speakers are fold k+1's test speakers
    speakers = {"train": [], "val": [f"s{(fold + 1) % 4}"], "test": [f"s{fold}"]}  # 4 folds, cyclic
    return {"status": "finished", "name": config.name, "config": config.to_dict(), **metrics, "speakers": speakers,
            "selections": {"best_val": dict(metrics), "swa": dict(metrics)}, "curves": [],
            "speaker_information": {"speaker_linear_probe": probe, "speaker_mlp_probe": probe, "speaker_head": probe,
                                    "unseen_speaker_eer": 0.4, "emotion_linear_probe": 0.6, "speaker_chance": 0.05,
                                    "emotion_chance": 0.125}}


def test_the_tradeoff_table_pairs_each_strength_with_the_control(tmp_path):
    for fold in range(4):
        for seed in (0, 1):
            write_record(_record("ravdess", 0.0, fold, seed, 0.60, 0.90), tmp_path)
            write_record(_record("ravdess", 4.0, fold, seed, 0.55 - 0.01 * fold, 0.40), tmp_path)
    rows = probe_rows(tmp_path)
    assert len(rows) == 16 and set(rows.lambda_max) == {0.0, 4.0}
    table = tradeoff_table(rows).set_index("lambda_max")
    strong = table.loc[4.0]
    assert strong.runs == 8 and strong.folds_paired == 4
    assert strong.emotion_diff == pytest.approx(100 * (np.mean([0.55 - 0.01 * f for f in range(4)]) - 0.60))
    assert strong.speaker_probe_diff == pytest.approx(-50) and strong.emotion_p == pytest.approx(0.125)
    assert pd.isna(table.loc[0.0].get("emotion_diff", np.nan))
    text = verdict(tradeoff_table(rows))
    assert "capacity control (lambda_max 0) speaker probe 90.0 %" in text and "removes most speaker information" in text


def test_emotion_and_speaker_information_are_read_from_the_same_weights(tmp_path):
    """A row never pairs one selection's emotion accuracy with another's speaker information."""
    older = _record("ravdess", 1.0, 0, 0, 0.50, 0.80)  # measured its best validation epoch's weights only
    older["selections"]["swa"]["test_accuracy"] = 0.60
    newer = _record("ravdess", 1.0, 1, 0, 0.50, 0.80)  # measured every selection's weights
    newer["selections"]["swa"].update(test_accuracy=0.60, speaker_information={
        **newer["speaker_information"], "speaker_linear_probe": 0.30})
    newer["selections"]["best_val"]["speaker_information"] = newer["speaker_information"]
    biased = _record("ravdess", 1.0, 2, 0, 0.50, 0.80, adversary_head_steps=5)
    biased["git_commit"] = BIASED_HEAD_CURVES[0]
    for rec in (older, newer, biased):
        write_record(rec, tmp_path)
    best = probe_rows(tmp_path).set_index("fold")
    assert list(best.test_accuracy) == [0.5] * 3 and list(best.speaker_linear_probe) == [0.8] * 3
    assert set(best.selection) == {"best_val"}
    assert best.speaker_head.loc[0] == 0.8 and pd.isna(best.speaker_head.loc[2])  # its head's statistics are biased
    swa = probe_rows(tmp_path, selection="swa")
    assert list(swa.fold) == [1] and swa.test_accuracy.iloc[0] == 0.6 and swa.speaker_linear_probe.iloc[0] == 0.3


def test_runs_of_two_recipes_are_never_pooled(tmp_path):
    for fold in range(2):
        write_record(_record("ravdess", 0.0, fold, 0, 0.60, 0.90), tmp_path)
        write_record(_record("ravdess", 1.0, fold, 0, 0.55, 0.80, epochs=60), tmp_path)  # another recipe
    rows = probe_rows(tmp_path)
    assert rows.recipe.nunique() == 2
    with pytest.raises(ValueError, match="ravdess 1 block.s. γ 2.5 were trained with different recipes"):
        tradeoff_table(rows)
    with pytest.raises(ValueError, match="different recipes"):
        decide_strength(tmp_path)


def test_the_strength_is_decided_on_validation_with_a_held_out_check(tmp_path):
    """A strength clearly better on validation wins; one within a standard error loses to no push."""
    for fold in range(4):
        for seed in (0, 1):
            write_record(_record("ravdess", 0.0, fold, seed, 0.60, 0.9, val=0.60 + 0.01 * seed), tmp_path)
            write_record(_record("ravdess", 1.0, fold, seed, 0.62, 0.8, val=0.60 + 0.01 * seed + 0.002 * (fold % 2)),
                         tmp_path)
            write_record(_record("ravdess", 3.0, fold, seed, 0.70, 0.5, val=0.70 + 0.01 * fold), tmp_path)
    d = decide_strength(tmp_path)
    full = d[d.check == "all folds"].set_index("option")
    assert full.loc["lambda_max 3", "chosen"] and full.chosen.sum() == 1 and full.loc["lambda_max 3", "n_runs"] == 8
    held = d[d.check != "all folds"]
    assert len(held) == 4 and set(held.option) == {"lambda_max 3"}
    assert "test fold 0 held out (decided on folds 1 2)" in set(held.check)  # not 0, nor 3 (its val = fold 0's test)
    assert held.test_fold_accuracy.round(6).eq(70.0).all() and held.test_fold_accuracy_no_push.round(6).eq(60.0).all()
    for fold in range(2):  # another γ whose λ×3 has 2 folds only: too few to decide on
        write_record(_record("ravdess", 3.0, fold, 0, 0.70, 0.5, val=0.80, gamma=1.25), tmp_path)
    assert set(decide_strength(tmp_path).gamma) == {"2.5"}


def test_a_stronger_head_is_a_setting_of_its_own_paired_with_the_same_control(tmp_path):
    plan = adversary_plan({}, "emodb", 3.33, strengths=(0, 3), seeds=(0,), folds=(0,), adversary_warmup_epochs=5,
                          adversary_lr_scale=10.0)
    assert [(c.lambda_max, c.adversary_warmup_epochs, c.adversary_lr_scale) for c in plan] == [(0, 0, 1), (3, 5, 10)]
    with pytest.raises(ValueError, match="unknown adversary knobs"):
        adversary_plan({}, "emodb", 3.33, head_lr=3)
    assert adversary_label(plan[1].to_dict()) == "λ×3, warm-up 5, head lr ×10" and adversary_label(plan[0].to_dict()) == "control"
    strong = {"adversary_warmup_epochs": 5, "adversary_lr_scale": 10.0}
    for fold in range(4):
        write_record(_record("ravdess", 0.0, fold, 0, 0.60, 0.90, val=0.60), tmp_path)
        write_record(_record("ravdess", 3.0, fold, 0, 0.58, 0.80, val=0.58), tmp_path)
        write_record(_record("ravdess", 3.0, fold, 0, 0.50, 0.30, val=0.80 + 0.01 * fold, **strong), tmp_path)
    table = tradeoff_table(probe_rows(tmp_path)).set_index("adversary")
    assert list(table.index) == ["control", "λ×3", "λ×3, warm-up 5, head lr ×10"]
    assert table.loc["λ×3, warm-up 5, head lr ×10", "speaker_probe_diff"] == pytest.approx(-60)
    assert table.loc["λ×3", "speaker_probe_diff"] == pytest.approx(-10) and table.loc["λ×3", "folds_paired"] == 4
    assert "lambda_max 3, warm-up 5, head lr ×10: speaker probe 30.0 %" in verdict(table.reset_index())
    d = decide_strength(tmp_path)
    full = d[d.check == "all folds"].set_index("option")
    assert list(full.index) == ["no push (capacity control)", "lambda_max 3", "lambda_max 3, warm-up 5, head lr ×10"]
    assert full.loc["lambda_max 3, warm-up 5, head lr ×10", "chosen"] and full.chosen.sum() == 1


def test_the_verdict_sets_the_papers_claim_against_the_confidence_interval(tmp_path):
    for fold in range(6):
        write_record(_record("ravdess", 0.0, fold, 0, 0.60, 0.9), tmp_path)
        write_record(_record("ravdess", 1.0, fold, 0, 0.55 + 0.01 * (fold % 2), 0.8), tmp_path)
    table = tradeoff_table(probe_rows(tmp_path))
    paper_head = table[table.adversary == "λ×1"].iloc[0]
    assert paper_head.emotion_diff == pytest.approx(-4.5) and paper_head.emotion_ci_high < 0 < 4.9
    text = verdict(table)
    assert "The paper's claim at this cell: AL +4.9 over no AL (61.2 against 56.3)" in text
    assert "the claim is outside it" in text


def test_the_depth_plot_draws_each_setting_against_depth(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    from sierlib.plots import plot_speaker_information_by_depth, plot_tradeoff

    for depth in (1, 2):
        for fold in range(2):
            for lam in (0.0, 1.0):
                rec = _record("ravdess", lam, fold, 0, 0.6, 0.9 - 0.3 * (depth - 1))
                config = RunConfig(corpus="ravdess", gamma=2.5, lambda_max=lam, speaker_holdout=0.2, fold=fold,
                                   n_cnn_layers=depth)
                rec.update(name=config.name, config=config.to_dict())
                write_record(rec, tmp_path)
    table = tradeoff_table(probe_rows(tmp_path))
    fig = plot_speaker_information_by_depth(table)
    lines = fig.axes[0].get_lines()
    assert len(fig.axes) == 2 and [list(l.get_xdata()) for l in lines[:2]] == [[1, 2], [1, 2]]
    assert list(lines[0].get_ydata()) == pytest.approx([90, 60])
    assert len(plot_tradeoff(table).axes) == 2  # one panel per cell with more than one setting
    for fold in range(2):  # λ×1 at another γ too: its own line, and the control it borrows is not drawn again
        write_record(_record("ravdess", 1.0, fold, 0, 0.5, 0.5, gamma=1.25), tmp_path)
    table = tradeoff_table(probe_rows(tmp_path))
    labels = [t.get_text() for t in plot_speaker_information_by_depth(table).axes[0].get_legend().get_texts()]
    assert sorted(labels) == ["control", "speaker chance", "λ×1, γ 1.25", "λ×1, γ 2.5"]
    assert len(plot_tradeoff(table).axes) == 3


def test_the_tradeoff_plot_draws_one_line_per_kind_of_head_from_the_control(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    from sierlib.plots import plot_tradeoff

    settings = [(0.0, {}, 0.95), (1.0, {}, 0.90), (3.0, {}, 0.88), (1.0, {"adversary_head_steps": 5}, 0.80),
                (3.0, {"adversary_head_steps": 5}, 0.70)]
    for lam, knobs, probe in settings:
        for fold in range(2):
            write_record(_record("ravdess", lam, fold, 0, 0.6 - 0.1 * lam * (probe < 0.85), probe, **knobs), tmp_path)
    fig = plot_tradeoff(tradeoff_table(probe_rows(tmp_path)))
    ax = fig.axes[0]
    drawn = {text.get_text() for text in ax.get_legend().get_texts()}
    assert drawn == {"paper's head, λ scaled", "5 head steps, λ scaled", "speaker chance"}
    lines = [list(line.get_xdata()) for line in ax.get_lines()  # the data lines, not the error bars' caps
             if len(line.get_xdata()) == 3 and line.get_linestyle() != "None"]
    assert sorted(lines) == sorted([[95, 90, 88], [95, 80, 70]])  # each from the control, λ growing


def test_head_curves_leave_out_the_runs_whose_head_statistics_were_folded_in_k_times(tmp_path):
    from sierlib.adversary import BIASED_HEAD_CURVES, adversary_curves

    curve = [{"epoch": 1, "lambda": 0.5, "holdout_speaker_accuracy": 0.3}]
    for fold, (steps, commit) in enumerate([(1, BIASED_HEAD_CURVES[0]), (5, BIASED_HEAD_CURVES[0]), (5, "abc123")]):
        rec = _record("ravdess", 1.0, fold, 0, 0.5, 0.8, adversary_head_steps=steps)
        write_record({**rec, "curves": curve, "git_commit": commit}, tmp_path)
    curves = adversary_curves(tmp_path)
    assert sorted(curves.fold) == [0, 2]  # k = 5 at the biased commit is left out, k = 1 there is kept


def test_tables_of_a_folder_without_probe_runs_name_the_folder_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no probe runs in .*sier adversary tables --reference"):
        write_adversary_tables(tmp_path / "runs", tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_a_setting_paired_on_too_few_folds_gets_no_verdict(tmp_path):
    for fold in range(2):  # a study stopped after two folds: both differences equal, a CI of width zero
        write_record(_record("ravdess", 0.0, fold, 0, 0.60, 0.9), tmp_path)
        write_record(_record("ravdess", 1.0, fold, 0, 0.55, 0.1), tmp_path)
    text = verdict(tradeoff_table(probe_rows(tmp_path)))
    assert "(fewer than 3 paired folds: no verdict)" in text
    assert "removes most speaker information" not in text.replace("No setting tried removes most", "")
    assert "The paper's claim" not in text


def test_a_gamma_without_controls_of_its_own_borrows_those_of_another_gamma(tmp_path):
    """λ is 0 throughout a capacity control, so the controls at γ 2.5 pair with AL at γ 1.25;
    never a control of another recipe."""
    for fold in range(4):
        write_record(_record("ravdess", 0.0, fold, 0, 0.60, 0.90), tmp_path)
        write_record(_record("ravdess", 1.0, fold, 0, 0.50, 0.70, gamma=1.25), tmp_path)
    rows = probe_rows(tmp_path)
    table = tradeoff_table(rows).set_index(["gamma", "lambda_max"])
    assert set(table.index) == {("2.5", 0.0), ("1.25", 0.0), ("1.25", 1.0)}
    assert table.loc[("1.25", 0.0)].control_gamma == "2.5" and table.loc[("2.5", 0.0)].control_gamma == ""
    paired = table.loc[("1.25", 1.0)]
    assert paired.folds_paired == 4 and paired.emotion_diff == pytest.approx(-10)
    assert "γ 1.25: capacity control (lambda_max 0, trained at γ 2.5" in verdict(tradeoff_table(rows))
    other = tmp_path / "other"
    for fold in range(4):
        write_record(_record("ravdess", 0.0, fold, 0, 0.60, 0.90, epochs=60), other)
        write_record(_record("ravdess", 1.0, fold, 0, 0.50, 0.70, gamma=1.25), other)
    table = tradeoff_table(probe_rows(other))
    assert len(table) == 2 and table.emotion_diff.isna().all()  # another recipe's control lends nothing
    # controls at two γ (seed 0 at 2.5, seed 1 at 3.33) are lent together, one per fold and seed
    both = tmp_path / "both"
    for fold in range(4):
        write_record(_record("ravdess", 0.0, fold, 0, 0.60, 0.90), both)
        write_record(_record("ravdess", 0.0, fold, 1, 0.70, 0.90, gamma=3.33), both)
        for seed in (0, 1):
            write_record(_record("ravdess", 1.0, fold, seed, 0.50, 0.70, gamma=1.25), both)
    paired = tradeoff_table(probe_rows(both)).set_index(["gamma", "lambda_max"])
    assert paired.loc[("1.25", 0.0)].control_gamma == "2.5 3.33" and paired.loc[("1.25", 1.0)].paired_runs == 8
    assert paired.loc[("1.25", 1.0)].emotion_diff == pytest.approx(-15)
    decided = decide_strength(both)
    low = decided[(decided.gamma == "1.25") & (decided.check == "all folds")]
    assert set(low.option) == {"no push (capacity control)", "lambda_max 1"} and set(low.control_gamma) == {"2.5 3.33"}
    assert (low.n_runs == 8).all()


def test_a_run_without_al_is_no_adversary_setting_and_borrows_no_control(tmp_path):
    for fold in range(4):
        write_record(_record("ravdess", 0.0, fold, 0, 0.60, 0.90), tmp_path)
        config = RunConfig(corpus="ravdess", gamma=None, speaker_holdout=0.2, fold=fold)
        rec = _record("ravdess", 0.0, fold, 0, 0.65, 0.95)
        rec.update(name=config.name, config=config.to_dict())
        write_record(rec, tmp_path)
    table = tradeoff_table(probe_rows(tmp_path))
    assert set(zip(table.gamma, table.adversary)) == {("2.5", "control"), ("without AL", "without AL")}
    assert "without AL: capacity control" not in verdict(table)


def test_the_verdict_reads_a_lent_control_back_from_csv(tmp_path):
    for fold in range(4):
        write_record(_record("ravdess", 0.0, fold, 0, 0.60, 0.90, gamma=3.33), tmp_path)
        write_record(_record("ravdess", 1.0, fold, 0, 0.50, 0.70, gamma=1.25), tmp_path)
    tradeoff_table(probe_rows(tmp_path)).to_csv(tmp_path / "table.csv", index=False)
    text = verdict(pd.read_csv(tmp_path / "table.csv", dtype={"gamma": str}))
    assert "γ 1.25: capacity control (lambda_max 0, trained at γ 3.33" in text
    assert "γ 3.33: capacity control (lambda_max 0) speaker" in text
