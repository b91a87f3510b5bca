"""The paper's own numbers and grids (Leow et al.): the tables it reports, the settings it sweeps.
Ground floor: imports nothing of sierlib. Every module that compares with the paper reads them here.
"""
from __future__ import annotations

# Table 1 (accuracy %, mean +- std over folds), keyed by (CNN blocks, gamma or None = without AL).
PAPER_TABLE1 = {
    "emodb": {(1, None): (67.3, 6.5), (1, 1.25): (72.1, 8.4), (1, 2.5): (70.6, 5.9), (1, 3.33): (73.6, 7.1),
              (2, None): (68.3, 9.6), (2, 1.25): (68.0, 8.0), (2, 2.5): (71.0, 7.6), (2, 3.33): (67.6, 7.4),
              (3, None): (65.7, 10.6), (3, 1.25): (65.1, 7.2), (3, 2.5): (66.0, 5.5), (3, 3.33): (66.6, 5.6),
              (4, None): (59.6, 5.3), (4, 1.25): (66.0, 6.9), (4, 2.5): (62.9, 9.6), (4, 3.33): (65.2, 7.2)},
    "ravdess": {(1, None): (56.3, 8.1), (1, 1.25): (60.6, 10.3), (1, 2.5): (61.2, 8.4), (1, 3.33): (60.6, 10.6),
                (2, None): (56.3, 9.8), (2, 1.25): (59.4, 7.6), (2, 2.5): (60.9, 8.5), (2, 3.33): (60.5, 9.9),
                (3, None): (55.8, 8.8), (3, 1.25): (53.7, 6.7), (3, 2.5): (59.4, 7.6), (3, 3.33): (58.9, 8.5),
                (4, None): (54.0, 11.3), (4, 1.25): (54.2, 8.7), (4, 2.5): (54.1, 9.3), (4, 3.33): (51.3, 11.1)},
}
PAPER_TABLE2 = {  # accuracy %, AL, from the paper's Table 2
    "emodb": {"tdnn_bilstm": (61.4, 8.7), "1dcnn_gru": (44.2, 4.7), "2dcnn_bigru": (73.6, 7.1)},
    "ravdess": {"tdnn_bilstm": (52.4, 10.9), "1dcnn_gru": (30.5, 4.6), "2dcnn_bigru": (61.2, 8.4)},
}
BEST_GAMMA = {"emodb": 3.33, "ravdess": 2.5}  # the paper's best AL setting (1 CNN block) per corpus
# The cells of Table 1 and the encoders of Table 2 (a corpus outside the paper gets the same ones).
TABLE1_CELLS = tuple(PAPER_TABLE1["emodb"])
TABLE2_ENCODERS = tuple(PAPER_TABLE2["emodb"])
# The sweep of Table 1, and the hyperparameter grid of the paper's section 4.2.
GAMMAS = (None, 1.25, 2.5, 3.33)
DEPTHS = (1, 2, 3, 4)
GRID = {"kernel_size": (5, 2), "n_filters": (128, 64), "gru_hidden": (256, 128), "fc_hidden": (128, 64)}
# Table 1's best setting per corpus (1 CNN block, the paper's best gamma) and the same network
# without AL: the paper's headline comparison, as (CNN blocks, gamma).
HEADLINE = {corpus: [(1, gamma), (1, None)] for corpus, gamma in BEST_GAMMA.items()}
