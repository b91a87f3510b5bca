"""The reproduction report, ``papers/reproduction.md``, generated from the committed records and the
tables derived from them (``sier report``). Its tables are the generated ones, included as they
are; every figure in its prose is computed here from the same files. ``tests/test_report.py``
regenerates it and fails when the committed file differs, so the report cannot drift from the
results, and it says nothing about when or by whom a run was made: the records carry device,
time and commit.
"""
from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

import pandas as pd

from .adversary import BIASED_HEAD_CURVES, MIN_VERDICT_FOLDS, probe_rows, tradeoff_table, verdict
from .crosscorpus import DIRECTIONS, cross_rows
from .paper import PAPER_TABLE1
from .paths import ADVERSARY_RUNS, ADVERSARY_TABLES, CROSS_CORPUS_RUNS, CROSS_CORPUS_TABLES, DECISIONS, RECIPE_TABLES, \
    REFERENCE_RUNS, REPO_ROOT, RESULTS, STUDY_RUNS, write_text_atomic
from .recipe import study
from .recipe_tables import TRAIN_TABLED_CELLS, al_chosen_on_validation, recipe_comparison, tabled_recipe
from .records import iter_records
from .registry import CORPORA, PAPER_CORPORA, PRETTY
from .stats import markdown_table

REPORT = REPO_ROOT / "papers" / "reproduction.md"

PROTOCOL = """\
- **Data**: Emo-DB (535 utterances, 10 speakers, 7 emotions) and RAVDESS audio-only speech (1440
  utterances, 24 actors, 8 emotions), every file checked against the published sha256 lists.
- **Protocol** (paper §4.1): leave-two-speakers-out, gender-balanced folds: Emo-DB 5 folds of
  6/2/2 training/validation/test speakers, RAVDESS 12 folds of 20/2/2 (`results/folds/`). Fold k
  tests on the k-th male and k-th female speaker and validates on the next pair.
- **Features**: mono at 22 050 Hz, 80 Hz high-pass, silence trimmed at 30 dB below the peak,
  zero-padding to the longest recording of the corpus, 20 MFCCs (n_fft 2048, hop 512, Hann);
  per-coefficient standardisation with statistics of the fold's training speakers only.
- **Network** (paper §3): Conv2d k×k stride 2 → BN → dropout → ELU → max-pool 2×2, ×depth; biGRU;
  mean ‖ std pooling; emotion and speaker heads of two FC layers (BN, dropout, ReLU); gradient
  reversal with λ(p) = 2/(1+e^(−γp)) − 1, p over all training steps.
- **Settings the paper leaves open** (our choices): kernel 5×5, 64 filters, GRU 128, FC 64 (the
  cheapest point of the §4.2 grid), dropout 0.3, Adam lr 1e-3, batch 16, 30 epochs.
- **Selection**: the epoch with the best validation emotion accuracy (the recipe: the mean of the
  last epochs, chosen on validation); the test speakers are evaluated once. Nothing (epoch, size,
  γ, training choice) is chosen on test speakers.
- **Statistics**: mean ± std over folds (and seeds, where there are several); AL against the same
  network without AL paired by fold (seeds of a fold averaged first), exact sign-flip p-values.
"""


def _body(md_path: Path) -> str:
    """A generated Markdown file without its title line (the report gives its own heading), its
    other headings one level down so that they sit under the report's section."""
    text = Path(md_path).read_text()
    body = (text.split("\n", 1)[1] if text.startswith("# ") else text).strip()
    return "\n".join("#" + line if line.startswith("## ") else line for line in body.splitlines()) + "\n"


def _fmt_range(values) -> str:
    return f"{min(values):.1f} to {max(values):.1f}"


