"""Command line: ``sier <command>`` (or ``python -m sierlib.cli``); ``sier --help`` lists the
commands and ``sier <command> --help`` their options. The top floor: one argparse parser, and
for each command a short function that calls the library and prints.

This module is longer than the others (about 520 lines) because it holds every command's options
in one place: each command's parser sits next to the function that runs it.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from . import (adversary, benchmarks, classical, cluster, crosscorpus, headline, recipe, recipe_tables, report,
               results, sweep, workers)
from .audio import CorpusError, check_recordings
from .config import DEFAULTS, RunOptions
from .corpora import corpus_info, load_metadata
from .download import SOURCES, check_published, download_corpus, verify_corpus
from .folds import fold_grid, make_folds, write_fold_table
from .paper import BEST_GAMMA, DEPTHS, GAMMAS, TABLE2_ENCODERS
from .paths import ADVERSARY_RUNS, CROSS_CORPUS_RUNS, LOCAL_ADVERSARY, REFERENCE_RUNS, RESULTS, STUDY_RUNS, write_csv_atomic
from .predict import find_audio, iter_outputs, load_network, output_table
from .records import read_record, runs_dir
from .registry import CORPORA, PAPER_CORPORA, PRETTY
from .synthetic import make_synthetic_corpus


class CommandError(Exception):
    """The options of a command do not fit together; the message says which and what to do. Shown
    with the command's usage (exit status 2), as argparse shows its own errors."""


def _gamma(text: str):
    return None if text.lower() == "none" else float(text)


def _setting(text: str) -> tuple[str, object]:
    """``key=value`` of a config field; the value is read as a Python literal, else a string."""
    key, sep, value = text.partition("=")
    if not sep or key not in DEFAULTS:
        raise argparse.ArgumentTypeError(f"--set takes field=value with a field of the run config "
                                         f"({', '.join(DEFAULTS)}); got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


# --- corpora -------------------------------------------------------------------------------------
def cmd_summary(args) -> int:
    """Corpus summary and fold tables (writes results/folds/<corpus>.csv; a manifest's to
    results/local/folds/); reads every recording once to check that it can carry emotion, and
    that Emo-DB and RAVDESS are the published recordings (sha256)."""
    pd.set_option("display.width", 200)
    for corpus in args.corpora or PAPER_CORPORA:
        meta = load_metadata(corpus, args.data_root)
        check_recordings(meta)
        check_published(meta)  # Emo-DB and RAVDESS: every recording as published
        print(f"\n== {corpus_info(corpus).title}: {len(meta)} utterances, {meta.speaker.nunique()} speakers, "
              f"{meta.duration.sum() / 60:.1f} min ==")
        print(pd.crosstab(meta.emotion, meta.gender, margins=True, margins_name="all").to_string())
        folds = make_folds(meta)
        path = write_fold_table(folds, corpus)
        print(f"\nFolds ({folds.fold.nunique()}, written to {path}):")
        print(fold_grid(folds).to_string())
    return 0


def cmd_download(args) -> int:
    for corpus in args.corpora:
        print(f"{PRETTY[corpus]} ({SOURCES[corpus]['licence']})")
        path = download_corpus(corpus, args.data_root, url=args.url, force=args.force)
        print(f"verified: {path}")
    return 0


def cmd_verify(args) -> int:
    for corpus in args.corpora:
        verify_corpus(corpus, args.data_root)
        print(f"{PRETTY[corpus]}: every file matches its sha256")
    return 0


def cmd_synthetic(args) -> int:
    print(make_synthetic_corpus(args.data_root, overwrite=True))
    return 0


def cmd_pack(args) -> int:
    """Write a corpus's metadata and features to a folder, for `sier sweep --in-process --pack`."""
    variants = {}
    if args.recipe:
        found = recipe.study()
        decided = found.decisions.stage.nunique() if len(found.decisions) else 0
        variants = {corpus: recipe.feature_variants(found.recipe, decided=decided, corpus=corpus,
                                                    encoders=args.encoders) for corpus in args.corpora}
    for corpus in args.corpora:
        for path in workers.write_pack(args.folder, corpus, args.encoders, args.data_root, variants.get(corpus, ())):
            print(f"wrote {path}")
    return 0


# --- runs ----------------------------------------------------------------------------------------
def cmd_reproduce(args) -> int:
    headline.reproduce_headline(corpus=args.corpus, literal=args.literal, epochs=args.epochs, folds=args.folds,
                                data_root=args.data_root, device=args.device)
    return 0


def cmd_sweep(args) -> int:
    on_dask = args.cluster is not None or args.scheduler is not None
    if on_dask and args.in_process:
        raise CommandError("--in-process runs in this machine's processes: leave it out with --cluster or --scheduler")
    planned_fields = {"corpus", "fold", "gamma", "seed", "encoder", "n_cnn_layers"}
    clash = sorted(planned_fields & {k for k, _ in args.set})
    if clash:
        raise CommandError(f"--set {', '.join(clash)}: the sweep plans these itself; use --corpus, --folds, "
                           f"--gammas, --seeds, --encoders or --depths")
    try:
        plan = sweep.plan_sweep(args.corpus, args.folds, args.gammas, args.depths, args.grid, args.seeds,
                                args.encoders, **dict(args.set))
        RunOptions(device=args.device)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    out_dir = REFERENCE_RUNS if args.reference else runs_dir(args.out_dir)
    todo = sweep.unfinished(plan, out_dir)
    print(f"{len(plan)} runs planned, {len(plan) - len(todo)} already finished in {out_dir}")
    if args.dry_run:
        for c in todo:
            print("  ", c.name)
        return 0
    if on_dask:
        try:
            report = cluster.run_on_dask(plan, cluster=args.cluster, scheduler=args.scheduler, out_dir=out_dir,
                                         data_root=args.data_root, device=args.device,
                                         threads_per_run=args.threads_per_run, gpus_per_run=args.gpus_per_run,
                                         retries=args.retries)
        except (cluster.ClusterError, ValueError) as exc:
            raise CommandError(str(exc)) from None
    elif args.in_process:
        report = workers.run_in_process(plan, workers=args.workers, out_dir=out_dir, device=args.device,
                                        pack=args.pack, data_root=args.data_root,
                                        threads_per_worker=args.threads_per_run, max_minutes=args.max_minutes)
    else:
        report = sweep.run_sweep(plan, workers=args.workers, out_dir=out_dir, data_root=args.data_root,
                                 device=args.device, threads_per_worker=args.threads_per_run)
    print(report)
    if args.reference:
        print("tables regenerated:", ", ".join(p.name for p in results.write_tables()))
    if args.bundle:
        print(f"bundled into {workers.bundle_records(args.bundle, out_dir)}")
    return 1 if report.failed else 0


def cmd_recipe(args) -> int:
    try:
        out_dir, folders, decisions = recipe.study_paths(args.reference, args.runs_dir, args.decisions)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    t0 = time.time()
    failed = []

    def run_missing(todo, stage):
        left = None if args.max_minutes is None else args.max_minutes - (time.time() - t0) / 60
        if left is not None and left <= 0:
            return
        print(f"stage {stage.factor}: {len(todo)} runs to train")
        report = workers.run_in_process(todo, workers=args.workers, out_dir=out_dir, device=args.device,
                                        data_root=args.data_root, pack=args.pack, max_minutes=left)
        failed.extend(report.failed)
        print(report)

    if args.action == "tables":
        finished = recipe.records_by_name(folders)
        found = recipe.study(folders, records=finished)
        if found.pending:
            print(f"note: the study has not decided {', '.join(found.pending)} yet: these runs use the recipe so far")
        plan = recipe.recipe_plan(found.recipe, args.corpus, args.depths, args.gammas, args.seeds,
                                  "per_speaker_offline" if args.offline else "train_speakers", args.encoders)
        todo = [c for c in plan if c.name not in finished]
        print(f"recipe {json.dumps(found.recipe, sort_keys=True)}: {len(plan)} runs planned, {len(todo)} to train "
              f"into {out_dir}")
        return _train_in_process(todo, out_dir, args)
    found = recipe.study(folders, run_missing=run_missing if args.action == "run" else None)
    if len(found.decisions):
        recipe.write_decisions(found.decisions, decisions)
        print(found.decisions.to_string(index=False))
        print("wrote", decisions)
        tabled = recipe_tables.tabled_recipe(found, folders)
        for path in recipe_tables.write_recipe_tables(tabled, folders, path=decisions.with_name("recipe_tables.csv"),
                                                      earlier=recipe_tables.earlier_tabled_recipe(found, folders),
                                                      newest=found.recipe):
            print("wrote", path)
        if tabled != found.recipe:
            print(f"the tables keep the recipe {json.dumps(tabled, sort_keys=True)} until the study's newer one has "
                  f"its 1-block cells: {recipe_tables.TRAIN_TABLED_CELLS}")
    print("recipe so far:", json.dumps(found.recipe, sort_keys=True))
    if found.pending:
        print("not decided yet (runs missing):", ", ".join(found.pending))
    return 1 if failed else 0


def cmd_adversary(args) -> int:
    if args.reference and args.runs_dir is not None:
        raise CommandError("--reference writes into the committed study (results/adversary/runs); leave out --runs-dir")
    out_dir = ADVERSARY_RUNS if args.reference else Path(args.runs_dir) if args.runs_dir else LOCAL_ADVERSARY / "runs"
    cross_dir = CROSS_CORPUS_RUNS if args.reference else out_dir.parent / "crosscorpus"
    if args.action == "tables":
        tables_dir = RESULTS if args.reference else LOCAL_ADVERSARY
        for path in adversary.write_adversary_tables(out_dir, tables_dir) + crosscorpus.write_cross_tables(cross_dir, tables_dir):
            print("wrote", path)
        return 0
    recipe_now = recipe_tables.tabled_recipe(recipe.study(STUDY_RUNS))  # the recipe of the tables and the headline
    gamma = BEST_GAMMA[args.corpus] if args.gamma is None else args.gamma
    if args.action == "cross":
        plan = crosscorpus.cross_plan(recipe_now, args.corpus, gamma, args.seeds, args.folds)
        todo = sweep.unfinished(plan, cross_dir / "runs")
        print(f"cross-corpus {args.corpus} -> {plan[0].test_corpus}, γ {gamma}: {len(plan)} network runs planned, "
              f"{len(todo)} to train into {cross_dir / 'runs'}; the {crosscorpus.PEER} + SVM peer on the same folds")
        for fold in sorted({c.fold for c in plan}):
            path = classical.record_path(args.corpus, crosscorpus.PEER, fold, cross_dir / "classical", plan[0].test_corpus)
            rec = read_record(path) or classical.run_classical(  # resumable: a finished fold is read back
                args.corpus, fold, crosscorpus.PEER, test_corpus=plan[0].test_corpus, out_dir=cross_dir / "classical",
                data_root=args.data_root, n_jobs=args.workers, progress=True)
            print(f"  SVM fold {fold}: test {100 * rec['test_accuracy']:.1f} % (C {rec['params']['C']:g})")
        return _train_in_process(todo, cross_dir / "runs", args)
    knobs = {"adversary_warmup_epochs": args.warmup_epochs, "adversary_lr_scale": args.head_lr_scale,
             "adversary_head_steps": args.head_steps, "speaker_fc_hidden": args.head_hidden}
    plan = adversary.adversary_plan(recipe_now, args.corpus, gamma, args.strengths, args.depths, args.seeds,
                                    args.folds, **knobs)
    todo = sweep.unfinished(plan, out_dir)
    print(f"adversary study on {args.corpus}, γ {gamma}, recipe {json.dumps(recipe_now, sort_keys=True)}: "
          f"{len(plan)} probe runs planned, {len(todo)} to train into {out_dir}")
    return _train_in_process(todo, out_dir, args)


def _train_in_process(todo, out_dir, args) -> int:
    """Train ``todo`` into ``out_dir`` in worker processes, as the command's --workers, --device,
    --pack and --max-minutes say; the exit status: 1 if a run failed."""
    report = workers.run_in_process(todo, workers=args.workers, out_dir=out_dir, device=args.device,
                                    data_root=args.data_root, pack=args.pack, max_minutes=args.max_minutes)
    print(report)
    return 1 if report.failed else 0


# --- saved networks ------------------------------------------------------------------------------
def _outputs(args, embed: bool) -> int:
    network = load_network(args.model, args.device)
    files, skipped = find_audio(args.paths)
    for path, reason in skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(f"{network.name}: {len(network.emotions)} emotions ({', '.join(network.emotions)}); "
          f"{len(files)} file{'s' * (len(files) != 1)}", file=sys.stderr)
    rows = []
    # a progress bar for folders (shown where stderr is a terminal); single files need none
    folders = any(Path(a).expanduser().is_dir() for a in args.paths)
    bar = tqdm(iter_outputs(network, files, embed=embed), total=len(files), unit="file",
               desc="embed" if embed else "predict", file=sys.stderr, disable=None if folders else True)
    for path, result, reason in bar:
        if result is None:
            skipped.append((str(path), reason))
            tqdm.write(f"skipped {path}: {reason}", file=sys.stderr)
        else:
            rows.append({"file": str(path), **result})
            if not embed:
                tqdm.write(f"{path}\t{result['emotion']}\t{result['probability']:.3f}", file=sys.stdout)
    bar.close()
    if args.out:
        table = output_table(rows, network, embed=embed, probabilities=not embed or args.probabilities)
        print(f"wrote {write_csv_atomic(table, args.out)}", file=sys.stderr)
    print(f"{len(rows)} {'embedded' if embed else 'predicted'}, {len(skipped)} skipped", file=sys.stderr)
    return 0 if not skipped else 1


def cmd_predict(args) -> int:
    """The emotion of recordings, by a network saved with save_model."""
    return _outputs(args, embed=False)


def cmd_embed(args) -> int:
    """The pooled embedding of recordings (the input of both classifiers), by a network saved with
    save_model: one row per recording, columns file, seconds, cut, e0, e1, ..."""
    return _outputs(args, embed=True)


# --- analysis ------------------------------------------------------------------------------------
def cmd_tables(args) -> int:
    """Regenerate results/runs_<corpus>.csv and Tables 1 and 2 from the reference records."""
    for path in results.write_tables():
        print(f"wrote {path}")
    return 0


def cmd_report(args) -> int:
    """Regenerate papers/reproduction.md and the README's headline table from the committed records and tables."""
    for path in report.write_report():
        print(f"wrote {path}")
    return 0


def cmd_classical(args) -> int:
    """openSMILE functionals + SVM on the speaker-independent folds: runs every fold (finished
    records are reused) and prints mean ± std over folds."""
    for fs in args.feature_sets:
        try:
            classical.check_feature_set(fs)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    if not args.table_only:
        metas = {}
        for fs in args.feature_sets:  # feature set outer: the cheap set finishes for every corpus first
            for corpus in args.corpus:
                if corpus not in metas:
                    metas[corpus] = load_metadata(corpus, args.data_root)
                timings: dict = {}
                t0 = time.perf_counter()
                runs = classical.run_classical_all(corpus, [fs], folds=args.folds, C_grid=args.C_grid,
                                                   kernel=args.kernel, meta=metas[corpus], cache=args.cache,
                                                   out_dir=args.out_dir, n_jobs=args.n_jobs, timings=timings)
                t = timings.get((corpus, fs))
                extraction = ("all folds already finished" if t is None else
                              "features from cache" if t["from_cache"] else
                              f"extraction {t['extraction_s']:.1f} s for {t['n_files']} files")
                print(f"{PRETTY[corpus]} {fs}: {len(runs)} folds, accuracy "
                      f"{100 * runs.test_accuracy.mean():.1f} %, UAR {100 * runs.test_uar.mean():.1f} % "
                      f"({extraction}; {time.perf_counter() - t0:.1f} s in all)", flush=True)
    table = classical.classical_table(args.out_dir)
    pd.set_option("display.width", 200)
    print("\nopenSMILE functionals + SVM, test speakers (mean ± std over folds, %):")
    print(table[["corpus", "feature_set", "kernel", "folds", "accuracy", "UAR"]].to_string(index=False))
    return 0


def cmd_benchmark(args) -> int:
    """Speed benchmarks that print their figures (medians, and ratios measured in the same run)."""
    if args.epochs is not None and args.what not in ("lengths", "sweep"):
        raise CommandError(f"--epochs applies to the lengths and sweep benchmarks only, not to {args.what!r}")
    if args.what == "cluster":  # its own synthetic corpus: --corpora and --data-root do not apply
        benchmarks.bench_cluster(args.repeats)
        return 0
    {"checksums": benchmarks.bench_checksums, "features": benchmarks.bench_features, "train": benchmarks.bench_train, "encoders": benchmarks.bench_encoders,
     "sweep": benchmarks.bench_sweep, "lengths": benchmarks.bench_lengths, "recipe": benchmarks.bench_recipe}[args.what](
        args.corpora, args.repeats, args.data_root, **({"epochs": args.epochs} if args.epochs else {}))
    return 0


# --- the parser ----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    # --data-root is accepted before or after the command (sier --data-root D download emodb,
    # sier download emodb --data-root D)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-root", default=argparse.SUPPRESS,
                        help="folder holding the corpora (default: $SIER_DATA or data/)")
    ap = argparse.ArgumentParser(prog="sier", description=__doc__.split("\n\n")[0], parents=[common])
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, func, help=None, description=None):
        p = sub.add_parser(name, parents=[common], help=help or func.__doc__, description=description or help
                           or func.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=func, parser=p)
        return p

    corpus_help = f"{', '.join(CORPORA)} or the path of a manifest .csv of your own corpus (see sierlib.manifest)"
    p = command("summary", cmd_summary)
    p.add_argument("corpora", nargs="*", help=corpus_help + " (default: emodb ravdess)")
    p = command("download", cmd_download, "download a corpus from its official source and verify it")
    p.add_argument("corpora", nargs="+", choices=PAPER_CORPORA)
    p.add_argument("--url", default=None, help="a mirror instead of the official source")
    p.add_argument("--force", action="store_true", help="replace an existing copy")
    p = command("verify", cmd_verify, "check every file of a corpus against the shipped sha256 list")
    p.add_argument("corpora", nargs="+", choices=PAPER_CORPORA)
    command("synthetic", cmd_synthetic, "generate the synthetic test corpus under the data root")
    p = command("pack", cmd_pack)
    p.add_argument("folder")
    p.add_argument("corpora", nargs="+", choices=PAPER_CORPORA)
    p.add_argument("--encoders", nargs="+", default=["2dcnn_bigru"])
    p.add_argument("--recipe", action="store_true",
                   help="also the features that the recipe so far reads (for `sier recipe tables`, per encoder) "
                        "and the variants (high-pass, trimming, speed) its undecided stages can need next")

    p = command("reproduce", cmd_reproduce, "the headline experiment: the recipe at 1 block without AL and with "
                "its validation-chosen γ on every fold (--literal: the paper-literal headline)",
                headline.__doc__)
    p.add_argument("--corpus", default="emodb", choices=PAPER_CORPORA)
    p.add_argument("--literal", action="store_true",
                   help="train the paper-literal headline (Table 1's best setting against the same network without AL)")
    p.add_argument("--epochs", type=int, default=None, help="override the training epochs")
    p.add_argument("--folds", type=int, nargs="*", default=None, help="only these folds")
    p.add_argument("--device", default="auto")

    p = command("sweep", cmd_sweep, "run 04_train over folds x gamma x depth (resumable)", sweep.__doc__)
    p.add_argument("--corpus", default="emodb", help=corpus_help)
    p.add_argument("--folds", type=int, nargs="+", default=None)
    p.add_argument("--gammas", type=_gamma, nargs="+", default=list(GAMMAS), help="e.g. none 1.25 2.5 3.33")
    p.add_argument("--depths", type=int, nargs="+", default=list(DEPTHS))
    p.add_argument("--grid", action="store_true", help="also sweep the section 4.2 grid (16 points)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--encoders", nargs="+", default=["2dcnn_bigru"])
    p.add_argument("--set", type=_setting, nargs="+", default=[], metavar="FIELD=VALUE",
                   help="other run-config fields for every run, e.g. --set epochs=60 lr=5e-4")
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads-per-run", type=int, default=None, metavar="N",
                   help="torch threads of each run (default: this machine's cores split between the workers; "
                        "1 on a running Dask scheduler)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out-dir", default=None, help="records folder (default results/local/runs)")
    where.add_argument("--reference", action="store_true",
                       help="write into the reference records (results/runs) and regenerate the committed tables")
    p.add_argument("--in-process", action="store_true",
                   help="run in worker processes that keep the features in memory, without notebooks (GPU sweeps)")
    p.add_argument("--pack", default=None, help="with --in-process: a folder from `sier pack` instead of the audio")
    p.add_argument("--max-minutes", type=float, default=None, help="with --in-process: start no run after this long")
    p.add_argument("--bundle", default=None, help="afterwards, pack all records into this .tar.gz")
    p.add_argument("--dry-run", action="store_true", help="only print what would run")
    group = p.add_argument_group("on a Dask cluster (pip install -e \".[cluster]\"; see the README)")
    dask_where = group.add_mutually_exclusive_group()
    dask_where.add_argument("--cluster", type=cluster.cluster_argument, default=None, metavar="local:N",
                            help="run on a new Dask LocalCluster of N single-threaded worker processes")
    dask_where.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                            help="run on the workers of a running Dask scheduler")
    group.add_argument("--gpus-per-run", type=int, default=0, metavar="K",
                       help="with --scheduler: each run asks for K of a worker's GPU resource "
                            "(workers started with --resources GPU=1, one per GPU)")
    group.add_argument("--retries", type=int, default=None, metavar="K",
                       help="with --cluster: start a run again at most K times when its worker dies (default 3)")

    p = command("recipe", cmd_recipe, "the recipe study: every training choice decided on validation speakers",
                recipe.__doc__)
    p.add_argument("action", choices=("run", "decide", "tables"),
                   help="run: train what the next stages need and decide them; decide: only derive the "
                        "decision table from the finished runs; tables: train the recipe decided so far "
                        "in the cells given by --corpus --depths --gammas --seeds (and --offline)")
    p.add_argument("--corpus", default="emodb", choices=PAPER_CORPORA,
                   help="with tables: the corpus of the cells (stages 1-10 are decided on Emo-DB, the later ones on both corpora)")
    p.add_argument("--encoders", nargs="+", default=["2dcnn_bigru"], choices=list(TABLE2_ENCODERS),
                   help="with tables: the encoders (Table 2's earlier ones have one size: --depths is the "
                        "2D CNN biGRU's)")
    p.add_argument("--depths", type=int, nargs="+", default=[1])
    p.add_argument("--gammas", type=_gamma, nargs="+", default=[None])
    p.add_argument("--seeds", type=int, nargs="+", default=list(recipe.SEEDS))
    p.add_argument("--offline", action="store_true",
                   help="with tables: normalisation per_speaker_offline (the separate 'offline' row)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--max-minutes", type=float, default=None, help="start no run after this long")
    p.add_argument("--pack", default=None, help="read features from this folder (`sier pack --recipe`) instead of "
                                                "the audio, e.g. on a lent GPU machine")
    p.add_argument("--runs-dir", default=None,
                   help="where new runs go (default results/local/recipe/runs, git-ignored); the committed "
                        "study's runs are read as well, and never trained again")
    p.add_argument("--reference", action="store_true",
                   help="write into the committed study instead (results/recipe/runs, results/recipe_decisions.csv "
                        "and results/recipe_tables.csv/.md): for a deliberate extension of the study")
    p.add_argument("--decisions", default=None,
                   help="where the decision table (CSV) goes; the recipe's tables are written beside it, as "
                        "recipe_tables.csv and .md (default: results/local/recipe/, with --reference "
                        "results/recipe_decisions.csv)")

    p = command("adversary", cmd_adversary, "the adversary study: speaker information and emotion as the "
                "adversary's strength grows (probe runs)", adversary.__doc__)
    p.add_argument("action", choices=("run", "cross", "tables"),
                   help="run: train the probe runs of --corpus (resumable); cross: train on --corpus and test on the "
                        "other corpus, without AL and with AL, and the ComParE + SVM peer (resumable); tables: write "
                        "probes_<corpus>.csv, adversary_tables.csv/.md and crosscorpus_tables.csv/.md")
    p.add_argument("--corpus", default="ravdess", choices=PAPER_CORPORA)
    p.add_argument("--gamma", type=float, default=None, help="γ of the AL runs (default: the paper's best for the corpus)")
    p.add_argument("--strengths", type=float, nargs="+", default=list(adversary.STRENGTHS),
                   help="the values of lambda_max (0: the capacity control; 1: the paper)")
    p.add_argument("--warmup-epochs", type=int, default=0,
                   help="adversary_warmup_epochs of the AL runs: λ held at 0 for the first epochs (default 0, the paper)")
    p.add_argument("--head-lr-scale", type=float, default=1.0,
                   help="adversary_lr_scale of the AL runs: the speaker head's learning-rate multiplier (default 1)")
    p.add_argument("--head-steps", type=int, default=1,
                   help="adversary_head_steps of the AL runs: speaker-head updates per encoder update (default 1)")
    p.add_argument("--head-hidden", type=int, default=None,
                   help="speaker_fc_hidden of the AL runs: the speaker head's width (default: fc_hidden, the paper)")
    p.add_argument("--depths", type=int, nargs="+", default=[1])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--folds", type=int, nargs="+", default=None, help="default: every fold")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--pack", default=None, help="read features from this folder (`sier pack --recipe`)")
    p.add_argument("--max-minutes", type=float, default=None, help="start no run after this long")
    p.add_argument("--runs-dir", default=None, help="where new probe runs go (default results/local/adversary/runs)")
    p.add_argument("--reference", action="store_true",
                   help="the committed study: runs into results/adversary/runs, tables into results/")

    for name, func in (("predict", cmd_predict), ("embed", cmd_embed)):
        p = command(name, func)
        p.add_argument("model", help="a network saved by a run with save_model (results/local/runs/<corpus>/<name>.pt)")
        p.add_argument("paths", nargs="+", metavar="PATH", help="audio files, or folders searched recursively "
                                                                "(.wav, .flac, .ogg, .mp3)")
        p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
        if name == "predict":
            p.add_argument("--out", default=None, help="write every class's probability to this CSV")
        else:
            p.add_argument("--out", required=True, help="the CSV to write (one row per recording)")
            p.add_argument("--probabilities", action="store_true",
                           help="also the predicted emotion and every class's probability")

    command("tables", cmd_tables)
    command("report", cmd_report)
    p = command("classical", cmd_classical, description=classical.__doc__)
    p.add_argument("--corpus", nargs="+", default=list(PAPER_CORPORA), choices=[*PAPER_CORPORA, "synthetic"])
    p.add_argument("--feature-sets", nargs="+", default=list(classical.FEATURE_SETS),
                   help="openSMILE feature sets, run in this order for every corpus (default: eGeMAPSv02 ComParE_2016)")
    p.add_argument("--folds", nargs="+", type=int, default=None, help="default: all folds")
    p.add_argument("--C-grid", nargs="+", type=float, default=list(classical.C_GRID))
    p.add_argument("--kernel", default="linear", choices=classical.KERNELS)
    p.add_argument("--cache", default=None, help="feature cache (default SIER_CACHE or cache/)")
    p.add_argument("--out-dir", default=None, help="records folder (default results/classical)")
    p.add_argument("--n-jobs", type=int, default=-1)
    p.add_argument("--table-only", action="store_true", help="print the table of finished records")
    p = command("benchmark", cmd_benchmark, description=benchmarks.__doc__)
    p.add_argument("what", choices=["checksums", "features", "train", "encoders", "sweep", "lengths", "recipe", "cluster"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--corpora", nargs="+", default=list(PAPER_CORPORA))
    p.add_argument("--epochs", type=int, default=None, help="lengths, sweep: epochs per run (default 30 and 2)")
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    args.data_root = getattr(args, "data_root", None)
    try:
        return args.func(args)
    except CommandError as exc:
        args.parser.error(str(exc))  # usage and message, exit status 2
    except (CorpusError, ValueError, OSError) as exc:  # OSError covers network errors (URLError)
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
