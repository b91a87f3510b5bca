"""Collection rules for ``pytest --nbval`` typed at the repository root: the unit tests and the
numbered notebooks (``notebooks/NN_name.ipynb``), never executed copies left lying around
(``out.ipynb``, papermill outputs, checkpoints). A notebook that reads the corpora says so in
its metadata (``"sier": {"reads_corpora": true}``) and is skipped, with the fix, where either
corpus is missing from the folder the notebooks read (``sierlib.paths.data_root``: ``SIER_DATA``,
else ``data/``)."""
import json
import re
from pathlib import Path

import pytest

from sierlib.paths import data_root
from sierlib.registry import PAPER_CORPORA

NUMBERED = re.compile(r"^\d\d_[\w-]+\.ipynb$")


def pytest_ignore_collect(collection_path: Path, config):
    if collection_path.suffix == ".ipynb":
        return not (collection_path.parent.name == "notebooks" and NUMBERED.match(collection_path.name))
    return None


def reads_corpora(notebook: Path) -> bool:
    return bool(json.loads(notebook.read_text()).get("metadata", {}).get("sier", {}).get("reads_corpora"))


def pytest_collection_modifyitems(config, items):
    root = data_root()
    missing = [c for c in PAPER_CORPORA if not (root / c).is_dir()]
    if not missing:
        return
    notebooks = {Path(str(item.path)) for item in items if item.path.suffix == ".ipynb"}
    skipped = {nb for nb in notebooks if reads_corpora(nb)}
    for item in items:
        if Path(str(item.path)) in skipped:
            item.add_marker(pytest.mark.skip(reason=f"{item.path.name} reads the corpora and {' and '.join(missing)} "
                                                    f"{'is' if len(missing) == 1 else 'are'} not in {root}: set SIER_DATA to the folder holding "
                                                    f"emodb/ and ravdess/, or fetch with `sier download "
                                                    f"{' '.join(missing)}`"))
