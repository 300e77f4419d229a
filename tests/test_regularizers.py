import math

import pytest
import torch

from specrobust.regularizers import fr_loss


A = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
ZERO = torch.zeros(2, 2)


# batch2d: fft2 of a unit impulse at (0, 0) is all ones -> 4 real parts of 1 and 4 imaginary parts of 0.
@pytest.mark.parametrize("distance,expected", [("l1", 4 / 8), ("l2", 4 / 8)])
def test_batch2d_hand_computed(distance, expected):
    assert fr_loss(A, ZERO, distance, "batch2d").item() == pytest.approx(expected)


# per_sample: row [1, 0] -> DFT [1, 1] (real), row [0, 0] -> 0. L1 per sample: 2 and 0; L2 per sample: sqrt(2), 0.
@pytest.mark.parametrize("distance,expected", [("l1", 1.0), ("l2", math.sqrt(2) / 2)])
def test_per_sample_hand_computed(distance, expected):
    assert fr_loss(A, ZERO, distance, "per_sample").item() == pytest.approx(expected)


@pytest.mark.parametrize("fft", ["batch2d", "per_sample"])
def test_cosine_hand_computed(fft):
    # DFT [1, 0] -> (1, 1); DFT [0, 1] -> (1, -1): orthogonal, so 1 - cos = 1. Identical inputs give 0.
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert fr_loss(a, b, "cosine", fft).item() == pytest.approx(1.0)
    assert fr_loss(a, a, "cosine", fft).item() == pytest.approx(0.0, abs=1e-6)


def test_batch2d_mixes_samples_per_sample_does_not():
    torch.manual_seed(0)
    t, s = torch.randn(4, 10), torch.randn(4, 10)
    s2 = s.clone()
    s2[1:] = t[1:]  # only sample 0 still differs
    # per-sample: the loss is the mean of independent per-sample terms
    per = [fr_loss(t[i:i + 1], s[i:i + 1], "l1", "per_sample") for i in range(4)]
    assert fr_loss(t, s, "l1", "per_sample").item() == pytest.approx(torch.stack(per).mean().item(), rel=1e-5)
    # batch2d: a difference in one sample spreads over every row of the 2-D spectrum
    diff = (torch.fft.fft2(t) - torch.fft.fft2(s2)).abs()
    assert (diff.sum(1) > 1e-4).all()


def test_gradients_flow_to_student_and_self_teacher():
    t = torch.randn(3, 5, requires_grad=True)
    s = torch.randn(3, 5, requires_grad=True)
    fr_loss(t, s).backward()
    assert t.grad.abs().sum() > 0 and s.grad.abs().sum() > 0


def test_unknown_variant_rejected():
    with pytest.raises(ValueError, match="fr.fft"):
        fr_loss(A, A, "l1", "rows")
    with pytest.raises(ValueError, match="fr.distance"):
        fr_loss(A, A, "l3")
