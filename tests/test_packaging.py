"""environment.yml (conda users) and pyproject.toml (pip users) list the same dependencies."""
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
