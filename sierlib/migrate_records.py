"""Convert run records to the current layout (:mod:`sierlib.records`) and names.

``python -m sierlib.migrate_records [RUNS_DIR ...]`` (default ``results/runs``) rewrites every
record of an older layout -- parameters under ``params`` with the feature parameters, an
earlier encoder's sizes and the requested device mixed in -- as ``config`` (the
:class:`~sierlib.config.RunConfig` fields), ``features`` and ``encoder_sizes``, renames it to
its configuration's name, and renames its checkpoint under ``cache/checkpoints`` and its row in
``results/probe_<corpus>.csv`` alongside. Records already in the current layout and name are
left as they are, so running it again changes nothing. Each file is written atomically before
the old one is removed.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from .config import RunConfig
from .records import FORMAT, REFERENCE_RUNS, RESULTS, write_csv_atomic, write_json_atomic

# Entries of an old record's "params" that are not run configuration: derived from it
# (features, encoder_sizes) or where it ran (device: the device used is recorded separately).
NOT_CONFIG = ("features", "encoder_sizes", "device")


def migrate_record(rec: dict) -> dict:
    """The current-layout version of a finished record (a copy; unchanged if already current)."""
    if rec.get("format") == FORMAT:
        return dict(rec)
    params = rec["params"]
    # the preprocessing settings that are run fields now came with the feature parameters
    preprocessing = {k: params["features"][k] for k in ("highpass_hz", "top_db")}
    config = RunConfig.from_dict({**{k: v for k, v in params.items() if k not in NOT_CONFIG}, **preprocessing})
    if config.feature_params != params["features"]:
        raise ValueError(f"record {rec['name']}: its features {params['features']} are not what its configuration "
                         f"reads ({config.feature_params})")
    if params.get("encoder_sizes", config.encoder_sizes) != config.encoder_sizes:
        raise ValueError(f"record {rec['name']}: its encoder sizes {params['encoder_sizes']} are not the "
                         f"current defaults {config.encoder_sizes}")
    out = {"status": rec["status"], "format": FORMAT, "name": config.name, "config": config.to_dict(),
           "features": params["features"]}
    if config.encoder_sizes is not None:
        out["encoder_sizes"] = config.encoder_sizes
    out.update({k: v for k, v in rec.items() if k not in ("status", "name", "params", "checkpoint")})
    return out


def migrate_folder(runs_dir=None, checkpoints=None, results_dir=None) -> dict[str, str]:
    """Migrate every record under ``runs_dir``; returns {old name: new name} of those renamed."""
    runs_dir = Path(runs_dir) if runs_dir is not None else REFERENCE_RUNS
    checkpoints = Path(checkpoints) if checkpoints is not None else RESULTS.parent / "cache" / "checkpoints"
    results_dir = Path(results_dir) if results_dir is not None else RESULTS
    renamed = {}
    for path in sorted(runs_dir.glob("*/*.json")):
        rec = json.loads(path.read_text())
        if rec.get("status") != "finished":
            continue
        new = migrate_record(rec)
        target = path.with_name(f"{new['name']}.json")
        if new == rec and target == path:
            continue
        if target != path and target.exists() and json.loads(target.read_text()) != new:
            raise ValueError(f"{path.name} would become {target.name}, which exists with other content: two records "
                             f"of one run; look at both and keep one")
        write_json_atomic(new, target)
        if target != path:
            path.unlink()
            renamed[path.stem] = new["name"]
            ckpt = checkpoints / path.parent.name / f"{path.stem}.pt"
            if ckpt.is_file():
                ckpt.rename(ckpt.with_name(f"{new['name']}.pt"))
    for probe in results_dir.glob("probe_*.csv"):
        table = pd.read_csv(probe)
        if "run" in table and table["run"].isin(renamed).any():
            write_csv_atomic(table.assign(run=table["run"].replace(renamed)), probe)
    return renamed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sierlib.migrate_records", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs_dirs", nargs="*", default=[str(REFERENCE_RUNS)])
    args = ap.parse_args(argv)
    for folder in args.runs_dirs:
        renamed = migrate_folder(folder)
        print(f"{folder}: {len(renamed)} records migrated and renamed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