def literal_summary(results_dir: Path = RESULTS) -> str:
    """What the paper-literal Table 1 says, in numbers computed from ``table1.csv``."""
    t1 = pd.read_csv(results_dir / "table1.csv", dtype={"gamma": str})
    done = t1[t1.folds == t1.of_folds]
    partial = t1[(t1.folds > 0) & (t1.folds < t1.of_folds)]
    lines = [f"- {len(done)} of {len(t1)} cells have every fold, {len(partial)} some folds, "
             f"{len(t1) - len(done) - len(partial)} none yet."]
    for corpus, part in done.groupby("corpus"):
        below = part.paper_acc_mean - part.acc_mean
        lines.append(f"- {corpus}: in its {len(part)} complete cells our accuracy is below the paper's by "
                     f"{_fmt_range(below)} points (mean {below.mean():.1f})"
                     + ("; no cell reaches the paper's figure." if (below > 0).all() else "."))
        without = part[part.gamma == "without AL"].set_index("n_cnn_layers").acc_mean
        cells = [(r.n_cnn_layers, float(r.gamma), r.acc_mean - without[r.n_cnn_layers])
                 for r in part[part.gamma != "without AL"].itertuples() if r.n_cnn_layers in without.index]
        if cells:
            diffs = [d for *_, d in cells]
            paper = PAPER_TABLE1[corpus]
            paper_up = sum(paper[(depth, gamma)][0] > paper[(depth, None)][0] for depth, gamma, _ in cells)
            lines.append(f"  AL minus the same depth without AL: {_fmt_range(diffs)} points over {len(cells)} AL cells "
                         f"({sum(d > 0 for d in diffs)} above, {sum(d < 0 for d in diffs)} below); in the same cells "
                         f"the paper's AL is above its network without AL in {paper_up}. Paired tests per cell: "
                         f"`05_ablations`.")
    return "\n".join(lines) + "\n"


def recipe_summary() -> str:
    """The decided stages, and the recipe at 1 block beside the paper, from the recipe's tables."""
    d = pd.read_csv(DECISIONS)
    stages = "\n".join(f"{int(r.stage)}. {r.factor} (decided at depth{'s' * (' ' in str(r.depths))} "
                       f"{str(r.depths).replace(' ', ' and ')}"
                       f"{' on both corpora' if ' ' in str(r.corpora) else ''}): **{r.option}**, validation "
                       f"{r.val_mean:.1f} % over {int(r.n_runs)} runs" for r in d[d.chosen].itertuples())
    t = pd.read_csv(RECIPE_TABLES, dtype={"gamma": str})
    lines = []
    for corpus in PAPER_CORPORA:
        row = t[(t.corpus == corpus) & (t.encoder == "2dcnn_bigru") & (t.n_cnn_layers == 1) & (t.gamma == "without AL")]
        if len(row):
            r = row.iloc[0]
            lines.append(f"- {corpus}, 1 block without AL: recipe {r.recipe_acc} over {int(r.recipe_runs)} runs "
                         f"(paper-literal {r.literal_acc} over {int(r.literal_runs)} runs; the paper without AL {PAPER_TABLE1[corpus][(1, None)][0]}).")
    pending = study().pending
    if pending:
        lines.append(f"- Not decided yet (their runs are missing): {', '.join(pending)}.")
    return stages + "\n\n" + "\n".join(lines) + "\n"


