"""One run's configuration: the only home of run parameters, their defaults and their checks.

A run is one corpus, one fold and one setting. :class:`RunConfig` says *what* is trained (every
field enters the run's name and record); :class:`RunOptions` says *how and where* it runs
(device, threads, folders), which changes neither the result's meaning nor its name.
It imports no torch and reads no corpus: what it checks against (the corpora, the encoders, the
feature parameters) comes from :mod:`sierlib.registry`, below it.
``notebooks/04_train.ipynb``'s parameters cell mirrors both (a test checks names and defaults),
the sweep sends the notebook exactly those parameters, and ``train``, ``experiments``,
``probe`` and ``benchmarks`` all take a :class:`RunConfig`.

Adding a run parameter is one field with its default and its check (``_check`` below). The
default must reproduce the behaviour from before the field existed: a run's name hashes only
the fields that differ from their defaults, so existing names (and the committed records that
carry them) stay valid. For the same reason a default never changes; a test checks every
committed record's name against its configuration.

Choices where the paper is silent, all fields here: Adam, learning rate 1e-3, batch 16, 30
epochs, no weight decay, dropout 0.3; the architecture default is the cheapest point of the
paper's section 4.2 grid (kernel 5, 64 filters, GRU 128, FC 64).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .paths import sha256_file
from .registry import CORPORA, ENCODER_INFO, PAPER_CORPORA, check_feature_params, corpus_name, is_manifest


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _int_in(lo, hi):
    return (lambda v: _is_int(v) and lo <= v <= hi), f"an int in {lo}..{hi}"


def _one_of(*choices):
    return (lambda v: any(v == c and type(v) is type(c) for c in choices)), "one of " + ", ".join(map(repr, choices))


SELECTIONS = ("best_val", "swa", "ema")


def _param(default, rule_and_accepts, doc: str):
    """A field with its default, its check (a predicate and the words that say what it accepts)
    and a one-line description."""
    rule, accepts = rule_and_accepts
    return field(default=default, metadata={"rule": rule, "accepts": accepts, "doc": doc})


def _corpus_rule(v) -> bool:
    """A built-in corpus's name, or the path of a manifest CSV that exists (see sierlib.manifest)."""
    if is_manifest(v):
        return Path(v).expanduser().is_file()
    return isinstance(v, str) and v in CORPORA


# the 2D CNN biGRU's own sizes: other encoders have theirs (recorded as ``encoder_sizes``)
CNN2D_FIELDS = ("n_cnn_layers", "kernel_size", "n_filters", "gru_hidden", "conv_stride", "conv_dropout", "pooling",
                "front_end")
FLOAT_FIELDS = ("gamma", "dropout", "lr", "weight_decay", "conv_dropout", "ema_decay", "mixup_alpha", "highpass_hz",
                "top_db", "speed_perturbation", "lambda_max", "adversary_lr_scale", "speaker_holdout")
# the speaker adversary's own knobs: without AL there is no speaker head for them to change
ADVERSARY_FIELDS = ("lambda_max", "adversary_warmup_epochs", "adversary_lr_scale", "adversary_head_steps",
                    "speaker_fc_hidden")


