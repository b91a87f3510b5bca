import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sierlib.batching import batches
from sierlib.layers import stats_pool
from sierlib.model import SIERNet, adversarial_weight, gradient_reversal


def test_gradient_reversal_is_identity_forward_and_flips_backward():
    x = torch.randn(4, 3, requires_grad=True)
    y = gradient_reversal(x, 0.7)
    assert torch.equal(y, x)
    y.sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, -0.7))


def test_encoder_gradient_is_minus_lambda_times_the_speaker_loss_gradient():
    torch.manual_seed(0)
    model = SIERNet(n_emotions=4, n_speakers=3, n_cnn_layers=1, n_filters=8, gru_hidden=8, fc_hidden=8,
                    dropout=0.0)
    model.eval()  # no dropout/batch statistics: two passes see the same function
    x = torch.randn(5, 20, 40)
    s = torch.randint(0, 3, (5,))
    lam = 0.37
    grads = {}
    for name, l in [("reversed", lam), ("plain", None)]:
        model.zero_grad()
        z = model.encoder(x)
        head_in = gradient_reversal(z, l) if l is not None else z
        F.cross_entropy(model.speaker_head(head_in), s).backward()
        grads[name] = [p.grad.clone() for p in model.encoder.parameters()]
        head_grads = [p.grad.clone() for p in model.speaker_head.parameters()]
        grads[name + "_head"] = head_grads
    for g_rev, g in zip(grads["reversed"], grads["plain"]):
        assert torch.allclose(g_rev, -lam * g, atol=1e-6)
    # the speaker classifier itself still minimises J_s: its gradient is not reversed
    for g_rev, g in zip(grads["reversed_head"], grads["plain_head"]):
        assert torch.allclose(g_rev, g, atol=1e-6)
    # and through the model's own forward the same holds
    model.zero_grad()
    _, spk, _ = model(x, lam)
    F.cross_entropy(spk, s).backward()
    for g_model, g in zip([p.grad for p in model.encoder.parameters()], grads["plain"]):
        assert torch.allclose(g_model, -lam * g, atol=1e-6)


def test_lambda_schedule():
    assert adversarial_weight(0.0, 3.33) == 0.0
    for gamma in (1.25, 2.5, 3.33):
        assert adversarial_weight(1.0, gamma) == pytest.approx(2 / (1 + math.exp(-gamma)) - 1)
        values = [adversarial_weight(p, gamma) for p in np.linspace(0, 1, 11)]
        assert all(a < b for a, b in zip(values, values[1:])) and values[-1] < 1
    assert adversarial_weight(1.0, 3.33) > adversarial_weight(1.0, 1.25)  # higher gamma, stronger
    # the schedule equals tanh(gamma p / 2), an independent way to write it
    for p in (0.1, 0.5, 0.9):
        assert adversarial_weight(p, 2.5) == pytest.approx(math.tanh(2.5 * p / 2))


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("kernel", [5, 2])
@pytest.mark.parametrize("frames", [379, 184, 12])
def test_output_shapes_for_every_depth(depth, kernel, frames):
    model = SIERNet(n_emotions=7, n_speakers=6, n_cnn_layers=depth, kernel_size=kernel, n_filters=8,
                    gru_hidden=16, fc_hidden=8)
    emo, spk, z = model(torch.randn(3, 20, frames), 0.5)
    assert emo.shape == (3, 7) and spk.shape == (3, 6) and z.shape == (3, 64)
    assert torch.isfinite(z).all()


def test_without_al_has_no_speaker_branch():
    model = SIERNet(n_emotions=7, n_speakers=None)
    assert model.speaker_head is None
    assert model(torch.randn(2, 20, 50))[1] is None


def test_stats_pool_of_a_single_step_is_finite():
    h = torch.randn(2, 1, 5)
    out = stats_pool(h)
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert torch.allclose(out[:, :5], h[:, 0])


def test_batches_never_leave_a_batch_of_one():
    for n in (1, 2, 17, 33, 49):
        chunks = batches(n, 16, torch.Generator().manual_seed(0))
        assert sorted(torch.cat(chunks).tolist()) == list(range(n))
        assert all(len(c) > 1 for c in chunks) or n == 1


def test_batch_of_one_in_eval_mode_works():
    model = SIERNet(n_emotions=7, n_speakers=6).eval()
    emo, spk, _ = model(torch.randn(1, 20, 60), 1.0)
    assert emo.shape == (1, 7)