def headline_table(results_dir: Path = RESULTS) -> str:
    """The README's headline: the paper, our paper-literal runs, the recipe (and the earlier
    recipe, once a newer one is tabled) and the openSMILE ComParE + SVM peer, 1 CNN block,
    without and with AL, both corpora, test accuracy and UAR (mean ± std over folds, and seeds
    where there are several), from the generated tables. The recipe's γ is the one its
    validation speakers chose."""
    t1 = pd.read_csv(results_dir / "table1.csv", dtype={"gamma": str})
    t2 = pd.read_csv(results_dir / "table2.csv", dtype={"gamma": str})
    rt = pd.read_csv(results_dir / RECIPE_TABLES.name, dtype={"gamma": str})
    rows = {}

    for corpus in PAPER_CORPORA:
        lit = t1[(t1.corpus == corpus) & (t1.n_cnn_layers == 1)].set_index("gamma")
        rec = rt[(rt.corpus == corpus) & (rt.encoder == "2dcnn_bigru") & (rt.n_cnn_layers == 1)].set_index("gamma")
        al_rec = rec.drop(index="without AL")
        chosen = al_rec.recipe_val_mean.idxmax()
        best = max((g for g in lit.index if g != "without AL"), key=lambda g: PAPER_TABLE1[corpus][(1, float(g))][0])
        peer = t2[(t2.corpus == corpus) & t2.encoder.str.startswith("ComParE")].iloc[0]

        def literal(g):
            r = lit.loc[g]
            return f"{r.acc_mean:.1f} ± {r.acc_std:.1f}", f"{r.uar_mean:.1f} ± {r.uar_std:.1f}"

        entries = {
            "paper, without AL": (f"{PAPER_TABLE1[corpus][(1, None)][0]:.1f} ± {PAPER_TABLE1[corpus][(1, None)][1]:.1f}", "–"),
            "paper, AL (its best γ)": (f"{PAPER_TABLE1[corpus][(1, float(best))][0]:.1f} ± "
                                       f"{PAPER_TABLE1[corpus][(1, float(best))][1]:.1f} (γ {best})", "–"),
            "paper-literal, without AL": literal("without AL"),
            "paper-literal, AL (the paper's best γ)": literal(best),
            **({"earlier recipe, without AL": (rec.loc["without AL"].earlier_acc, rec.loc["without AL"].earlier_uar)}
               if "earlier_acc" in rec else {}),  # the tabled recipe before this one (recipe_tables.md names it)
            "recipe, without AL": (rec.loc["without AL"].recipe_acc, rec.loc["without AL"].recipe_uar),
            "recipe, AL (γ chosen on validation)": (f"{rec.loc[chosen].recipe_acc} (γ {chosen})", rec.loc[chosen].recipe_uar),
            "openSMILE ComParE + linear SVM": (peer.accuracy, peer.UAR),
        }
        for setting, (acc, uar) in entries.items():
            rows.setdefault(setting, {"setting": setting})
            rows[setting].update({f"{corpus} accuracy": acc, f"{corpus} UAR": uar})
    table = pd.DataFrame(list(rows.values())).rename(columns={
        "emodb accuracy": "Emo-DB accuracy", "emodb UAR": "Emo-DB UAR", "ravdess accuracy": "RAVDESS accuracy",
        "ravdess UAR": "RAVDESS UAR"})
    return markdown_table(table)


def headline_finding(results_dir: Path = RESULTS) -> str:
    """One sentence under the headline table, from the recipe's tables: the recipe without AL
    against the paper's network without AL, and what the paper's adversary (at the γ the
    validation speakers chose) does to the recipe, paired, beside what the paper reports."""
    rt = pd.read_csv(results_dir / RECIPE_TABLES.name, dtype={"gamma": str})
    plain, al = [], []
    for corpus in PAPER_CORPORA:
        rec = rt[(rt.corpus == corpus) & (rt.encoder == "2dcnn_bigru") & (rt.n_cnn_layers == 1)].set_index("gamma")
        chosen = rec.drop(index="without AL").recipe_val_mean.idxmax()
        paper = PAPER_TABLE1[corpus]
        plain.append(f"{PRETTY[corpus]} {rec.loc['without AL'].recipe_acc_mean:.1f} against {paper[(1, None)][0]}")
        r = rec.loc[chosen]
        al.append(f"{PRETTY[corpus]} {r.vs_without_AL_diff:+.1f} points at γ {chosen} (paired over {int(r.folds_paired)} "
                  f"folds, p {r.permutation_p:.2g}; the paper: {paper[(1, float(chosen))][0] - paper[(1, None)][0]:+.1f})")
    return (f"In short: the recipe without AL against the paper's network without AL: {'; '.join(plain)}. The "
            f"paper's adversary added to the recipe: {'; '.join(al)}. Whether it removes speaker information, and "
            f"at what cost: `08_adversary`.\n")


