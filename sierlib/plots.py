"""Figures shared by the notebooks (matplotlib/seaborn); each returns its Figure."""
from __future__ import annotations

import itertools
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .config import ADVERSARY_FIELDS, DEFAULTS
from .model import adversarial_weight


def plot_lambda_schedule(gammas=(1.25, 2.5, 3.33), ax=None):
    """lambda(p) = 2 / (1 + exp(-gamma p)) - 1 over the training progress p."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    p = np.linspace(0, 1, 201)
    for g in gammas:
        ax.plot(p, [adversarial_weight(x, g) for x in p], label=f"γ = {g}")
    ax.set(xlabel="training progress p", ylabel="λ(p)", ylim=(0, 1), title="Adversarial weight schedule")
    ax.legend()
    return ax.figure


def plot_curves(record: dict):
    """Learning curves of one run: emotion loss and accuracy (train, validation), the speaker
    classifier's loss and accuracy on the training speakers, and lambda."""
    c = pd.DataFrame(record["curves"])
    al = "train_speaker_loss" in c
    fig, axes = plt.subplots(1, 4 if al else 2, figsize=(15 if al else 8, 3.2))
    axes[0].plot(c.epoch, c.train_emotion_loss, label="train")
    axes[0].plot(c.epoch, c.val_emotion_loss, label="validation")
    axes[0].set(title="emotion loss", xlabel="epoch")
    axes[1].plot(c.epoch, c.train_emotion_accuracy, label="train")
    axes[1].plot(c.epoch, c.val_emotion_accuracy, label="validation")
    axes[1].axvline(record["best_epoch"], color="grey", ls=":", label="selected")
    axes[1].set(title="emotion accuracy", xlabel="epoch", ylim=(0, 1))
    for ax in axes[:2]:
        ax.legend()
    if al:
        axes[2].plot(c.epoch, c.train_speaker_loss, color="C3", label="loss")
        ax2 = axes[2].twinx()
        ax2.plot(c.epoch, c.train_speaker_accuracy, color="C4", label="accuracy")
        ax2.set_ylim(0, 1)
        axes[2].set(title="speaker classifier (training speakers)", xlabel="epoch")
        axes[2].legend(loc="upper left")
        ax2.legend(loc="upper right")
        axes[3].plot(c.epoch, c["lambda"], color="k")
        axes[3].set(title="λ at the end of each epoch", xlabel="epoch", ylim=(0, 1))
    fig.tight_layout()
    return fig


def plot_al_curves(curves: pd.DataFrame, title: str = ""):
    """Validation emotion accuracy per epoch of AL against without AL (mean over runs with a 95 %
    band, :func:`sierlib.recipe_tables.recipe_curves`), and the AL runs' speaker accuracy on the
    training speakers: where, in training, the adversary costs or gains emotion accuracy."""
    labels = list(dict.fromkeys(curves.gamma))  # one colour per gamma in both panels
    palette = dict(zip(labels, sns.color_palette(n_colors=len(labels))))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    sns.lineplot(data=curves, x="epoch", y="val_emotion_accuracy", hue="gamma", palette=palette, ax=axes[0])
    axes[0].set(title=f"{title} validation emotion accuracy (%)".strip(), ylabel="%")
    al = curves.dropna(subset=["train_speaker_accuracy"])
    if len(al):
        sns.lineplot(data=al, x="epoch", y="train_speaker_accuracy", hue="gamma", palette=palette, ax=axes[1])
    axes[1].set(title="speaker accuracy, training speakers (AL)", ylabel="%")
    fig.tight_layout()
    return fig


def plot_confusion(record: dict, ax=None, normalise: bool = True):
    """Test confusion matrix (rows: true emotion), as row-normalised recall by default."""
    cm = np.array(record["test_confusion"], dtype=float)
    if normalise:
        cm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.5))
    sns.heatmap(cm, annot=True, fmt=".2f" if normalise else ".0f", cmap="Blues", vmin=0,
                vmax=1 if normalise else None, xticklabels=record["emotions"], yticklabels=record["emotions"],
                ax=ax, cbar=False)
    ax.set(xlabel="predicted", ylabel="true", title="test confusion (recall per row)" if normalise else "test confusion")
    return ax.figure


def metrics_table(record: dict) -> pd.DataFrame:
    """The run's headline numbers as a one-column table (percentages rounded to 0.1)."""
    pct = lambda v: None if v is None else round(100 * v, 1)  # noqa: E731
    rows = {
        "test accuracy (WA) %": pct(record["test_accuracy"]),
        "test UAR %": pct(record["test_uar"]),
        "test macro F1 %": pct(record["test_macro_f1"]),
        "validation accuracy % (selection)": pct(record["val_accuracy"]),
        "selected epoch": record["best_epoch"],
        "speaker accuracy on training speakers %, end": pct(record["train_speaker_accuracy_final"]),
        "speaker accuracy on training speakers %, selected": pct(record["train_speaker_accuracy_best"]),
        "test speakers": ", ".join(record["speakers"]["test"]),
        "wall time (s)": round(record["wall_time_s"]),
        "device": record["device"],
    }
    return pd.DataFrame({"value": pd.Series(rows, dtype=object)})


