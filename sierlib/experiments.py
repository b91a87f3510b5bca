"""Many runs at once: the headline experiment (the README's main command)."""
from __future__ import annotations

import pandas as pd
from tqdm.auto import tqdm

from .corpora import PRETTY, REPO_ROOT, load_metadata
from .features import extract_features
from .results import PAPER_TABLE1, fmt, summarise
from .train import N_FOLDS, make_params, read_record, run_name, train_run

CHECKPOINTS = REPO_ROOT / "cache" / "checkpoints"  # git-ignored; the probe reads them
HEADLINE = {"emodb": [(1, 3.33), (1, None)], "ravdess": [(1, 2.5), (1, None)]}


def reproduce_headline(corpus: str = "emodb", epochs: int | None = None, folds=None, data_root=None,
                       device: str = "auto", out_dir=None) -> pd.DataFrame:
    """Train Table 1's best setting and the same network without AL on every fold (finished runs
    are read back, not retrained), and print mean +- std over folds beside the paper."""
    meta = load_metadata(corpus, data_root)
    feats = extract_features(meta)
    folds = list(range(N_FOLDS[corpus])) if folds is None else list(folds)
    out_dir = out_dir or REPO_ROOT / "results" / "runs"
    jobs = [(depth, gamma, fold) for depth, gamma in HEADLINE[corpus] for fold in folds]
    records = []
    bar = tqdm(jobs, desc=f"{PRETTY[corpus]} headline runs", unit="run")
    for depth, gamma, fold in bar:
        overrides = {"epochs": epochs} if epochs is not None else {}
        params = make_params(corpus=corpus, fold=fold, gamma=gamma, n_cnn_layers=depth, device=device,
                             features=feats.params, **overrides)
        path = out_dir / corpus / f"{run_name(params)}.json"
        rec = read_record(path)
        if rec is None:
            bar.set_postfix(fold=fold, gamma=gamma)
            kwargs = {k: v for k, v in params.items() if k not in ("corpus", "fold", "gamma", "features")}
            rec = train_run(corpus, fold, gamma, meta=meta, feats=feats, feature_params=feats.params,
                            out_dir=out_dir, progress=False, checkpoint_dir=CHECKPOINTS, **kwargs)
        records.append({**{k: v for k, v in rec["params"].items() if k != "features"},
                        "test_accuracy": rec["test_accuracy"], "test_uar": rec["test_uar"]})
    runs = pd.DataFrame(records)
    table = summarise(runs, ["n_cnn_layers", "gamma"])
    table["paper accuracy"] = [fmt(*PAPER_TABLE1[corpus][(d, None if g == "without AL" else g)])
                               for d, g in zip(table.n_cnn_layers, table.gamma)]
    table["our accuracy"] = [fmt(m, s) for m, s in zip(table.acc_mean, table.acc_std)]
    table["our UAR"] = [fmt(m, s) for m, s in zip(table.uar_mean, table.uar_std)]
    print(f"\n{PRETTY[corpus]}, {len(folds)} folds, test speakers (mean ± std over folds, %):")
    print(table[["n_cnn_layers", "gamma", "folds", "our accuracy", "our UAR", "paper accuracy"]].to_string(index=False))
    return table
