import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import sierlib.features as features
from sierlib.audio import CorpusError
from sierlib.corpora import load_metadata
from sierlib.feature_stats import fit_standardiser, silence_margins, standardise
from sierlib.features import extract_features, highpass, trim_silence
from sierlib.registry import check_feature_params


def test_highpass_removes_rumble_and_keeps_voice():
    sr = 16000
    t = np.arange(sr) / sr
    rumble = np.sin(2 * np.pi * 20 * t).astype(np.float32)
    voice = np.sin(2 * np.pi * 300 * t).astype(np.float32)
    assert np.std(highpass(rumble, sr, 80.0)) < 0.05 * np.std(rumble)
    assert np.std(highpass(voice, sr, 80.0)) > 0.95 * np.std(voice)
    assert highpass(voice, sr, None) is voice


def test_trim_cuts_leading_and_trailing_silence():
    sr = 16000
    tone = 0.5 * np.sin(2 * np.pi * 200 * np.arange(sr) / sr).astype(np.float32)
    y = np.concatenate([np.zeros(sr // 2, np.float32), tone, np.zeros(sr // 2, np.float32)])
    trimmed, (start, end) = trim_silence(y, top_db=30)
    assert abs(len(trimmed) - sr) < 2048 + 1  # within one frame of the tone's length
    assert abs(start - sr // 2) <= 2048


@pytest.mark.parametrize("bad", [{"sr": "22050"}, {"n_mfcc": 0}, {"top_db": -1}, {"highpass_hz": 20000.0},
                                 {"hop_length": 2.5}, {"n_fft": True}])
def test_feature_params_are_checked(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        check_feature_params(**bad)


def test_features_shape_padding_and_cache(synthetic_meta, synthetic_feats, synthetic_cache):
    f = synthetic_feats
    n_frames = 1 + f.n_samples.max() // 512
    assert f.X.shape == (len(synthetic_meta), 20, n_frames)
    assert f.X.dtype == np.float32 and np.isfinite(f.X).all()
    assert list(f.utterances) == list(synthetic_meta.utterance)
    # every recording was trimmed: synthetic files carry 0.1-0.3 s of silence at each end
    durations = synthetic_meta.duration.to_numpy()
    assert (f.n_samples / 22050 < durations - 0.1).all()
    # the longest recording has (almost) no padding, the others have some
    assert f.padding_fraction.min() < 0.01 and f.padding_fraction.max() > 0.1
    again = extract_features(synthetic_meta, cache=synthetic_cache, n_jobs=1, progress=False)
    assert again.from_cache and np.array_equal(again.X, f.X)
    other = extract_features(synthetic_meta, cache=synthetic_cache, n_jobs=1, progress=False, n_mfcc=13)
    assert not other.from_cache and other.X.shape[1] == 13


@pytest.mark.slow
def test_parallel_path_matches_the_single_process_loop(synthetic_meta, synthetic_feats):
    sub = synthetic_meta.iloc[:12]
    serial = extract_features(sub, use_cache=False, n_jobs=1, progress=False)
    parallel = extract_features(sub, use_cache=False, n_jobs=2, progress=False)
    assert np.allclose(serial.X, parallel.X, atol=1e-5)


# The numba cache race, on a fresh, empty cache (as in a new virtual environment): one process
# extracts features with two workers, then a new process runs the functions that segfaulted.
_EXTRACT_WITH_TWO_WORKERS = """
import pathlib, sys
from sierlib import features
from sierlib.corpora import load_metadata

cache = pathlib.Path(sys.argv[2])
def snapshot():
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in cache.rglob("*") if p.is_file()}

meta = load_metadata("synthetic", sys.argv[1]).iloc[:16]  # two batches of 8: both workers work
features.warm_numba_cache()
warmed = snapshot()
assert any(name.endswith(".nbc") for name in warmed), "the warm-up left no numba cache"
for kind in ("fbank_energy_pitch", "mfcc"):  # yin (and localmin) first: where it crashed
    features.extract_features(meta, kind=kind, use_cache=False, n_jobs=2, progress=False)
changed = sorted(set(snapshot().items()) ^ set(warmed.items()))
assert not changed, f"the numba cache was written after the warm-up: {changed}"
"""
_RUN_THE_CACHED_FUNCTIONS = """
import numpy as np, librosa

for dtype in (np.float32, np.float64):
    x = np.random.default_rng(0).standard_normal((4, 500)).astype(dtype)
    got = librosa.util.localmin(x, axis=-1)[:, 1:-1]  # the ends follow librosa's own padding
    want = (x[:, 1:-1] < x[:, :-2]) & (x[:, 1:-1] <= x[:, 2:])
    assert np.array_equal(got, want)
sr = 22050
tone = np.sin(2 * np.pi * 200 * np.arange(sr) / sr).astype(np.float32)
f0 = librosa.yin(tone, fmin=60, fmax=400, sr=sr)
assert abs(np.median(f0) - 200) < 2, np.median(f0)
noise = np.random.default_rng(1).standard_normal(sr).astype(np.float32)
assert np.isfinite(librosa.yin(noise, fmin=60, fmax=400, sr=sr)).all()
"""


@pytest.mark.slow
def test_parallel_extraction_on_a_fresh_numba_cache_leaves_it_sound(synthetic_root, tmp_path):
    """The workers only read librosa's numba cache (the parent filled it), and a new process then
    runs localmin and yin from that cache without crashing and with the right results.

    About 50 s of CPU, most of it compiling librosa's numba code from scratch, as a new
    environment does once."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"),
               PYTHONPATH=os.pathsep.join([str(Path(features.__file__).parent.parent),
                                           os.environ.get("PYTHONPATH", "")]))
    (tmp_path / "numba").mkdir()
    for script, args in [(_EXTRACT_WITH_TWO_WORKERS, [str(synthetic_root), str(tmp_path / "numba")]),
                         (_RUN_THE_CACHED_FUNCTIONS, [])]:
        done = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"


def test_extraction_warms_the_numba_cache_before_any_worker_starts(synthetic_meta, monkeypatch):
    calls = []

    class Stop(Exception):
        pass

    def no_workers(*args, **kwargs):  # stands in for joblib.Parallel: records, starts nothing
        calls.append("workers")
        raise Stop

    monkeypatch.setattr(features, "warm_numba_cache", lambda: calls.append("warm"))
    monkeypatch.setattr(features, "Parallel", no_workers)
    with pytest.raises(Stop):
        extract_features(synthetic_meta.iloc[:2], use_cache=False, n_jobs=2, progress=False)
    with pytest.raises(Stop):
        silence_margins(synthetic_meta.iloc[:2], n_jobs=2, progress=False)  # runs through features.run_parallel
    assert calls == ["warm", "workers"] * 2


def test_a_crash_while_writing_leaves_no_valid_cache_entry(synthetic_meta, tmp_path, monkeypatch):
    sub = synthetic_meta.iloc[:4]

    def boom(f, **arrays):
        f.write(b"partial")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(features.np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        extract_features(sub, cache=tmp_path, n_jobs=1, progress=False)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    fresh = extract_features(sub, cache=tmp_path, n_jobs=1, progress=False)
    assert not fresh.from_cache
    assert extract_features(sub, cache=tmp_path, n_jobs=1, progress=False).from_cache


def test_a_file_replaced_under_the_same_name_and_length_gets_new_features(synthetic_root, tmp_path):
    shutil.copytree(synthetic_root / "synthetic", tmp_path / "data" / "synthetic")
    meta = load_metadata("synthetic", tmp_path / "data").iloc[:4]
    cache = tmp_path / "cache"
    first = extract_features(meta, cache=cache, n_jobs=1, progress=False)
    assert extract_features(meta, cache=cache, n_jobs=1, progress=False).from_cache
    # the second recording's samples, cut or padded to the first's length, under the first's name
    a, b = meta.path.iloc[0], meta.path.iloc[1]
    ya, sr = sf.read(a, dtype="int16")
    yb, _ = sf.read(b, dtype="int16")
    sf.write(a, np.resize(yb, len(ya)), sr, subtype="PCM_16")
    again = load_metadata("synthetic", tmp_path / "data").iloc[:4]
    assert again.duration.tolist() == meta.duration.tolist()  # the old key saw no change
    fresh = extract_features(again, cache=cache, n_jobs=1, progress=False)
    assert not fresh.from_cache
    assert not np.allclose(fresh.X[0, :, :5], first.X[0, :, :5])
    assert np.array_equal(fresh.X[1:], first.X[1:])  # the other files' features are unchanged
    assert extract_features(again, cache=cache, n_jobs=1, progress=False).from_cache


def _silence(y):
    return np.zeros_like(y)


def _burst(y):
    """30 ms of a 300 Hz tone in the middle of silence: about 0.15 s of sound once trimmed."""
    out = np.zeros_like(y)
    n = int(0.03 * 16000)
    out[len(y) // 2: len(y) // 2 + n] = 0.5 * np.sin(2 * np.pi * 300 * np.arange(n) / 16000)
    return out


def _nan(y):
    y = y.copy()
    y[len(y) // 3] = np.nan
    return y


@pytest.mark.parametrize("damage, match, n_jobs", [(_nan, "non-finite", 1), (_silence, "digitally silent", 1),
                                                   (_burst, "holds only 0.1. s of sound", 1),
                                                   # starts worker processes: about 10 s
                                                   pytest.param(_silence, "digitally silent", 2,
                                                                marks=pytest.mark.slow)])
def test_audio_that_cannot_carry_emotion_stops_extraction(synthetic_root, tmp_path, damage, match, n_jobs):
    """A CorpusError naming the file and the fix, in this process or from a worker, and no cache
    entry; before, a NaN at 22050 Hz was trimmed to nothing and silence became features."""
    shutil.copytree(synthetic_root / "synthetic", tmp_path / "data" / "synthetic")
    meta = load_metadata("synthetic", tmp_path / "data").iloc[:6]
    bad = meta.path.iloc[3]
    y, sr = sf.read(bad, dtype="float32")
    sf.write(bad, damage(y), sr, subtype="FLOAT")
    with pytest.raises(CorpusError, match=match) as err:
        extract_features(meta, cache=tmp_path / "cache", n_jobs=n_jobs, progress=False)
    assert f"wav/{meta.utterance.iloc[3]}.wav" in str(err.value) and "sier synthetic" in str(err.value)
    assert not (tmp_path / "cache").exists() or list((tmp_path / "cache").iterdir()) == []


def test_standardiser_uses_only_the_data_it_is_given():
    rng = np.random.default_rng(0)
    train = rng.normal(3.0, 2.0, size=(50, 4, 30)).astype(np.float32)
    test = rng.normal(-5.0, 1.0, size=(10, 4, 30)).astype(np.float32)
    mean, std = fit_standardiser(train)
    z = standardise(train, mean, std)
    assert np.allclose(z.mean(axis=(0, 2)), 0, atol=1e-4) and np.allclose(z.std(axis=(0, 2)), 1, atol=1e-3)
    assert standardise(test, mean, std).mean() < -3  # test data is not re-centred


@pytest.mark.real
@pytest.mark.slow
def test_real_emodb_features(emodb_meta):
    f = extract_features(emodb_meta, progress=False)
    assert f.X.shape[:2] == (535, 20)
    assert f.X.shape[2] == 1 + f.n_samples.max() // 512
    assert np.isfinite(f.X).all()
    # trimming shortened every recording, and never below a second of speech
    assert (f.n_samples / 22050 <= emodb_meta.duration.to_numpy() + 1e-6).all()
    assert f.n_samples.min() / 22050 > 1.0