README = REPO_ROOT / "README.md"
HEADLINE_MARKS = ("<!-- headline table: generated by `sier report` -->", "<!-- end of the headline table -->")


def readme_with_headline(text: str, results_dir: Path = RESULTS) -> str:
    """``text`` (the README) with the block between :data:`HEADLINE_MARKS` replaced by :func:`headline_table`."""
    start, end = HEADLINE_MARKS
    if start not in text or end not in text:
        raise ValueError(f"the README has no headline block ({start} ... {end})")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{headline_table(results_dir)}\n{headline_finding(results_dir)}{end}{tail}"


def hardware_table(folders=(REFERENCE_RUNS, STUDY_RUNS, ADVERSARY_RUNS, CROSS_CORPUS_RUNS / "runs")) -> str:
    """Which device ran how many of the committed runs, and their median wall time, by corpus,
    encoder and input lengths: from the records themselves."""
    runs = defaultdict(list)
    for folder in folders:
        for rec in iter_records(folder):
            c = rec["config"]
            device = rec.get("device") or "unknown"
            runs[(Path(folder).relative_to(REPO_ROOT).as_posix(), device, c["corpus"],
                  c.get("encoder", "2dcnn_bigru"), c.get("lengths", "padded"))].append(rec.get("wall_time_s"))
    rows = [{"records": k[0], "device": k[1], "corpus": k[2], "encoder": k[3], "lengths": k[4], "runs": len(v),
             "median s per run": round(statistics.median(x for x in v if x is not None))}
            for k, v in sorted(runs.items())]
    return markdown_table(pd.DataFrame(rows))


def probe_coverage(probes: pd.DataFrame, min_seeds: int = 2, gammas: dict | None = None) -> list[str]:
    """What the adversary study still lacks for its first target: at every depth 1-4 of each corpus,
    the capacity control and the paper's adversary (λ×1) over all folds with ``min_seeds`` seeds;
    one line per corpus that lacks some, with the (resumable) commands that run them. ``gammas``
    maps ``(corpus, depth)`` to the γ (a label, e.g. ``"1.25"``) that λ×1 must have there: the
    recipe's validation-chosen γ (:func:`chosen_gammas`); without it any γ counts. The control
    counts at any γ (λ is 0 throughout it, so γ trains nothing)."""
    lines = []
    for corpus in PAPER_CORPORA:
        part = probes[probes.corpus == corpus] if len(probes) else probes
        short = []
        for depth in (1, 2, 3, 4):
            for label in ("control", "λ×1"):
                gamma = (gammas or {}).get((corpus, depth)) if label == "λ×1" else None
                cell = part[(part.n_cnn_layers == depth) & (part.adversary == label)] if len(part) else part
                cell = cell[cell.gamma == gamma] if gamma is not None and len(cell) else cell
                folds = cell.groupby("seed").fold.nunique() if len(cell) else pd.Series(dtype=int)
                seeds = int((folds == CORPORA[corpus].n_folds).sum())
                if seeds < min_seeds:
                    short.append((depth, label, seeds, gamma))
        if short:
            cells = ", ".join(f"{d} block{'s' * (d > 1)} {label}{f' at γ {g}' if g else ''} "
                              f"({n} seed{'s' * (n != 1)})" for d, label, n, g in short)
            seeds = " ".join(map(str, range(min_seeds)))
            runs = defaultdict(list)  # one command per strength and γ
            for depth, label, _, gamma in short:
                runs[(label, gamma)].append(depth)
            commands = "; ".join(f"`sier adversary run --corpus {corpus}{f' --gamma {g}' if g else ''} --depths "
                                 f"{' '.join(map(str, depths))} --strengths {0 if label == 'control' else 1} "
                                 f"--seeds {seeds}`" for (label, g), depths in runs.items())
            lines.append(f"- Adversary study, {corpus}: fewer than {min_seeds} seeds over all folds at {cells}: "
                         f"{commands} (finished runs are skipped).")
    return lines


