"""The small feature helpers behind notebooks 01 and 02, checked against extract_features."""
import numpy as np
import pytest

from sierlib.feature_stats import coefficient_stats, fit_standardiser, padding_fraction, silence_margins, speech_mask, utterance_means


def test_silence_margins_agree_with_the_feature_pipeline(synthetic_meta, synthetic_feats):
    report = silence_margins(synthetic_meta, n_jobs=1, progress=False)
    assert list(report.utterance) == list(synthetic_meta.utterance)
    assert np.array_equal(report.trimmed_samples, synthetic_feats.n_samples)
    assert (report.start >= 0).all() and (report.end <= report.n_samples).all()
    assert np.allclose(report.leading_s + report.speech_s + report.trailing_s, report.n_samples / 22050)


def test_padding_fraction_matches_features(synthetic_feats):
    share = padding_fraction(synthetic_feats.n_samples, synthetic_feats.params["hop_length"])
    assert np.allclose(share, synthetic_feats.padding_fraction)
    assert share.min() == 0.0
    assert padding_fraction([512, 1024], 512, length=2048).tolist() == pytest.approx([0.6, 0.4])


def test_speech_mask_and_coefficient_stats(synthetic_feats):
    mask = speech_mask(synthetic_feats)
    assert np.allclose(1 - mask.mean(axis=1), synthetic_feats.padding_fraction)
    means = utterance_means(synthetic_feats)
    i = int(np.argmax(synthetic_feats.padding_fraction))
    assert np.allclose(means[i], synthetic_feats.X[i][:, mask[i]].mean(axis=1), rtol=1e-5, atol=1e-4)
    assert np.allclose(utterance_means(synthetic_feats, speech_only=False), synthetic_feats.X.mean(axis=2))
    stats = coefficient_stats(synthetic_feats)
    mean, std = fit_standardiser(synthetic_feats.X)
    assert len(stats) == synthetic_feats.X.shape[1]
    assert np.allclose(stats.mean_all, mean.ravel(), rtol=1e-5) and np.allclose(stats.std_all, std.ravel(), rtol=1e-5)
