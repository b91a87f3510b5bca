"""Collection rules for ``pytest --nbval`` typed at the repository root: the unit tests and the
numbered notebooks (``notebooks/NN_name.ipynb``), never executed copies left lying around
(``out.ipynb``, papermill outputs, checkpoints)."""
import re
from pathlib import Path

NUMBERED = re.compile(r"^\d\d_[\w-]+\.ipynb$")


def pytest_ignore_collect(collection_path: Path, config):
    if collection_path.suffix == ".ipynb":
        return not (collection_path.parent.name == "notebooks" and NUMBERED.match(collection_path.name))
    return None