def plot_recipe_stages(scores: pd.DataFrame, decisions: pd.DataFrame):
    """One panel per decided stage of the recipe study (:func:`sierlib.recipe.study`): each
    option's validation score of every run (grey lines join the runs of one fold and seed), its
    mean ± standard error, and the chosen option in colour."""
    stages = list(dict.fromkeys(zip(scores.stage, scores.factor)))
    ncols = min(5, len(stages))  # ten stages in two rows of five, not one strip of ten
    nrows = -(-len(stages) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 4.0 * nrows), squeeze=False, sharey=True)
    for ax in axes.flat[len(stages):]:
        ax.remove()
    for ax, (stage, factor) in zip(axes.flat, stages):
        part = scores[scores.stage == stage]
        d = decisions[decisions.stage == stage]
        options = list(d.option)
        # a stage of both corpora: Emo-DB's fold k and RAVDESS's fold k are different runs
        index = (["corpus"] if "corpus" in part else []) + ["n_cnn_layers", "fold", "seed"]
        wide = part.pivot_table(index=index, columns="option", values="val_score")[options]
        x = np.arange(len(options))
        for _, row in wide.iterrows():
            ax.plot(x, row.to_numpy(), color="0.8", lw=0.7, zorder=1)
        for i, r in enumerate(d.itertuples()):
            colour = "C3" if r.chosen else "C0"
            ax.errorbar(i, r.val_mean, yerr=r.val_sem, fmt="o", color=colour, ms=7, capsize=4, zorder=3)
        ax.set_xticks(x, [textwrap.fill(o, 18) for o in options], rotation=30, ha="right", fontsize=8)
        ax.set_title(f"{stage}. {factor}", fontsize=10)
    for row in axes:
        row[0].set_ylabel("validation score, %")
    fig.tight_layout()
    return fig


def _panel_grid(n: int, width: float, height: float, ncols: int = 4):
    """``n`` panels in rows of at most ``ncols``, as a flat list; the spare panels of the last row removed."""
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    axes = list(axes.flat)
    for ax in axes[n:]:
        ax.remove()
    return fig, axes[:n]


def plot_tradeoff(table: pd.DataFrame):
    """Emotion test accuracy against the held-out linear speaker probe, one point per adversary
    setting (:func:`sierlib.adversary.tradeoff_table`), one panel per corpus and depth: one line
    per kind of head (the paper's; a warm-up, a faster, a more often updated or a wider one),
    from the capacity control through growing ``lambda_max``. Cells with one setting only (the
    control at other depths) are left to :func:`plot_speaker_information_by_depth`."""
    panels = [(key, part) for key, part in table.groupby(["corpus", "n_cnn_layers", "gamma"], sort=False)
              if len(part) > 1]
    fig, axes = _panel_grid(len(panels), 5.5, 4.2)
    head_knobs = [k for k in ADVERSARY_FIELDS if k != "lambda_max"]  # what makes a kind of head
    pushed = table[table.lambda_max > 0].fillna({"speaker_fc_hidden": 0})
    paper_head = tuple(DEFAULTS[k] if DEFAULTS[k] is not None else 0 for k in head_knobs)
    kinds = sorted(set(map(tuple, pushed[head_knobs].to_numpy().tolist())), key=lambda k: (k != paper_head, k))
    palette = sns.color_palette("tab10")
    colour_of = {kind: palette[i % len(palette)] for i, kind in enumerate(kinds)}  # one colour per kind, every panel
    for ax, ((corpus, depth, gamma), part) in zip(axes, panels):
        control = part[part.lambda_max == 0]
        for kind, points in pushed[pushed.index.isin(part.index)].groupby(head_knobs, sort=True):
            paper, colour = kind == paper_head, colour_of[kind]
            # the control has the paper's head; every line starts there, where no head pushes
            points = pd.concat([control, points.sort_values("lambda_max")])
            label = ("paper's head" if paper else points.adversary.iloc[-1].split(", ", 1)[1]) + ", λ scaled"
            x, y = points.speaker_linear_probe_mean, points.test_accuracy_mean
            xerr = [float(s.split("±")[1]) if "±" in s else 0 for s in points.speaker_linear_probe]
            yerr = [float(s.split("±")[1]) if "±" in s else 0 for s in points.test_accuracy]
            ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="-o" if paper else "--s", color=colour, ecolor="0.8",
                        capsize=3, label=label)
            first = len(control)  # the control is annotated once, below
            for xi, yi, name in zip(x.iloc[first:], y.iloc[first:], points.adversary.iloc[first:]):
                ax.annotate(name.split(",")[0], (xi, yi), textcoords="offset points", xytext=(5, 5), fontsize=7,
                            color=colour)
        if len(control):
            ax.annotate("control", (control.speaker_linear_probe_mean.iloc[0], control.test_accuracy_mean.iloc[0]),
                        textcoords="offset points", xytext=(-5, 5), ha="right", fontsize=7)
        ax.axvline(part.speaker_chance.iloc[0], ls=":", color="0.4", label="speaker chance")
        ax.set(title=f"{corpus}, {depth} block(s), γ {gamma}", xlabel="held-out speaker identification (linear probe, %)",
               ylabel="emotion accuracy, test speakers (%)")
        ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    return fig


