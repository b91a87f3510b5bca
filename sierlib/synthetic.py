"""A small synthetic corpus in the Emo-DB file layout, for tests and quick demos anywhere.

Both the speaker and the emotion shape each signal, so a speaker adversary has something to
remove: the speaker sets the base pitch (male ~120 Hz, female ~210 Hz) and a resonance (a crude
formant) that colours the harmonics; the emotion scales the pitch, bends its contour, sets the
syllable rate, loudness and spectral tilt. Leading and trailing low-level noise gives the
silence trimmer something to do.

It is always labelled ``synthetic`` (its own corpus name and folder) and never mixed into results.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from .corpora import EMODB_EMOTIONS
from .paths import data_root as _data_root  # the functions below take a data_root argument

# emotion letter -> (pitch factor, contour slope per second, syllables per second, loudness, tilt)
_EMOTION_STYLE = {
    "W": (1.35, 0.30, 6.0, 0.9, 0.55),   # anger: high, rising, fast, loud, bright
    "L": (0.85, -0.05, 2.5, 0.4, 0.90),  # boredom: low, flat, slow, soft, dull
    "E": (0.95, -0.20, 3.5, 0.6, 0.80),  # disgust
    "A": (1.50, 0.10, 7.0, 0.7, 0.65),   # fear: highest pitch, fastest
    "F": (1.25, 0.40, 5.0, 0.8, 0.60),   # happiness
    "T": (0.80, -0.30, 2.0, 0.35, 0.95), # sadness: low, falling, slow, soft
    "N": (1.00, 0.00, 4.0, 0.55, 0.75),  # neutral
}


def synthesize_utterance(f0: float, formant: float, emotion: str, sr: int = 16000,
                         rng: np.random.Generator | None = None) -> np.ndarray:
    """One synthetic utterance (float32, mono) of a speaker (f0, formant) in an emotion."""
    rng = np.random.default_rng() if rng is None else rng
    pitch, slope, rate, loud, tilt = _EMOTION_STYLE[emotion]
    dur = rng.uniform(0.8, 1.3)
    t = np.arange(int(dur * sr)) / sr
    f_inst = f0 * pitch * (1 + slope * (t / dur - 0.5)) * (1 + 0.02 * rng.standard_normal())
    phase = 2 * np.pi * np.cumsum(f_inst) / sr
    voiced = np.zeros_like(t)
    for h in range(1, 16):
        fh = h * f0 * pitch
        if fh > sr / 2 - 500:
            break
        resonance = np.exp(-0.5 * ((fh - formant) / 400.0) ** 2)  # speaker's timbre
        voiced += (tilt ** h) * (0.3 + resonance) * np.sin(h * phase)
    syllables = 0.5 * (1 - np.cos(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)))
    speech = loud * syllables * voiced / np.max(np.abs(voiced))
    speech += 0.01 * rng.standard_normal(len(t))
    lead, trail = (np.zeros(int(rng.uniform(0.1, 0.3) * sr)) for _ in range(2))
    y = np.concatenate([lead, speech, trail])
    y += 0.001 * rng.standard_normal(len(y))  # background noise floor
    return (0.9 * y / np.max(np.abs(y))).astype(np.float32)


def make_synthetic_corpus(data_root=None, n_speakers: int = 10, n_per_emotion: int = 4,
                          emotions: str = "WLEAFTN", sr: int = 16000, seed: int = 0,
                          overwrite: bool = False) -> Path:
    """Write the synthetic corpus to ``<data_root>/synthetic`` and return that folder.

    Speakers get two-digit ids from 21 upwards, alternately male and female (so folds can be
    gender balanced); files are named like Emo-DB's (``21a01Wa.wav``: speaker, text, emotion
    letter, version). ``speakers.csv`` records the genders. The corpus is built in a temporary
    folder and renamed into place, so an interrupted run leaves nothing half-written.
    """
    if not isinstance(n_speakers, int) or n_speakers < 2 or n_speakers % 2:
        raise ValueError(f"n_speakers must be an even int >= 2; got {n_speakers!r}")
    if not isinstance(n_per_emotion, int) or not 1 <= n_per_emotion <= 99:
        raise ValueError(f"n_per_emotion must be an int in 1..99; got {n_per_emotion!r}")
    unknown = set(emotions) - set(EMODB_EMOTIONS)
    if unknown:
        raise ValueError(f"unknown emotion letters {sorted(unknown)}; use Emo-DB letters {''.join(EMODB_EMOTIONS)}")
    root = _data_root(data_root)
    target = root / "synthetic"
    if target.exists():
        if not overwrite:
            return target
        shutil.rmtree(target)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-synthetic-", dir=root))
    try:
        (tmp / "wav").mkdir()
        speakers = []
        for i in range(n_speakers):
            gender = "male" if i % 2 == 0 else "female"
            f0 = (120.0 if gender == "male" else 210.0) * rng.uniform(0.85, 1.15)
            formant = rng.uniform(500, 2500)
            spk = f"{21 + i:02d}"
            speakers.append({"speaker": spk, "gender": gender, "f0": round(f0, 1), "formant": round(formant)})
            for code in emotions:
                for k in range(n_per_emotion):
                    y = synthesize_utterance(f0, formant, code, sr, rng)
                    sf.write(tmp / "wav" / f"{spk}a{k + 1:02d}{code}a.wav", y, sr, subtype="PCM_16")
        pd.DataFrame(speakers).to_csv(tmp / "speakers.csv", index=False)
        (tmp / "README.txt").write_text("SYNTHETIC corpus generated by sierlib.synthetic; not real speech.\n")
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
