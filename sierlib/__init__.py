"""sierlib: speaker-invariant speech emotion recognition with adversarial learning.

A thin library behind the notebooks: corpora (``load_metadata``), features
(``extract_features``), folds (``make_folds``), the network (``model``) and training (``train``).
"""
__version__ = "0.1.0"

from .corpora import CorpusError, load_metadata, data_root  # noqa: F401
from .folds import make_folds, split_metadata, fold_speakers  # noqa: F401
