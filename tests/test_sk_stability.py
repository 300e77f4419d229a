"""The smooth-kernel penalty R(w) trains without NaN: its numerical safeguards, and training on real Fashion-MNIST.

Two ways R breaks training, and one more it exposes:

1. Its own stiffness (lambda >= ~1 at lr 0.05): E = w'(L - I)w of each kernel slice is an indefinite quadratic
   form, so ``lambda exp(E)`` has curvature ~2 lambda exp(E) mu (mu up to 6.24 for 5x5) along rough patterns; SGD
   overshoots, and with lambda = 100 (the top of the paper's grid) the first step throws the first layer's
   exponents from ~1 to ~1.7e4: exp overflows. Fixed here: R's gradient clipped per kernel slice (train.sk_clip).
2. The weights it inflates (the quick config's NaN, lambda 0.1): R falls as the flat pattern of every kernel grows
   (E drops by its squared norm), so the no-BatchNorm CNN's convolutions grow ~14x until the cross-entropy's
   gradient runs away (22 -> 117 -> ... -> 1e16 in 9 steps). Fixed in the trainer: the data term's gradient norm
   clipped (train.grad_clip) before R's gradient (regularizers.add_smooth_kernel_gradient) is added.
3. With logits that large a softmax underflows to exactly 0 and the KL of TRADES and L back-propagates NaN through
   ``kl_div(log q, p)``; fixed in objectives by ``log_target``.
The value of R is always the paper's (no rescaling); only the H control (lambda < 0, unbounded below) needs a
documented clamp of its exponent (max_exponent).
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from specrobust.models import SmallCNN
from specrobust.regularizers import (add_smooth_kernel_gradient, clip_slice_grad, smooth_kernel_exponent,
                                    smooth_kernel_penalty)

QUICK_CNN = {"c1": 16, "c2": 32, "hidden": 256}     # config/quick.yaml archs.small_cnn
QUICK_LR, QUICK_MOMENTUM, QUICK_WD = 0.05, 0.9, 5e-4
CLIP = 1.0                                         # the recommended train.sk_clip
CHECKER = 0.5 * torch.tensor([[1.0, 0, 1], [0, 1, 0], [1, 0, 1]])
CENTRE = torch.tensor([[0.0, 0, 0], [0, 1, 0], [0, 0, 0]])


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)   # the test machines share 2 cores


def quick_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return SmallCNN(10, 1, 28, **QUICK_CNN)


def conv_weights(model):
    return [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]


def penalty_grads(model, lam: float, **kw):
    model.zero_grad(set_to_none=True)
    (lam * smooth_kernel_penalty(model, **kw)).backward()
    return [w.grad.clone() for w in conv_weights(model)]


# --------------------------------------------------------------------------------------------- the clip itself
def test_clip_slice_grad_is_identity_forward_and_clips_each_slice_backward():
    w = torch.randn(3, 2, 3, 3, requires_grad=True)
    out = clip_slice_grad(w, 1.0)
    assert torch.equal(out, w)
    g = torch.zeros(3, 2, 3, 3)
    g[0, 0] = 10.0                      # norm 30: clipped to 1, same direction
    g[1, 1] = 0.01                      # norm 0.03: below the bound, passes exactly
    g[2, 0, 1, 1] = -5.0                # norm 5 in one entry
    out.backward(g)                     # zero slices stay zero (no 0/0)
    norms = w.grad.flatten(2).norm(dim=2)
    assert norms[0, 0].item() == pytest.approx(1.0)
    assert torch.allclose(w.grad[0, 0], g[0, 0] / 30)
    assert torch.equal(w.grad[1, 1], g[1, 1])
    assert w.grad[2, 0, 1, 1].item() == pytest.approx(-1.0)
    assert torch.equal(w.grad[0, 1], torch.zeros(3, 3)) and torch.isfinite(w.grad).all()
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="clip"):
            clip_slice_grad(w, bad)


def test_penalty_value_is_the_papers_whatever_the_safeguards():
    model = quick_cnn()
    exact = sum(smooth_kernel_exponent(w, torch.float64).exp().sum() for w in conv_weights(model)).item()
    for kw in ({}, {"clip": CLIP}, {"dtype": torch.float32}, {"clip": 1e-3, "dtype": torch.float32}):
        r = smooth_kernel_penalty(model, **kw)
        assert r.dtype == torch.float32   # the loss keeps the weights' dtype
        assert r.item() == pytest.approx(exact, rel=1e-6)
    for scope in ("layer", "model"):
        assert smooth_kernel_penalty(model, scope, clip=CLIP).item() == pytest.approx(
            smooth_kernel_penalty(model, scope).item(), rel=1e-6)


def test_clip_leaves_ordinary_gradients_exact():
    # lambda 0.01 at initialisation: every slice's gradient of lambda*R is far below 1 (largest ~0.12)
    model = quick_cnn()
    exact, clipped = penalty_grads(model, 0.01), penalty_grads(model, 0.01, clip=CLIP)
    assert all(torch.equal(a, b) for a, b in zip(exact, clipped))
    # float64 and float32 give the same gradient up to rounding
    f32 = penalty_grads(model, 0.01, dtype=torch.float32)
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-9) for a, b in zip(exact, f32))


@pytest.mark.parametrize("lam", [100.0, -100.0])
def test_clip_bounds_each_slice_of_lambda_R_and_keeps_its_direction(lam):
    # the clip acts on d(lambda R)/dw: lambda reaches it through the caller's product, sign included
    model = quick_cnn()
    exact, clipped = penalty_grads(model, lam), penalty_grads(model, lam, clip=CLIP)
    for a, b in zip(exact, clipped):
        na, nb = a.flatten(2).norm(dim=2), b.flatten(2).norm(dim=2)
        assert (nb <= CLIP * (1 + 1e-5)).all()
        assert torch.allclose(nb, na.clamp(max=CLIP), rtol=1e-5)
        cos = torch.nn.functional.cosine_similarity(a.flatten(2), b.flatten(2), dim=2)
        assert torch.allclose(cos, torch.ones_like(cos), atol=1e-5)
    assert max(g.flatten(2).norm(dim=2).max().item() for g in exact) > 100   # it did have work to do


def test_cross_entropy_gradient_does_not_pass_the_clip():
    model = quick_cnn()
    x, y = torch.rand(8, 1, 28, 28), torch.arange(8)
    ce = nn.functional.cross_entropy(model(x), y)
    g_ce = torch.autograd.grad(ce, conv_weights(model), retain_graph=True)
    g_pen = torch.autograd.grad(100.0 * smooth_kernel_penalty(model, clip=CLIP), conv_weights(model))
    g_all = torch.autograd.grad(ce + 100.0 * smooth_kernel_penalty(model, clip=CLIP), conv_weights(model))
    assert all(torch.allclose(a, b + c, atol=1e-6) for a, b, c in zip(g_all, g_ce, g_pen))


@pytest.mark.parametrize("lam,clip", [(0.1, None), (100.0, CLIP), (-100.0, CLIP)])
def test_add_smooth_kernel_gradient_equals_one_backward_of_the_sum(lam, clip):
    # the trainer's split (data term backward [+ its clip], then the penalty's gradient added) gives, without a
    # data clip, exactly the gradient of CE + lambda R, and lambda R as the value
    x, y = torch.rand(8, 1, 28, 28), torch.arange(8)
    model = quick_cnn()
    (nn.functional.cross_entropy(model(x), y) + lam * smooth_kernel_penalty(model, clip=clip)).backward()
    joint = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(x), y).backward()
    value = add_smooth_kernel_gradient(model, lam, clip=clip)
    assert all(torch.allclose(a, p.grad, rtol=1e-5, atol=1e-7) for a, p in zip(joint, model.parameters()))
    assert value.item() == pytest.approx(lam * smooth_kernel_penalty(model).item(), rel=1e-6)
    assert not value.requires_grad
    model.zero_grad(set_to_none=True)                     # no data-term gradient yet: .grad is created
    add_smooth_kernel_gradient(model, lam, clip=clip)
    added = [w.grad.clone() for w in conv_weights(model)]
    assert all(torch.equal(a, b) for a, b in zip(added, penalty_grads(model, lam, clip=clip)))


def test_float64_keeps_the_gradient_finite_past_float32_exp_range():
    # one 3x3 checkerboard slice with exponent ~96 > 88.7 = log(float32 max): R itself is inf in float32 (the
    # trainer's NonFiniteLoss reports it), but in float64 the clipped gradient stays finite and points downhill
    conv = nn.Sequential(nn.Conv2d(1, 1, 3, bias=False))
    with torch.no_grad():
        conv[0].weight.copy_(2.0 * (torch.arange(9).view(3, 3) % 2 * 2 - 1.0))
    e = smooth_kernel_exponent(conv[0].weight).item()
    assert 88.7 < e < 700
    penalty_grads(conv, 1.0, dtype=torch.float32, clip=CLIP)
    assert not torch.isfinite(conv[0].weight.grad).all()
    g = penalty_grads(conv, 1.0, clip=CLIP)[0]
    assert torch.isfinite(g).all() and g.norm().item() == pytest.approx(CLIP, rel=1e-5)
    with torch.no_grad():                                  # a small step along -g lowers the exponent
        conv[0].weight.sub_(0.01 * g)
    assert smooth_kernel_exponent(conv[0].weight).item() < e


# ------------------------------------------------------------------------ the penalty's own SGD dynamics
def penalty_only_sgd(lam: float, steps: int, seed: int = 0, **kw):
    """SGD with the quick config's lr, momentum and weight decay on lambda * R alone; returns the step at which
    the loss or a weight first became non-finite (None if never) and the largest slice exponent seen."""
    model = quick_cnn(seed)
    opt = torch.optim.SGD(model.parameters(), lr=QUICK_LR, momentum=QUICK_MOMENTUM, weight_decay=QUICK_WD)
    worst = -math.inf
    for step in range(steps):
        loss = lam * smooth_kernel_penalty(model, **kw)
        if not torch.isfinite(loss):
            return step, worst
        opt.zero_grad()
        loss.backward()
        opt.step()
        if not all(torch.isfinite(p).all() for p in model.parameters()):
            return step, worst
        with torch.no_grad():
            worst = max(worst, max(smooth_kernel_exponent(w).max().item() for w in conv_weights(model)))
    return None, worst


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_regression_lambda_100_exact_gradient_overflows_at_once_clipped_does_not(seed):
    # The deterministic regression case: before the fix (exact gradient, float32 as the old code), lambda = 100
    # at lr 0.05 overshoots on the first step and R is inf at step 1, for every seed; float64 alone only delays
    # nothing (the exponent jumps to ~1e4). With the per-slice clip the exponents stay small for 60 steps.
    bad, _ = penalty_only_sgd(100.0, 5, seed, dtype=torch.float32)
    assert bad is not None and bad <= 2
    bad, _ = penalty_only_sgd(100.0, 5, seed)
    assert bad is not None and bad <= 2
    bad, worst = penalty_only_sgd(100.0, 60, seed, clip=CLIP)
    assert bad is None and worst < 3.0


def test_h_control_is_unbounded_below_so_the_clip_only_delays_overflow():
    # lambda < 0 maximises exp(E): nothing bounds -|lambda| R from below, so a faithful "H" run must overflow in
    # the end. The clip turns "at once" (step <= 2) into "after a dozen steps" at the quick lr; documented, not
    # hidden (the trainer stops with NonFiniteLoss).
    exact, _ = penalty_only_sgd(-100.0, 5, dtype=torch.float32)
    clipped, worst = penalty_only_sgd(-100.0, 200, clip=CLIP)
    assert exact is not None and exact <= 2
    assert clipped is not None and clipped > 5 and worst > 80
    # the H runs' documented deviation: each slice's exponent clamped at max_exponent keeps R finite
    capped, _ = penalty_only_sgd(-100.0, 200, clip=CLIP, max_exponent=5.0)
    assert capped is None


def test_max_exponent_clamps_each_exponent_and_stops_its_gradient():
    conv = nn.Sequential(nn.Conv2d(1, 3, 3, bias=False))
    with torch.no_grad():   # exponents 1.75 (checkerboard), 3 (centre spike), -9 (flat 1s: 12 * 0 - 9)
        conv[0].weight.copy_(torch.stack([CHECKER, CENTRE, torch.ones(3, 3)])[:, None])
    e = smooth_kernel_exponent(conv[0].weight).flatten().tolist()
    assert e == pytest.approx([1.75, 3.0, -9.0])
    r = smooth_kernel_penalty(conv, max_exponent=2.0)
    assert r.item() == pytest.approx(math.exp(1.75) + math.exp(2.0) + math.exp(-9.0), rel=1e-6)
    g = penalty_grads(conv, -100.0, max_exponent=2.0)[0]
    assert torch.equal(g[1], torch.zeros(1, 3, 3))          # above the bound: no gradient
    assert torch.allclose(g[[0, 2]], penalty_grads(conv, -100.0)[0][[0, 2]])   # below it: the exact one
    # a bound above every exponent changes nothing
    assert smooth_kernel_penalty(conv, max_exponent=50.0).item() == smooth_kernel_penalty(conv).item()
    for scope in ("layer", "model"):   # clamps the exponent of the scope: here the one sum, -4.25
        assert smooth_kernel_penalty(conv, scope, max_exponent=-5.0).item() == pytest.approx(math.exp(-5.0))
        assert smooth_kernel_penalty(conv, scope, max_exponent=2.0).item() == pytest.approx(math.exp(-4.25))


# --------------------------------------------------------------- training the quick config's *R methods
FASHION = Path("/usr/share/datasets/fashion-mnist")
ROOT = Path(__file__).resolve().parents[1]
N_TRAIN = 8 * 128            # 8 SGD steps of the quick batch size, at the quick lr (0.05), eps, PGD and weight decay


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    if not FASHION.is_dir():
        pytest.skip(f"real Fashion-MNIST not found at {FASHION}")
    from specrobust.data import load_prepared, prepare

    out = tmp_path_factory.mktemp("sk") / "fashionmnist.npz"
    prepare("fashionmnist", out, root=str(out.parent), train_limit=N_TRAIN, val_limit=32, test_limit=32)
    return load_prepared(out, "fashionmnist")


def quick_spec(method: str, seed: int, lam: float, **train):
    import yaml

    from specrobust.config import deep_merge
    from specrobust.jobs import run_spec

    config = deep_merge(yaml.safe_load((ROOT / "config/config.yaml").read_text()),
                        yaml.safe_load((ROOT / "config/quick.yaml").read_text()))
    config = deep_merge(config, {"train": {"sk_lambda": lam, "sk_clip": CLIP, "train_limit": None, "val_limit": 32,
                                           "val_steps": 2, "test_curve_limit": 0, "device": "cpu", **train},
                                 "methods": {method: {"train": {"train_limit": None}}}})
    spec = run_spec(config, "fashionmnist", "small_cnn", method, seed)
    assert (spec.lr, spec.eps, spec.steps, spec.sk) == (QUICK_LR, 0.1, 10, True)
    return spec


def train_one_epoch(data, spec):
    """Epoch 0 of the real Trainer (which passes train.sk_clip to the penalty); NonFiniteLoss propagates."""
    from specrobust.train import Trainer

    return Trainer(spec, data, "cpu").train_epoch()


def test_regression_old_penalty_diverges_on_real_data(fashion):
    # before the fix (sk_clip: null, the exact gradient): sk_ar at the quick settings with lambda = 100 (the
    # paper's grid) stops with a non-finite loss; float64 alone does not help (the exponent jumps to ~1e4)
    from specrobust.train import NonFiniteLoss

    with pytest.raises(NonFiniteLoss):
        train_one_epoch(fashion, quick_spec("sk_ar", 0, 100.0, sk_clip=None))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("method", ["sk_vr", "sk_tr", "sk_ar", "sk_lr"])
def test_quick_r_methods_survive_the_weight_inflation(fashion, method, seed):
    # Past the first few steps, R's pull on the flat (DC) pattern of every kernel (its exponent falls by the
    # pattern's squared norm) has inflated the no-BatchNorm CNN's convolutions many-fold; then the data term spikes
    # (CE) or back-propagates NaN through a softmax that underflowed to exactly 0 (the KL of TRADES and L). Measured
    # with the penalty's clip alone, in these 24 steps: sk_tr and sk_lr stop with NonFiniteLoss for 3 of 3 seeds
    # (in the first two epochs), sk_ar for 2 of 3 (its loss jumps to 2.3e5 first). With train.grad_clip on the data
    # term (R's gradient added after it: regularizers.add_smooth_kernel_gradient) but the KL still on
    # probabilities, sk_tr still stops in the third epoch. Passing needs all three: train.sk_clip, train.grad_clip,
    # and the KL of TRADES and L taken on log-probabilities (``log_target``).
    from specrobust.train import Trainer

    spec = quick_spec(method, seed, 100.0, grad_clip=10.0)
    assert spec.sk_clip == CLIP and spec.grad_clip == 10.0
    trainer = Trainer(spec, fashion, "cpu")
    for _ in range(3):
        assert math.isfinite(trainer.train_epoch()["train_loss"])
