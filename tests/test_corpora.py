"""sierlib.corpora: load_metadata, read_audio and check_audio_file on the real corpora, on
.wav/.flac mixtures, and on damaged copies (each problem must be a CorpusError naming the file
and the fix, never a traceback from inside an audio library).

The shared data is read-only, so damaged copies are trees of symlinks in tmp_path with the
damaged file written as a real file (the symlink is removed first, never written through).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import sierlib.cli
from sierlib.audio import CorpusError, MIN_SPEECH_S, check_audio_file, check_recordings, read_audio, sounding_span
from sierlib.corpora import load_metadata

EMODB_COUNTS = {"anger": 127, "boredom": 81, "disgust": 46, "fear": 69, "happiness": 71,
                "sadness": 62, "neutral": 79}
RAVDESS_STEREO = {"Actor_01/03-01-02-01-01-02-01", "Actor_01/03-01-08-01-02-02-01",
                  "Actor_05/03-01-02-01-02-02-05", "Actor_20/03-01-03-01-02-01-20",
                  "Actor_20/03-01-06-01-01-02-20"}
TARGET = "wav/03a01Fa.wav"  # the Emo-DB file the damage tests break


def _rel(path) -> str:
    p = Path(path)
    return f"{p.parent.name}/{p.stem}"


# --------------------------------------------------------------------------- tree builders

def emodb_tree(real_data: Path, dest: Path, leave_out: str | None = None) -> Path:
    """``dest/emodb/wav/*.wav`` as symlinks to the real Emo-DB files; returns the data root."""
    (dest / "emodb" / "wav").mkdir(parents=True)
    for src in sorted((real_data / "emodb" / "wav").glob("*.wav")):
        if f"wav/{src.name}" != leave_out:
            (dest / "emodb" / "wav" / src.name).symlink_to(src)
    return dest


def ravdess_tree(real_data: Path, dest: Path, leave_out: str | None = None) -> Path:
    """``dest/ravdess/Actor_NN/*.flac`` as symlinks to the real RAVDESS files."""
    for actor in sorted((real_data / "ravdess").glob("Actor_*")):
        (dest / "ravdess" / actor.name).mkdir(parents=True)
        for src in sorted(actor.glob("*.flac")):
            if f"{actor.name}/{src.name}" != leave_out:
                (dest / "ravdess" / actor.name / src.name).symlink_to(src)
    return dest


def replace_with(path: Path, data: bytes) -> None:
    """Put a real file with ``data`` where ``path`` (possibly a symlink into read-only data) is."""
    path.unlink(missing_ok=True)
    path.write_bytes(data)


def real_bytes(real_data: Path, rel: str = TARGET) -> bytes:
    return (real_data / "emodb" / rel).read_bytes()


@pytest.fixture
def synthetic_copy(synthetic_root, tmp_path) -> Path:
    """A private copy of the synthetic corpus (data root) that a test may damage."""
    shutil.copytree(synthetic_root / "synthetic", tmp_path / "synthetic")
    return tmp_path


def assert_names(err: pytest.ExceptionInfo, name: str, fix: str = "sier download") -> str:
    msg = str(err.value)
    assert name in msg, msg
    assert fix in msg, msg
    assert err.value.__cause__ is None  # no chained soundfile traceback
    return msg


# --------------------------------------------------------------------------- real Emo-DB

@pytest.mark.real
def test_emodb_metadata(emodb_meta):
    m = emodb_meta
    assert len(m) == 535
    for col in ("path", "corpus", "speaker", "gender", "emotion", "duration", "text", "version",
                "utterance", "emotion_code", "sample_rate", "channels"):
        assert col in m.columns, col
    assert set(m.corpus) == {"emodb"}
    assert m.speaker.nunique() == 10
    genders = m.groupby("speaker").gender.agg(lambda g: set(g))
    assert all(len(g) == 1 for g in genders)
    by_gender = m.drop_duplicates("speaker").gender.value_counts().to_dict()
    assert by_gender == {"male": 5, "female": 5}
    assert set(m[m.gender == "male"].speaker) == {"03", "10", "11", "12", "15"}
    assert m.emotion.value_counts().to_dict() == EMODB_COUNTS
    assert m.duration.between(1.2, 9.0).all()
    assert set(m.sample_rate) == {16000} and set(m.channels) == {1}
    assert list(m.path) == sorted(m.path)
    assert all(Path(p).is_file() for p in m.path)
    row = m[m.utterance == "03a01Fa"].iloc[0]
    assert (row.speaker, row.text, row.emotion, row.version) == ("03", "a01", "happiness", "a")


@pytest.mark.real
def test_emodb_read_audio(emodb_meta):
    row = emodb_meta.iloc[0]
    y = read_audio(row.path, sr=None)
    assert y.dtype == np.float32 and y.ndim == 1
    assert len(y) == round(row.duration * row.sample_rate)
    y8 = read_audio(row.path, sr=8000)
    assert abs(len(y8) - row.duration * 8000) <= 2


# --------------------------------------------------------------------------- real RAVDESS

@pytest.mark.real
def test_ravdess_metadata(ravdess_meta):
    m = ravdess_meta
    assert len(m) == 1440
    for col in ("path", "corpus", "speaker", "gender", "emotion", "duration", "intensity",
                "statement", "repetition", "channels"):
        assert col in m.columns, col
    assert m.speaker.nunique() == 24
    assert (m.speaker.value_counts() == 60).all()
    actor = m.speaker.astype(int)
    assert (m.gender == np.where(actor % 2 == 1, "male", "female")).all()
    counts = m.emotion.value_counts().to_dict()
    assert counts.pop("neutral") == 96
    assert counts == {e: 192 for e in ("calm", "happiness", "sadness", "anger", "fear", "disgust", "surprise")}
    assert set(m.intensity) == {"normal", "strong"}
    assert set(m[m.emotion == "neutral"].intensity) == {"normal"}
    assert set(m.statement) == {"01", "02"} and set(m.repetition) == {1, 2}
    assert set(m.sample_rate) == {48000}
    stereo = m[m.channels == 2]
    assert len(stereo) == 5
    assert {_rel(p) for p in stereo.path} == RAVDESS_STEREO
    assert set(m.channels) == {1, 2}
    assert m.duration.between(2.9, 5.3).all()


@pytest.mark.real
def test_ravdess_read_stereo(ravdess_meta):
    row = ravdess_meta[ravdess_meta.channels == 2].iloc[0]
    y = read_audio(row.path, sr=16000, corpus="ravdess")
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - row.duration * 16000) <= 2
    full = read_audio(row.path, sr=None, corpus="ravdess")
    both, sr = sf.read(row.path, dtype="float32")
    assert sr == 48000 and both.shape[1] == 2
    np.testing.assert_allclose(full, both.mean(axis=1), atol=1e-7)


@pytest.mark.real
def test_wav_and_flac_both_load(real_data, ravdess_meta, tmp_path):
    """One actor stored as .wav (as distributed), the rest as .flac (as in the shared data)."""
    root = ravdess_tree(real_data, tmp_path)
    actor = root / "ravdess" / "Actor_01"  # holds two of the stereo files
    for link in sorted(actor.glob("*.flac")):
        y, sr = sf.read(str(link), dtype="int16")
        link.unlink()
        sf.write(str(link.with_suffix(".wav")), y, sr, subtype="PCM_16")
    assert len(list(actor.glob("*.wav"))) == 60 and not list(actor.glob("*.flac"))
    m = load_metadata("ravdess", root)
    assert len(m) == 1440
    assert m.emotion.value_counts().to_dict() == ravdess_meta.emotion.value_counts().to_dict()
    suffixes = m.path.map(lambda p: Path(p).suffix)
    assert (suffixes[m.speaker == "01"] == ".wav").all()
    assert (suffixes[m.speaker != "01"] == ".flac").all()
    assert (m.channels == 2).sum() == 5
    cols = ["utterance", "duration", "channels", "sample_rate", "emotion"]
    assert m[cols].equals(ravdess_meta[cols])
    # the same samples from the .wav and its .flac twin (a stereo file and a mono one)
    for name in ("03-01-02-01-01-02-01", "03-01-05-02-01-01-01"):
        wav = actor / f"{name}.wav"
        flac = real_data / "ravdess" / "Actor_01" / f"{name}.flac"
        np.testing.assert_array_equal(read_audio(wav, sr=None, corpus="ravdess"),
                                      read_audio(flac, sr=None, corpus="ravdess"))
    np.testing.assert_array_equal(read_audio(wav, sr=16000, corpus="ravdess"),
                                  read_audio(flac, sr=16000, corpus="ravdess"))


# --------------------------------------------------------------------------- bad input: real trees

def test_missing_corpus_folder(tmp_path):
    with pytest.raises(CorpusError) as err:
        load_metadata("emodb", tmp_path)
    msg = assert_names(err, str(tmp_path / "emodb"))
    assert "SIER_DATA" in msg and "sier download emodb" in msg
    with pytest.raises(CorpusError, match="SIER_DATA") as err:
        load_metadata("synthetic", tmp_path)
    assert_names(err, str(tmp_path / "synthetic"), fix="sier synthetic")


@pytest.mark.real
def test_emodb_missing_file(real_data, tmp_path):
    root = emodb_tree(real_data, tmp_path, leave_out=TARGET)
    with pytest.raises(CorpusError, match="incomplete") as err:
        load_metadata("emodb", root)
    msg = assert_names(err, TARGET)
    assert "1 of 535" in msg


@pytest.mark.real
def test_ravdess_missing_file(real_data, tmp_path):
    gone = "Actor_07/03-01-03-01-02-02-07.flac"
    root = ravdess_tree(real_data, tmp_path, leave_out=gone)
    with pytest.raises(CorpusError, match="incomplete") as err:
        load_metadata("ravdess", root)
    assert_names(err, gone)


@pytest.mark.real
def test_emodb_empty_file(real_data, tmp_path):
    root = emodb_tree(real_data, tmp_path)
    replace_with(root / "emodb" / TARGET, b"")
    with pytest.raises(CorpusError, match="empty") as err:
        load_metadata("emodb", root)
    assert_names(err, TARGET)


@pytest.mark.real
def test_emodb_truncated_wav(real_data, tmp_path):
    root = emodb_tree(real_data, tmp_path)
    data = real_bytes(real_data)
    replace_with(root / "emodb" / TARGET, data[: len(data) // 2])
    with pytest.raises(CorpusError, match="truncated") as err:
        load_metadata("emodb", root)
    assert_names(err, TARGET)
    with pytest.raises(CorpusError, match="truncated") as err:
        read_audio(root / "emodb" / TARGET)
    assert_names(err, TARGET)


@pytest.mark.real
def test_ravdess_truncated_flac_found_by_load_metadata(real_data, tmp_path):
    cut = "Actor_05/03-01-04-02-01-01-05.flac"
    root = ravdess_tree(real_data, tmp_path)
    data = (real_data / "ravdess" / cut).read_bytes()
    replace_with(root / "ravdess" / cut, data[: len(data) * 3 // 4])
    with pytest.raises(CorpusError, match="truncated") as err:
        load_metadata("ravdess", root)
    assert_names(err, cut)


@pytest.mark.real
def test_emodb_garbage_file(real_data, tmp_path):
    root = emodb_tree(real_data, tmp_path)
    replace_with(root / "emodb" / TARGET, np.random.default_rng(0).bytes(5000))
    with pytest.raises(CorpusError, match="cannot be read") as err:
        load_metadata("emodb", root)
    assert_names(err, TARGET)


@pytest.mark.real
def test_emodb_unknown_emotion_code(real_data, tmp_path):
    root = emodb_tree(real_data, tmp_path)
    (root / "emodb" / "wav" / "03a01Xa.wav").symlink_to(real_data / "emodb" / TARGET)
    with pytest.raises(CorpusError, match="unknown emotion code 'X'") as err:
        load_metadata("emodb", root)
    assert_names(err, "wav/03a01Xa.wav")


@pytest.mark.real
def test_truncated_flac(real_data, tmp_path):
    src = real_data / "ravdess" / "Actor_01" / "03-01-01-01-01-01-01.flac"
    data = src.read_bytes()
    for frac in (0.5, 0.05):
        bad = tmp_path / "Actor_01" / f"cut{int(frac * 100)}" / src.name
        bad.parent.mkdir(parents=True)
        bad.write_bytes(data[: int(len(data) * frac)])
        with pytest.raises(CorpusError) as err:
            read_audio(bad, corpus="ravdess")
        assert_names(err, f"cut{int(frac * 100)}/{src.name}")
        with pytest.raises(CorpusError, match="truncated") as err:
            check_audio_file(bad, corpus="ravdess")
        assert_names(err, f"cut{int(frac * 100)}/{src.name}")


# --------------------------------------------------------------------------- bad input: synthetic

def test_synthetic_loads(synthetic_meta):
    m = synthetic_meta
    assert len(m) == 6 * 7 * 3
    assert m.speaker.nunique() == 6
    assert m.drop_duplicates("speaker").gender.value_counts().to_dict() == {"male": 3, "female": 3}
    assert set(m.corpus) == {"synthetic"}


def _first_synthetic(root: Path) -> Path:
    return sorted((root / "synthetic" / "wav").glob("*.wav"))[0]


def test_synthetic_empty_file(synthetic_copy):
    f = _first_synthetic(synthetic_copy)
    f.write_bytes(b"")
    with pytest.raises(CorpusError, match="empty") as err:
        load_metadata("synthetic", synthetic_copy)
    assert_names(err, f"wav/{f.name}", fix="sier synthetic")
    with pytest.raises(CorpusError, match="empty"):
        read_audio(f, corpus="synthetic")


def test_synthetic_truncated_wav(synthetic_copy):
    f = _first_synthetic(synthetic_copy)
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorpusError, match="truncated") as err:
        load_metadata("synthetic", synthetic_copy)
    assert_names(err, f"wav/{f.name}", fix="sier synthetic")
    with pytest.raises(CorpusError, match="truncated"):
        check_audio_file(f, "synthetic")
    # cut inside the header, before the audio data begins
    f.write_bytes(data[:30])
    with pytest.raises(CorpusError, match="truncated") as err:
        read_audio(f, corpus="synthetic")
    assert_names(err, f"wav/{f.name}", fix="sier synthetic")


def test_synthetic_garbage_file(synthetic_copy):
    f = _first_synthetic(synthetic_copy)
    f.write_bytes(b"this is not audio at all\n" * 100)
    with pytest.raises(CorpusError, match="cannot be read") as err:
        load_metadata("synthetic", synthetic_copy)
    assert_names(err, f"wav/{f.name}", fix="sier synthetic")
    with pytest.raises(CorpusError):
        read_audio(f, corpus="synthetic")


def test_synthetic_unknown_emotion_code(synthetic_copy):
    f = _first_synthetic(synthetic_copy)
    odd = f.with_name(f.name[:5] + "X" + f.name[6:])
    shutil.copy(f, odd)
    with pytest.raises(CorpusError, match="unknown emotion code 'X'") as err:
        load_metadata("synthetic", synthetic_copy)
    assert_names(err, f"wav/{odd.name}", fix="sier synthetic")


def test_synthetic_missing_file(synthetic_copy):
    f = _first_synthetic(synthetic_copy)
    with pytest.raises(CorpusError, match="missing") as err:
        read_audio(f.with_name("99a01Wa.wav"), corpus="synthetic")
    assert_names(err, "wav/99a01Wa.wav", fix="sier synthetic")


def test_truncated_flac_synthetic(synthetic_copy, tmp_path):
    """A cut FLAC (no real data needed): a CorpusError naming the file, not a soundfile error."""
    y, sr = sf.read(str(_first_synthetic(synthetic_copy)), dtype="float32")
    flac = tmp_path / "flac" / "21a01Wa.flac"
    flac.parent.mkdir()
    sf.write(str(flac), np.tile(y, 3), sr, format="FLAC", subtype="PCM_16")
    assert len(read_audio(flac, sr=None, corpus="synthetic")) == 3 * len(y)
    data = flac.read_bytes()
    flac.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorpusError, match="truncated") as err:
        read_audio(flac, sr=None, corpus="synthetic")
    assert_names(err, "flac/21a01Wa.flac", fix="sier synthetic")
    # the header check alone (what load_metadata runs on every file) finds it too
    with pytest.raises(CorpusError, match="truncated") as err:
        check_audio_file(flac, corpus="synthetic")
    assert_names(err, "flac/21a01Wa.flac", fix="sier synthetic")


# --------------------------------------------------------------------------- audio that cannot carry emotion

def _rewrite(path: Path, y: np.ndarray, sr: int, subtype: str = "PCM_16") -> None:
    path.unlink()
    sf.write(str(path), y, sr, subtype=subtype)


def _assert_summary_fails(root: Path, name: str, capsys) -> None:
    """`sier summary` exits 2 naming the file, before writing any fold table."""
    assert sierlib.cli.main(["summary", "synthetic", "--data-root", str(root)]) == 2
    err = capsys.readouterr().err
    assert name in err and "sier synthetic" in err, err
    assert not (Path(sierlib.cli.__file__).parent.parent / "results" / "folds" / "synthetic.csv").exists()


def test_synthetic_recordings_pass_the_audio_check(synthetic_meta):
    check_recordings(synthetic_meta, progress=False)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_named(synthetic_copy, bad, capsys):
    """A 32-bit float WAV with one NaN or infinite sample: a CorpusError naming the file, whether
    the file is resampled (librosa raised a bare ParameterError) or read at its own rate."""
    f = _first_synthetic(synthetic_copy)
    y, sr = sf.read(str(f), dtype="float32")
    y[len(y) // 2] = bad
    _rewrite(f, y, sr, subtype="FLOAT")
    meta = load_metadata("synthetic", synthetic_copy)  # the header is sound
    for rate in (None, 16000, 22050):
        with pytest.raises(CorpusError, match="non-finite") as err:
            read_audio(f, sr=rate, corpus="synthetic")
        assert_names(err, f"wav/{f.name}", fix="sier synthetic")
    with pytest.raises(CorpusError, match="non-finite") as err:
        check_recordings(meta, progress=False)
    assert_names(err, f"wav/{f.name}", fix="sier synthetic")
    _assert_summary_fails(synthetic_copy, f"wav/{f.name}", capsys)


def test_digital_silence_is_named(synthetic_copy, capsys):
    f = _first_synthetic(synthetic_copy)
    y, sr = sf.read(str(f), dtype="float32")
    _rewrite(f, np.zeros_like(y), sr)
    meta = load_metadata("synthetic", synthetic_copy)
    with pytest.raises(CorpusError, match="digitally silent") as err:
        check_recordings(meta, progress=False)
    assert_names(err, f"wav/{f.name}", fix="sier synthetic")
    _assert_summary_fails(synthetic_copy, f"wav/{f.name}", capsys)


def short_burst(sr: int = 16000, burst_s: float = 0.03) -> np.ndarray:
    """One second of digital silence around a 300 Hz burst: about 0.2 s of sound once trimmed."""
    y = np.zeros(sr, dtype=np.float32)
    n = int(burst_s * sr)
    y[sr // 2: sr // 2 + n] = 0.5 * np.sin(2 * np.pi * 300 * np.arange(n) / sr)
    return y


def test_too_little_sound_is_named(synthetic_copy, capsys):
    f = _first_synthetic(synthetic_copy)
    _rewrite(f, short_burst(), 16000)
    meta = load_metadata("synthetic", synthetic_copy)
    assert meta.duration.min() >= 1.0  # long enough as a file; short as speech
    with pytest.raises(CorpusError, match=f"holds only 0.1. s of sound.*at least {MIN_SPEECH_S} s") as err:
        check_recordings(meta, progress=False)
    assert_names(err, f"wav/{f.name}", fix="sier synthetic")
    _assert_summary_fails(synthetic_copy, f"wav/{f.name}", capsys)


def test_sounding_span_follows_librosa_trim(synthetic_meta):
    import librosa

    rng = np.random.default_rng(0)
    signals = [read_audio(p, sr=None, corpus="synthetic") for p in synthetic_meta.path[:5]]
    signals += [short_burst(), np.zeros(1000, np.float32), rng.uniform(-1, 1, 511).astype(np.float32),
                np.r_[np.zeros(3000), rng.normal(0, 0.1, 7777), np.zeros(100)].astype(np.float32)]
    for y in signals:
        _, (start, end) = librosa.effects.trim(y, top_db=30, frame_length=2048, hop_length=512)
        assert sounding_span(y, top_db=30) == (start, end)


@pytest.mark.real
@pytest.mark.slow
def test_real_recordings_pass_the_audio_check(emodb_meta, ravdess_meta):
    """Every real recording keeps well over MIN_SPEECH_S of sound (the check's false alarms)."""
    check_recordings(emodb_meta, progress=False)
    check_recordings(ravdess_meta, progress=False)


@pytest.mark.real
def test_real_emodb_with_a_nan_float_wav(real_data, tmp_path):
    """The first Emo-DB file re-saved as 32-bit float with a NaN: named by the audio check."""
    root = emodb_tree(real_data, tmp_path)
    f = root / "emodb" / TARGET
    y, sr = sf.read(str(f), dtype="float32")
    y[1000] = np.nan
    _rewrite(f, y, sr, subtype="FLOAT")
    meta = load_metadata("emodb", root)
    with pytest.raises(CorpusError, match="non-finite") as err:
        check_recordings(meta, progress=False)
    assert_names(err, TARGET)


def test_wrong_corpus_name(tmp_path):
    with pytest.raises(ValueError, match="corpus") as err:
        load_metadata("iemocap", tmp_path)
    assert "iemocap" in str(err.value)
    with pytest.raises(ValueError, match="corpus"):
        load_metadata(None, tmp_path)


@pytest.mark.real
def test_a_copy_that_is_not_the_published_corpus_is_refused_by_name(real_data, tmp_path, capsys):
    """One recording's content replaced by another recording (same name, valid audio): the copy
    loads, but summary, feature extraction and training refuse it, naming the file and the fix."""
    from sierlib.config import RunConfig, RunOptions
    from sierlib.experiments import run
    from sierlib.features import extract_features

    root = emodb_tree(real_data, tmp_path / "data")
    replace_with(root / "emodb" / TARGET, real_bytes(real_data, "wav/03a01Nc.wav"))
    meta = load_metadata("emodb", root)  # every header is sound and every name expected
    fix = "sier download emodb --force"
    with pytest.raises(CorpusError, match="1 file differ from the published corpus") as err:
        extract_features(meta, cache=tmp_path / "cache", progress=False)
    assert_names(err, TARGET, fix)
    assert "manifest" in str(err.value)
    with pytest.raises(CorpusError, match="differ from the published corpus") as err:
        run(RunConfig(epochs=1), RunOptions(device="cpu", data_root=str(root), out_dir=str(tmp_path / "runs")),
            progress=False)
    assert_names(err, TARGET, fix)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cache").exists()  # nothing half-written
    assert sierlib.cli.main(["summary", "emodb", "--data-root", str(root)]) == 2
    assert TARGET in capsys.readouterr().err


@pytest.mark.real
def test_an_extra_recording_is_named_in_the_count_error(real_data, tmp_path):
    root = emodb_tree(real_data, tmp_path)
    (root / "emodb" / "wav" / "03a01Fb.wav").symlink_to(real_data / "emodb" / TARGET)
    with pytest.raises(CorpusError, match=r"has 536 files from 10 speakers; a complete copy has 535 files from 10\. "
                                          r"Not part of it: wav/03a01Fb\.wav\."):
        load_metadata("emodb", root)