@dataclass(frozen=True)
class RunConfig:
    """What one run trains and evaluates. Every field is checked when the config is made; a
    wrong type or range raises ValueError naming the field and what it accepts."""

    corpus: str = _param("emodb", (_corpus_rule, "'emodb', 'ravdess', 'synthetic' or the path of a manifest "
                                                 ".csv (columns file, speaker, gender, emotion; see sierlib.manifest)"),
                         "emodb, ravdess, synthetic, or the path of a manifest CSV of your own corpus")
    fold: int = _param(0, (lambda v: _is_int(v) and v >= 0, "an int >= 0"),
                       "0-4 on Emo-DB, 0-11 on RAVDESS")
    test_corpus: str | None = _param(None, (lambda v: v is None or v in PAPER_CORPORA, "None, 'emodb' or 'ravdess'"),
                                     "cross-corpus: test on every speaker of this other corpus, on the emotions the "
                                     "two share, and train on every speaker of corpus but the fold's validation pair "
                                     "(None: the fold's own test speakers)")
    gamma: float | None = _param(3.33, (lambda v: v is None or (_is_num(v) and math.isfinite(v) and v > 0),
                                        "a positive number, or None for the network without AL"),
                                 "annealing of the adversarial weight (None: without AL)")
    encoder: str = _param("2dcnn_bigru", (lambda v: v in ENCODER_INFO, "one of " + ", ".join(map(repr, ENCODER_INFO))),
                          "2dcnn_bigru (the paper's), tdnn_bilstm or 1dcnn_gru (Table 2's earlier encoders)")
    n_cnn_layers: int = _param(1, _int_in(1, 4), "CNN blocks of the 2D CNN biGRU")
    kernel_size: int = _param(5, _int_in(1, 11), "convolution kernel (paper grid: 5 or 2)")
    n_filters: int = _param(64, _int_in(1, 4096), "convolution filters (128 or 64)")
    gru_hidden: int = _param(128, _int_in(1, 4096), "GRU units per direction (256 or 128)")
    fc_hidden: int = _param(64, _int_in(1, 4096), "units of both classifiers' hidden layers (128 or 64)")
    dropout: float = _param(0.3, (lambda v: _is_num(v) and 0 <= v < 1, "a number in [0, 1)"),
                            "dropout of the whole network")
    epochs: int = _param(30, _int_in(1, 10000), "training epochs")
    batch_size: int = _param(16, _int_in(2, 65536), "utterances per batch")
    lr: float = _param(1e-3, (lambda v: _is_num(v) and 0 < v < 10, "a positive number below 10"),
                       "Adam's learning rate")
    weight_decay: float = _param(0.0, (lambda v: _is_num(v) and v >= 0, "a number >= 0"), "Adam's weight decay")
    seed: int = _param(0, _int_in(0, 2**32 - 1), "seed of initialisation and batch order")
    # --- the recipe's knobs (issue 11); each default is the paper-literal behaviour ---
    lengths: str = _param("padded", _one_of("padded", "masked"),
                          "padded: every input zero-padded to the corpus's longest, as the paper; masked: "
                          "true lengths (standardiser on speech frames, masked BatchNorm and pooling, packed GRU, "
                          "length-bucketed batches)")
    conv_stride: int = _param(2, _one_of(1, 2), "stride of the 2D convolutions: 2 as the paper writes, 1 the "
                                                "pool-only reading")
    conv_dropout: float | None = _param(None, (lambda v: v is None or (_is_num(v) and 0 <= v < 1),
                                               "None (= dropout) or a number in [0, 1)"),
                                        "dropout inside the convolution blocks")
    selection: str = _param("best_val", _one_of(*SELECTIONS),
                            "which weights are evaluated on test: best_val (the epoch with the best validation "
                            "accuracy), swa (the average of the last swa_epochs epochs) or ema (an exponential "
                            "moving average of the weights); every run records all three")
    swa_epochs: int = _param(5, _int_in(1, 10000), "epochs averaged by selection swa")
    ema_decay: float = _param(0.99, (lambda v: _is_num(v) and 0 < v < 1, "a number in (0, 1)"),
                              "decay per step of selection ema")
    lr_schedule: str = _param("constant", _one_of("constant", "cosine"),
                              "constant, or cosine decay to 0 after warmup_epochs of linear warm-up")
    warmup_epochs: int = _param(0, _int_in(0, 10000), "linear warm-up of the cosine schedule")
    time_masks: int = _param(0, _int_in(0, 10), "SpecAugment: time masks per training utterance")
    time_mask_frames: int = _param(10, _int_in(1, 1000), "SpecAugment: longest time mask, frames")
    freq_masks: int = _param(0, _int_in(0, 10), "SpecAugment: feature-row masks per training utterance")
    freq_mask_rows: int = _param(4, _int_in(1, 100), "SpecAugment: widest feature-row mask")
    mixup_alpha: float = _param(0.0, (lambda v: _is_num(v) and v >= 0, "a number >= 0 (0: off)"),
                                "mixup of training batches, Beta(alpha, alpha)")
    speed_perturbation: float = _param(0.0, (lambda v: _is_num(v) and (v == 0 or 0.01 <= v <= 0.3),
                                             "0 (off) or a number in [0.01, 0.3]"),
                                       "s: each epoch, each training utterance at speed 1-s, 1 or 1+s (features "
                                       "cached per factor); needs lengths='masked'")
    highpass_hz: float | None = _param(80.0, (lambda v: v is None or (_is_num(v) and 0 < v < 1000),
                                              "None (off) or a frequency in (0, 1000) Hz"),
                                       "the high-pass 'background noise' filter of preprocessing")
    normalisation: str = _param("train_speakers", _one_of("train_speakers", "per_speaker_offline"),
                                "train_speakers: one standardiser fitted on the training speakers (the main "
                                "tables); per_speaker_offline: every speaker, the test speakers included, "
                                "standardised with its own audio, as some papers report (kept apart)")
    top_db: float = _param(30.0, (lambda v: _is_num(v) and 0 < v <= 120, "a number of decibels in (0, 120]"),
                           "silence trimming threshold below the peak")
    # --- the front end and the pooling (issue 29); each default is the paper ---
    front_end: str = _param("mfcc", _one_of("mfcc", "logmel_deltas"),
                            "mfcc: n_mfcc MFCCs, one input channel (the paper); logmel_deltas: 64 log-Mel filterbank "
                            "energies with their deltas and delta-deltas as three input channels (2dcnn_bigru only)")
    n_mfcc: int = _param(20, _int_in(1, 128), "MFCCs per frame (the encoders that read MFCCs)")
    n_fft: int = _param(2048, _int_in(64, 8192), "analysis window in samples at 22.05 kHz: 2048 = 93 ms (the paper), "
                                                  "512 = 23 ms")
    hop_length: int = _param(512, _int_in(16, 4096), "frame hop in samples: 512 = 23 ms (the paper), 220 = 10 ms")
    utterance_norm: str = _param("none", _one_of("none", "mean", "mean_var"),
                                 "after the training speakers' standardiser, each utterance's own mean (mean) or mean "
                                 "and variance (mean_var) over its speech frames removed: computed on the utterance "
                                 "alone, so legitimate at test time; needs lengths='masked'")
    pooling: str = _param("stats", _one_of("stats", "attentive"),
                          "statistics pooling (the paper) or attentive statistics pooling (Okabe et al. 2018), "
                          "2dcnn_bigru only")
    # --- the adversary's knobs (issue 26); each default is the paper ---
    lambda_max: float = _param(1.0, (lambda v: _is_num(v) and 0 <= v <= 100, "a number in [0, 100]"),
                               "scale of the adversarial weight: lambda(p) = lambda_max (2 / (1 + e^(-gamma p)) - 1); "
                               "0 is the capacity control: the speaker head learns, the encoder is not pushed")
    adversary_warmup_epochs: int = _param(0, _int_in(0, 10000),
                                          "epochs at the start with lambda held at 0, so the speaker head learns "
                                          "before it is reversed")
    adversary_lr_scale: float = _param(1.0, (lambda v: _is_num(v) and 0 < v <= 100, "a number in (0, 100]"),
                                       "learning-rate multiplier of the speaker head (the adversary's strength)")
    adversary_head_steps: int = _param(1, _int_in(1, 100),
                                       "speaker-head updates per encoder update: after each joint step the head "
                                       "alone takes k - 1 more on the batch's embeddings, so it keeps up with the "
                                       "encoder it is reversed into")
    speaker_fc_hidden: int | None = _param(None, (lambda v: v is None or (_is_int(v) and 1 <= v <= 4096),
                                                  "None (= fc_hidden) or an int in 1..4096"),
                                           "units of the speaker head's hidden layers")
    speaker_holdout: float = _param(0.0, (lambda v: _is_num(v) and (v == 0 or 0.05 <= v <= 0.5),
                                          "0 (off) or a number in [0.05, 0.5]"),
                                    "share of each training speaker's utterances held out of training (stratified "
                                    "by emotion): a probe run, which records the speaker information of its "
                                    "embedding (sierlib.speakerinfo)")

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not f.metadata["rule"](value):
                accepts = f.metadata["accepts"]
                if f.name == "corpus" and is_manifest(value):
                    raise ValueError(f"corpus: the manifest {str(value)!r} does not exist (looked for "
                                     f"{Path(value).expanduser().resolve()}; a relative path is taken from the "
                                     f"current folder). Give the path of an existing manifest CSV.")
                raise ValueError(f"{f.name} must be {accepts}; got {value!r}")
            if f.name == "corpus" and is_manifest(value) and corpus_name(value) in CORPORA:
                # checked by name here, as reading the manifest does: its runs would be named like the built-in's
                raise ValueError(f"corpus: the manifest {str(value)!r} has the name of the built-in corpus "
                                 f"{corpus_name(value)!r}; rename the file")
            if f.name in FLOAT_FIELDS and value is not None:
                object.__setattr__(self, f.name, float(value))  # 1 and 1.0 are one setting, one name
            elif _is_int(value):
                object.__setattr__(self, f.name, int(value))
        if is_manifest(self.corpus):
            # one absolute path: the run then finds its corpus from any folder (papermill kernels,
            # sweep workers), and the record says exactly which file it was. Its folds are known
            # once it is read: a manifest's fold range is checked where the folds are made.
            object.__setattr__(self, "corpus", str(Path(self.corpus).expanduser().resolve()))
        n_folds = None if is_manifest(self.corpus) else CORPORA[self.corpus].n_folds
        if n_folds is not None and self.fold >= n_folds:
            raise ValueError(f"fold must be an int in 0..{n_folds - 1} for {self.corpus}; got {self.fold!r}")
        # a knob that changes nothing in this run must stay at its default: one network, one name
        for knob, active in (("warmup_epochs", self.lr_schedule == "cosine"), ("time_mask_frames", self.time_masks > 0),
                             ("freq_mask_rows", self.freq_masks > 0)):
            if not active and getattr(self, knob) != DEFAULTS[knob]:
                raise ValueError(f"{knob}={getattr(self, knob)!r} has no effect here ({'lr_schedule is constant' if knob == 'warmup_epochs' else 'no masks of that kind'}); "
                                 f"leave it at its default {DEFAULTS[knob]!r}")
        if not self.al:
            changed = [f"{k}={getattr(self, k)!r}" for k in ADVERSARY_FIELDS if getattr(self, k) != DEFAULTS[k]]
            if changed:
                raise ValueError(f"{', '.join(changed)}: the adversary's knobs need a speaker head, which only AL "
                                 f"runs have; set gamma (lambda_max=0 gives the capacity control) or leave them at "
                                 f"their defaults")
        if self.test_corpus is not None and (self.test_corpus == self.corpus or self.corpus not in PAPER_CORPORA
                                             or self.normalisation != "train_speakers" or self.lengths != "masked"
                                             or self.speaker_holdout):
            # padded inputs would be padded to another corpus's longest recording; the two corpora's
            # speaker ids overlap ('03' is in both), which a probe run's speaker measures cannot tell apart
            raise ValueError(f"test_corpus={self.test_corpus!r} needs corpus to be the other built-in corpus "
                             f"(got {self.corpus!r}), lengths='masked' (got {self.lengths!r}), normalisation="
                             f"'train_speakers' (got {self.normalisation!r}) and speaker_holdout=0 (got "
                             f"{self.speaker_holdout!r}): a cross-corpus run trains on one of Emo-DB and RAVDESS "
                             f"and tests on the other")
        if self.utterance_norm != "none" and self.lengths != "masked":
            raise ValueError(f"utterance_norm={self.utterance_norm!r} normalises each utterance over its speech frames, "
                             f"which only length-aware runs know: set lengths='masked' too (or utterance_norm='none')")
        if self.hop_length > self.n_fft:
            raise ValueError(f"hop_length={self.hop_length!r} is longer than the window n_fft={self.n_fft!r}: frames "
                             f"would skip audio; choose hop_length <= n_fft")
        if self.feature_params.get("kind", "mfcc") != "mfcc" and self.n_mfcc != DEFAULTS["n_mfcc"]:
            raise ValueError(f"n_mfcc={self.n_mfcc!r}: this run (encoder {self.encoder!r}, front_end "
                             f"{self.front_end!r}) reads log-Mel features, not MFCCs; leave n_mfcc at its default")
        if self.speed_perturbation and self.lengths != "masked":
            raise ValueError(f"speed_perturbation={self.speed_perturbation!r} changes each utterance's length, which "
                             f"only length-aware runs follow: set lengths='masked' too (or speed_perturbation=0)")
        if self.encoder != "2dcnn_bigru":
            changed = [f"{k}={getattr(self, k)!r}" for k in CNN2D_FIELDS if getattr(self, k) != DEFAULTS[k]]
            if changed:
                raise ValueError(f"{', '.join(changed)}: {', '.join(CNN2D_FIELDS)} size the 2dcnn_bigru encoder "
                                 f"only; leave them at their defaults for encoder {self.encoder!r}")

    # --- derived fields -------------------------------------------------------------------
    @property
    def al(self) -> bool:
        """True for a network with the adversarial speaker branch."""
        return self.gamma is not None

    @property
    def feature_params(self) -> dict:
        """The feature parameters this run reads (:func:`sierlib.registry.check_feature_params`):
        the kind follows the encoder; the high-pass filter, the trimming threshold, the window,
        the hop and (for MFCCs) their number are fields of the run; the sample rate is the
        project's."""
        kind = "logmel" if self.front_end == "logmel_deltas" else ENCODER_INFO[self.encoder].feature_kind
        return check_feature_params(kind=kind, highpass_hz=self.highpass_hz, top_db=self.top_db, n_fft=self.n_fft,
                                    hop_length=self.hop_length, **({"n_mfcc": self.n_mfcc} if kind == "mfcc" else {}))

    @property
    def speed_factors(self) -> tuple[float, ...]:
        """The perturbed speeds of the training utterances besides 1 (none when off)."""
        s = self.speed_perturbation
        return (round(1 - s, 6), round(1 + s, 6)) if s else ()

    @property
    def encoder_sizes(self) -> dict | None:
        """An earlier encoder's own (assumed) sizes, JSON-ready; None for the 2D CNN biGRU."""
        sizes = ENCODER_INFO[self.encoder].sizes
        return None if sizes is None else json.loads(json.dumps(sizes))  # a copy: the registry stays as it is

    @property
    def name(self) -> str:
        """The run's name (its record's file name): readable settings and a hash.

        The hash covers the fields that differ from their defaults (and an earlier encoder's
        sizes), so a field added later with a backward-compatible default changes no name.
        A manifest corpus is named by its stem and enters the hash by the sha256 of its content,
        not by its path: two manifests with one stem get different names, a manifest moved with
        its recordings keeps its runs' names, and an edited one gets new names (so no run of the
        old content is taken for a run of the new)."""
        changed = {k: v for k, v in self.to_dict().items() if v != DEFAULTS[k]}
        if is_manifest(self.corpus):
            changed["corpus"] = {"manifest_sha256": sha256_file(self.corpus)}
        if self.encoder_sizes is not None:
            changed["encoder_sizes"] = self.encoder_sizes
        digest = hashlib.sha256(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:8]
        g = "none" if self.gamma is None else f"{self.gamma:g}"
        depth = f"-L{self.n_cnn_layers}" if self.encoder == "2dcnn_bigru" else ""
        corpora = corpus_name(self.corpus) + (f"-to-{self.test_corpus}" if self.test_corpus else "")
        return f"{corpora}-{self.encoder}{depth}-gamma{g}-fold{self.fold}-seed{self.seed}-{digest}"

    # --- conversion -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        unknown = sorted(set(d) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"unknown run parameters {unknown}; known: {sorted(DEFAULTS)}")
        return cls(**d)

    @classmethod
    def from_record(cls, record: dict) -> "RunConfig":
        """The configuration of a run record (see :mod:`sierlib.records`)."""
        return cls.from_dict(record["config"])


DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig)}


def _threads_rule(v):
    return v is None or (_is_int(v) and v >= 1)


def _device_rule(v):
    return isinstance(v, str) and (v in ("auto", "cpu") or v.startswith("cuda"))


def _path_rule(v):
    return v is None or isinstance(v, (str, Path))


@dataclass(frozen=True)
class RunOptions:
    """How and where a run executes; none of it enters the run's name.

    ``out_dir`` None writes the record to ``results/local/runs`` (git-ignored: your own runs);
    the reference records that the committed tables are built from live in ``results/runs`` and
    are written only by a deliberate sweep (``sier sweep --reference``)."""

    device: str = _param("auto", (_device_rule, "'auto', 'cpu' or 'cuda[:N]'"),
                         "auto: CUDA when present, else CPU")
    torch_threads: int | None = _param(None, (_threads_rule, "None or an int >= 1"),
                                       "CPU threads for this run (sweeps split the cores); None: torch's default")
    data_root: str | None = _param(None, (_path_rule, "None or a folder"), "None: $SIER_DATA or data/")
    out_dir: str | None = _param(None, (_path_rule, "None or a folder"),
                                 "None: results/local/runs (your own runs, git-ignored)")
    reuse_record: bool = _param(False, (lambda v: isinstance(v, bool), "True or False"),
                                "show a finished record of this run instead of training again")
    save_model: bool = _param(False, (lambda v: isinstance(v, bool), "True or False"),
                              "also save the selected network, ready for `sier predict`, beside the record")

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not f.metadata["rule"](value):
                raise ValueError(f"{f.name} must be {f.metadata['accepts']}; got {value!r}")


OPTION_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunOptions)}


def from_parameters(namespace: dict) -> tuple[RunConfig, RunOptions]:
    """The run configuration and options named in ``namespace`` (04_train's parameters cell:
    ``from_parameters(globals())``). Validates everything at once."""
    config = RunConfig(**{k: namespace[k] for k in DEFAULTS})
    options = RunOptions(**{k: namespace[k] for k in OPTION_DEFAULTS})
    return config, options
