"""environment.yml (conda users) and pyproject.toml (pip users) list the same dependencies."""
import json
import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def normalise(spec: str) -> str:
    return re.sub(r"\s+", "", spec).lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_deps = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    from_env = {normalise(d) for d in pip_deps if not d.startswith("-e")}
    assert from_env == {normalise(d) for d in project["dependencies"]}
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    major_minor = python.split("=")[1]
    assert re.match(r">=3\.(\d+)", project["requires-python"]) and int(major_minor.split(".")[1]) >= 10


def test_torch_is_pinned_to_the_cpu_build_release():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch==2.13.0" in deps  # an unpinned torch pulls a multi-GB CUDA build


def test_the_notebooks_that_read_the_corpora_are_skipped_with_the_fix_where_they_are_absent(tmp_path):
    """``pytest --nbval`` on a clone without the corpora skips 01 (it reads them) and says how to
    get them, rather than failing its cells; a notebook that reads only records (06) still runs."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "SIER_DATA": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "--nbval", "-rs", "-p", "no:cacheprovider",
                          "notebooks/01_data_exploration.ipynb"], cwd=root, env=env, capture_output=True, text=True)
    assert run.returncode == 0 and " passed" not in run.stdout, run.stdout
    assert f"emodb and ravdess are not in {tmp_path}: set SIER_DATA" in run.stdout
    flagged = {p.name for p in (root / "notebooks").glob("[0-9][0-9]_*.ipynb")
               if json.loads(p.read_text())["metadata"].get("sier", {}).get("reads_corpora")}
    assert flagged == {"01_data_exploration.ipynb", "02_preprocessing.ipynb", "03_model.ipynb", "09_predict.ipynb"}
    readme = (root / "README.md").read_text()
    assert "read them (01, 02, 03, 09:" in readme  # the README names the same notebooks