def chosen_gammas() -> dict:
    """``(corpus, depth) -> γ label`` that the validation speakers choose for the recipe at each depth
    of the committed recipe tables (:func:`sierlib.recipe_tables.al_chosen_on_validation`)."""
    recipe = tabled_recipe(study(STUDY_RUNS))
    out = {}
    for corpus in PAPER_CORPORA:
        chosen = al_chosen_on_validation(recipe_comparison(recipe, corpus))
        if chosen.empty:  # no AL cells of the recipe on this corpus yet
            continue
        for r in chosen[chosen.encoder == "2dcnn_bigru"].itertuples():
            out[(corpus, r.n_cnn_layers)] = r.gamma_chosen
    return out


def open_items(results_dir: Path = RESULTS) -> str:
    t1 = pd.read_csv(results_dir / "table1.csv", dtype={"gamma": str})
    t2 = pd.read_csv(results_dir / "table2.csv", dtype={"gamma": str})
    t2 = t2[t2.method == "AL network"]
    missing1 = t1[t1.folds < t1.of_folds]
    missing2 = t2[t2.folds < t2.of_folds]
    runs1 = int((missing1.of_folds - missing1.folds).sum())
    runs2 = int((missing2.of_folds - missing2.folds).sum())
    cells = ", ".join(f"{r.corpus} {r.n_cnn_layers} blocks {r.gamma} ({r.folds}/{r.of_folds})"
                      for r in missing1.itertuples())
    rows2 = ", ".join(f"{r.corpus} {r.encoder.split(' (')[0]} {r.gamma} ({r.folds}/{r.of_folds})"
                      for r in missing2.itertuples())
    lines = []
    if len(missing1):
        for corpus, part in missing1.groupby("corpus"):
            depths = " ".join(str(d) for d in sorted(set(part.n_cnn_layers)))
            gammas = " ".join(sorted({"none" if g == "without AL" else g for g in part.gamma}))
            cells += (f"; `sier sweep --corpus {corpus} --depths {depths} --gammas {gammas} --reference` runs "
                      f"{'them' if missing1.corpus.nunique() == 1 else 'its'}")
        lines.append(f"- Paper-literal Table 1: {len(missing1)} cells lack folds ({runs1} runs): {cells} (finished runs "
                     f"are skipped; `--in-process --device cuda --workers 14` on a GPU).")
    if len(missing2):
        lines.append(f"- Paper-literal Table 2: {len(missing2)} network rows lack folds ({runs2} runs): {rows2}. "
                     f"`sier sweep --corpus ravdess --encoders tdnn_bilstm 1dcnn_gru --gammas none 2.5 --depths 1 "
                     f"--reference`.")
    lines.append("- The §4.2 grid (16 network sizes per cell, chosen on validation speakers): 16 times the compute of "
                 "Table 1.")
    probes = probe_rows(ADVERSARY_RUNS)
    lines += probe_coverage(probes, gammas=chosen_gammas())
    biased = probes[(probes.adversary_head_steps > 1) & probes.git_commit.astype(str).str.startswith(
        BIASED_HEAD_CURVES)] if len(probes) else probes
    if len(biased):
        lines.append(f"- {len(biased)} probe runs with several head steps ({', '.join(sorted(set(biased.corpus)))}) have "
                     f"per-epoch head curves and their head's held-out score left out (`sierlib.adversary."
                     f"BIASED_HEAD_CURVES`); training them again at the current code (delete their records, then "
                     f"`sier adversary run --head-steps k`) restores them and should leave every other figure as it is.")
    swa = probe_rows(ADVERSARY_RUNS, selection="swa")
    if len(probes) > len(swa):
        lines.append(f"- The adversary's trade-off reads the best validation epoch's weights: {len(probes) - len(swa)} of "
                     f"{len(probes)} probe runs measured speaker information on those only. The recipe's SWA weights "
                     f"(measured by {len(swa)} runs) need the others trained again at the current code (delete their "
                     f"records, then `sier adversary run` with their settings).")
    crossed = cross_rows(CROSS_CORPUS_RUNS)
    for corpus, test_corpus in DIRECTIONS:
        if not len(crossed) or not len(crossed[(crossed.corpus == corpus) & (crossed.test_corpus == test_corpus)]):
            lines.append(f"- Cross-corpus {corpus} → {test_corpus}: not run (`sier adversary cross --corpus {corpus}`).")
    found = study()
    if tabled_recipe(found) != found.recipe:
        lines.append(f"- The recipe study has decided a newer recipe than that of the tables, the headline and the "
                     f"adversary study, whose 1-block cells are not all trained yet: {TRAIN_TABLED_CELLS}.")
    if found.pending:
        lines.append(f"- The recipe's stages not decided yet (their runs are missing; `sier recipe run`): "
                     f"{', '.join(found.pending)}.")
    return "\n".join(lines) + "\n"