def plot_speaker_information_by_depth(table: pd.DataFrame, settings=("control", "λ×1")):
    """Held-out speaker identification (linear probe) and emotion test accuracy against the CNN
    depth, one line per adversary setting of ``settings`` (the capacity control, the paper's
    adversary), one row of two panels per corpus (:func:`sierlib.adversary.tradeoff_table`). A
    setting trained at several γ gets a line per γ; a control lent to another γ is drawn once; each
    line has one colour and marker on every row, the control first."""
    own = table[table.control_gamma.fillna("") == ""] if "control_gamma" in table else table
    own = own[own.adversary.isin(settings)]
    corpora = list(dict.fromkeys(own.corpus))
    fig, axes = plt.subplots(len(corpora), 2, figsize=(10, 3.3 * len(corpora)), squeeze=False)
    several = own.groupby(["corpus", "adversary"]).gamma.nunique() > 1
    own = own.assign(label=[f"{a}, γ {g}" if several[(c, a)] else a for c, a, g in zip(own.corpus, own.adversary, own.gamma)])
    labels = sorted(set(own.label), key=lambda label: (not label.startswith("control"), label))
    style = {label: (colour, marker) for label, colour, marker in  # one style per setting, on every row
             zip(labels, itertools.cycle(sns.color_palette("tab10")), itertools.cycle("os^vD<>"))}
    for row, corpus in zip(axes, corpora):
        part = own[own.corpus == corpus]
        for label in [label for label in labels if label in set(part.label)]:
            # a depth without runs breaks the line rather than being bridged
            line = part[part.label == label].set_index("n_cnn_layers").sort_index()
            line = line.reindex(range(line.index.min(), line.index.max() + 1))
            colour, marker = style[label]
            row[0].plot(line.index, line.speaker_linear_probe_mean, marker=marker, color=colour, label=label)
            row[1].plot(line.index, line.test_accuracy_mean, marker=marker, color=colour, label=label)
        row[0].axhline(part.speaker_chance.iloc[0], ls=":", color="0.4", label="speaker chance")
        row[0].set(title=f"{corpus}: speaker information", xlabel="CNN blocks",
                   ylabel="held-out speaker identification (%)", xticks=[1, 2, 3, 4])
        row[1].set(title=f"{corpus}: emotion", xlabel="CNN blocks", ylabel="emotion accuracy, test speakers (%)",
                   xticks=[1, 2, 3, 4])
        row[0].legend(fontsize=8)
        row[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_speaker_head_curves(curves: pd.DataFrame):
    """The speaker head's held-out accuracy after each epoch, mean over runs, one line per
    adversary setting, one panel per corpus (:func:`sierlib.adversary.adversary_curves`)."""
    panels = list(curves.groupby(["corpus", "n_cnn_layers", "gamma"], sort=False))
    fig, axes = _panel_grid(len(panels), 5.5, 3.8)
    for ax, ((corpus, depth, gamma), part) in zip(axes, panels):
        mean = part.groupby(["adversary", "epoch"]).holdout_speaker_accuracy.mean().mul(100).reset_index()
        for name, line in mean.groupby("adversary", sort=False):
            ax.plot(line.epoch, line.holdout_speaker_accuracy, label=name)
        ax.set(title=f"{corpus}, {depth} block(s), γ {gamma}", xlabel="epoch",
               ylabel="speaker head, held-out utterances (%)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_probabilities(result: dict, emotions: list[str], title: str = ""):
    """A bar chart of one prediction's class probabilities (:func:`sierlib.predict.predict_recording`),
    the predicted emotion highlighted."""
    probs = [result[f"p_{e}"] for e in emotions]
    fig, ax = plt.subplots(figsize=(6.5, 2.8))
    colours = ["tab:orange" if e == result["emotion"] else "tab:blue" for e in emotions]
    ax.bar(emotions, probs, color=colours)
    ax.set(ylim=(0, 1), ylabel="probability", title=title or f"predicted: {result['emotion']} ({result['probability']:.2f})")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig
