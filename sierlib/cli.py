"""Command line: ``sier <command>`` (or ``python -m sierlib.cli``). ``sier --help`` lists commands."""
from __future__ import annotations

import argparse
import sys

from .corpora import PRETTY, CorpusError


def cmd_summary(args) -> None:
    """Corpus summary and fold tables (writes results/folds/<corpus>.csv); reads every recording
    once to check that it can carry emotion."""
    import pandas as pd

    from .corpora import check_recordings, corpus_info, load_metadata
    from .folds import fold_grid, make_folds, write_fold_table

    pd.set_option("display.width", 200)
    for corpus in args.corpora or ["emodb", "ravdess"]:
        meta = load_metadata(corpus, args.data_root)
        check_recordings(meta)
        print(f"\n== {corpus_info(corpus).title}: {len(meta)} utterances, {meta.speaker.nunique()} speakers, "
              f"{meta.duration.sum() / 60:.1f} min ==")
        print(pd.crosstab(meta.emotion, meta.gender, margins=True, margins_name="all").to_string())
        folds = make_folds(meta)
        path = write_fold_table(folds, corpus)
        print(f"\nFolds ({folds.fold.nunique()}, written to {path}):")
        print(fold_grid(folds).to_string())


def cmd_download(args) -> None:
    from .download import SOURCES, download_corpus

    for corpus in args.corpora:
        print(f"{PRETTY[corpus]} ({SOURCES[corpus]['licence']})")
        path = download_corpus(corpus, args.data_root, url=args.url, force=args.force)
        print(f"verified: {path}")


def cmd_verify(args) -> None:
    from .download import verify_corpus

    for corpus in args.corpora:
        verify_corpus(corpus, args.data_root)
        print(f"{PRETTY[corpus]}: every file matches its sha256")


def cmd_synthetic(args) -> None:
    from .synthetic import make_synthetic_corpus

    print(make_synthetic_corpus(args.data_root, overwrite=True))


def cmd_reproduce(args) -> None:
    from .experiments import reproduce_headline

    reproduce_headline(corpus=args.corpus, epochs=args.epochs, folds=args.folds, data_root=args.data_root,
                       device=args.device)


def cmd_pack(args) -> None:
    """Write a corpus's metadata and features to a folder, for `sier sweep --in-process --pack`."""
    from .sweep import write_pack

    variants = {}
    if args.recipe:
        from .recipe import feature_variants, study

        found = study()
        decided = found.decisions.stage.nunique() if len(found.decisions) else 0
        variants = {corpus: feature_variants(found.recipe, decided=decided, corpus=corpus, encoders=args.encoders)
                    for corpus in args.corpora}
    for corpus in args.corpora:
        for path in write_pack(args.folder, corpus, args.encoders, args.data_root, variants.get(corpus, ())):
            print(f"wrote {path}")


def cmd_tables(args) -> None:
    """Regenerate results/runs_<corpus>.csv and Tables 1 and 2 from the reference records."""
    from .results import write_tables

    for path in write_tables():
        print(f"wrote {path}")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["sweep"]:  # the sweep has its own options: python -m sierlib.sweep --help
        from .sweep import main as sweep_main

        return sweep_main(argv[1:])
    if argv[:1] == ["recipe"]:  # and the recipe study: sier recipe --help
        from .recipe import main as recipe_main

        return recipe_main(argv[1:])
    if argv[:1] == ["predict"]:  # so has predict: sier predict --help
        from .predict import main as predict_main

        return predict_main(argv[1:])
    # --data-root is accepted before or after the command (sier --data-root D download emodb,
    # sier download emodb --data-root D)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-root", default=argparse.SUPPRESS,
                        help="folder holding the corpora (default: $SIER_DATA or data/)")
    ap = argparse.ArgumentParser(prog="sier", description=__doc__, parents=[common])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser(parents=[common], name="summary", help=cmd_summary.__doc__)
    p.add_argument("corpora", nargs="*",
                   help="emodb, ravdess, synthetic or the path of a manifest .csv (default: emodb ravdess)")
    p.set_defaults(func=cmd_summary)
    p = sub.add_parser(parents=[common], name="download", help="download a corpus from its official source and verify it")
    p.add_argument("corpora", nargs="+", choices=["emodb", "ravdess"])
    p.add_argument("--url", default=None, help="a mirror instead of the official source")
    p.add_argument("--force", action="store_true", help="replace an existing copy")
    p.set_defaults(func=cmd_download)
    p = sub.add_parser(parents=[common], name="verify", help="check every file of a corpus against the shipped sha256 list")
    p.add_argument("corpora", nargs="+", choices=["emodb", "ravdess"])
    p.set_defaults(func=cmd_verify)
    p = sub.add_parser(parents=[common], name="synthetic", help="generate the synthetic test corpus under the data root")
    p.set_defaults(func=cmd_synthetic)
    sub.add_parser(name="sweep", help="run 04_train over folds x gamma x depth (see `sier sweep --help`)")
    sub.add_parser(name="recipe", help="the recipe study on validation speakers (see `sier recipe --help`)")
    sub.add_parser(name="predict", help="the emotion of recordings, by a network saved with save_model "
                                        "(see `sier predict --help`)")
    p = sub.add_parser(parents=[common], name="reproduce", help="the paper's headline experiment (Table 1 best setting vs without AL)")
    p.add_argument("--corpus", default="emodb", choices=["emodb", "ravdess"])
    p.add_argument("--epochs", type=int, default=None, help="override the training epochs")
    p.add_argument("--folds", type=int, nargs="*", default=None, help="only these folds")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_reproduce)
    p = sub.add_parser(parents=[common], name="pack", help=cmd_pack.__doc__)
    p.add_argument("folder")
    p.add_argument("corpora", nargs="+", choices=["emodb", "ravdess"])
    p.add_argument("--encoders", nargs="+", default=["2dcnn_bigru"])
    p.add_argument("--recipe", action="store_true",
                   help="also the features that the recipe so far reads (for `sier recipe tables`, per encoder) "
                        "and the variants (high-pass, trimming, speed) its undecided stages can need next "
                        "(see `sier recipe`)")
    p.set_defaults(func=cmd_pack)
    p = sub.add_parser(name="tables", help=cmd_tables.__doc__)
    p.set_defaults(func=cmd_tables)
    args = ap.parse_args(argv)
    args.data_root = getattr(args, "data_root", None)
    try:
        args.func(args)
    except (CorpusError, ValueError, OSError) as exc:  # OSError covers network errors (URLError)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