def adversary_summary(table: pd.DataFrame, gammas: dict) -> str:
    """The paper's adversary (λ×1) against the capacity control at each corpus, depth and γ of a
    :func:`sierlib.adversary.tradeoff_table`, as a Markdown table: speaker probe, EER and emotion of
    both, the paired differences with exact sign-flip p, and whether the γ is the one the
    validation speakers chose for the recipe at that depth (``gammas``, :func:`chosen_gammas`)."""
    paper = table[(table.adversary == "λ×1") & table.folds_paired.notna()].copy()
    if paper.empty:
        return "No paper-adversary probe runs are paired with a control yet.\n"
    controls = table[table.lambda_max == 0].set_index(["corpus", "n_cnn_layers", "gamma"])
    rows = []
    for r in paper.itertuples():
        c = controls.loc[(r.corpus, r.n_cnn_layers, r.gamma)]
        judged = r.folds_paired >= MIN_VERDICT_FOLDS  # as the verdict: two folds give no interval worth reading
        rows.append({"corpus": PRETTY.get(r.corpus, r.corpus), "blocks": r.n_cnn_layers, "γ": r.gamma,
                     "chosen on validation": "yes" if gammas.get((r.corpus, r.n_cnn_layers)) == r.gamma else "",
                     "runs": r.runs, "folds paired": int(r.folds_paired),
                     "speaker probe: control → λ×1": f"{c.speaker_linear_probe_mean:.1f} → {r.speaker_linear_probe_mean:.1f}",
                     "Δ probe (p)": f"{r.speaker_probe_diff:+.1f} ({r.speaker_probe_p:.2g})" if judged else
                     f"fewer than {MIN_VERDICT_FOLDS} folds",
                     "EER: control → λ×1": f"{c.unseen_speaker_eer_mean:.1f} → {r.unseen_speaker_eer_mean:.1f}",
                     "emotion: control → λ×1": f"{c.test_accuracy_mean:.1f} → {r.test_accuracy_mean:.1f}",
                     "Δ emotion [95 % CI] (p)": f"{r.emotion_diff:+.1f} [{r.emotion_ci_low:+.1f}, "
                                                f"{r.emotion_ci_high:+.1f}] ({r.emotion_p:.2g})" if judged else ""})
    return markdown_table(pd.DataFrame(rows))


def render_report(results_dir: Path = RESULTS) -> str:
    """The whole report as Markdown (see the module docstring)."""
    adversary_md = results_dir / ADVERSARY_TABLES.with_suffix(".md").name
    rows = probe_rows(ADVERSARY_RUNS)
    swa_rows = probe_rows(ADVERSARY_RUNS, selection="swa")
    swa_verdict = ("\nThe same verdict on the recipe's SWA weights, over the runs that measured them:\n\n```\n"
                   + verdict(tradeoff_table(swa_rows)) + "\n```\n") if len(swa_rows) else ""
    table = tradeoff_table(rows) if len(rows) else pd.DataFrame()
    chance = ", ".join(f"{PRETTY.get(c, c)} {x:.1f}" for c, x in table.groupby("corpus").speaker_chance.mean().items()) \
        if len(table) else ""
    adversary_part = ("**In short**: the paper's adversary (λ×1) against the capacity control on the best validation "
                      f"epoch's weights (%; speaker chance: {chance}; EER chance 50). Each figure is the mean over the "
                      "setting's fold x seed runs; each Δ is paired over folds, seeds averaged, with its exact sign-flip "
                      "p. 'chosen on validation' marks the γ the recipe's validation speakers chose at that depth "
                      "(`07_recipe`); the others are the paper's γ.\n\n"
                      + adversary_summary(table, chosen_gammas()) + "\n"
                      + _body(adversary_md) + "\n**Verdict, computed from the tables above** "
                      "(`sierlib.adversary.verdict`), on the best validation epoch's weights:\n\n```\n"
                      + verdict(table) + "\n```\n" + swa_verdict
                      if adversary_md.is_file() and len(rows) else "No probe runs are committed yet.\n")
    cross_md = results_dir / CROSS_CORPUS_TABLES.with_suffix(".md").name
    cross_part = _body(cross_md) if cross_md.is_file() else "No cross-corpus runs are committed yet.\n"
    return f"""# Reproducing Leow et al., *Speaker-Invariant Emotion Recognition with Adversarial Learning*

Generated by `sier report` (`sierlib/report.py`) from the committed run records and the tables derived
from them; `tests/test_report.py` fails when this file differs from what the code writes. Every
figure comes from records produced by committed code on the real corpora; each record carries its
device, wall time and git commit.

## Protocol

{PROTOCOL}
## The paper as written: paper-literal runs

### Table 1: test accuracy by CNN depth and γ

{literal_summary(results_dir)}
{_body(results_dir / "table1.md")}
### Table 2: encoders, and the openSMILE + SVM peers

{_body(results_dir / "table2.md")}
## The recipe: where the paper's points went

The paper leaves most of its training recipe unsaid. The recipe study (`07_recipe`, `sierlib/recipe.py`)
decided one training choice at a time on the validation speakers only (stages 1-10 on 3 seeds × 5 Emo-DB
folds; the front-end, pooling, training-length and speaker-adversary stages after them are decided on
3 seeds × the folds of both corpora, each corpus weighted equally), a simpler option winning unless
beaten by more than one standard error. The stages decided so far:

{recipe_summary()}
{_body(results_dir / "recipe_tables.md")}
## The speaker adversary: does it remove speaker information, and does that help emotion?

Probe runs (`08_adversary`, `sierlib/speakerinfo.py`, `sierlib/adversary.py`) hold 20 % of each training
speaker's utterances out of training and measure the speaker information left in the embedding, as the
adversary's strength grows from the capacity control (the head learns, the encoder is not pushed) to
several times the paper's.

{adversary_part}
### Cross-corpus

{cross_part}
## Speed and hardware, from the records

{hardware_table()}
`sier benchmark` measures speed on a given machine (medians of several runs, ratios measured in the same run).

## What is still open

{open_items(results_dir)}"""


def write_report(path: Path = REPORT, results_dir: Path = RESULTS, readme: Path = README) -> list[Path]:
    """Write the report and the README's headline table."""
    return [write_text_atomic(render_report(results_dir), path),
            write_text_atomic(readme_with_headline(Path(readme).read_text(), results_dir), readme)]
