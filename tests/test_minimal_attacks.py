"""The smooth-kernel paper's minimal-perturbation attacks: DeepFool against its closed form on linear models, ADef
against foolbox 2 and its own building blocks, salt-and-pepper's noise, the eps bound and the config wiring."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import saved_tiny_run
from specrobust import evaluate, minimal_attacks as ma
from specrobust.io import ConfigError


def binary_linear(margin=2.0, seed=0):
    """A 2-class linear model on (4, 3, 4, 4) inputs in [0.3, 0.7], each predicted class 0 with logit gap
    f = (w1 - w0).x + b = -margin; returns model, x, y and w = w1 - w0."""
    g = torch.Generator().manual_seed(seed)
    x = 0.3 + 0.4 * torch.rand(4, 3, 4, 4, generator=g)
    w = torch.randn(48, generator=g)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 2)).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.stack([torch.zeros(48), w]))
        model[1].bias.zero_()
    b = -margin - (x.flatten(1) @ w)          # one bias per example, so each sits at the same logit gap
    return Biased(model, b).eval(), x, torch.zeros(4, dtype=torch.long), w


class Biased(torch.nn.Module):
    """A linear model plus a fixed bias per example of the batch (affine in x for each example)."""

    def __init__(self, lin, b):
        super().__init__()
        self.lin, self.b = lin, b

    def forward(self, z):
        return self.lin(z) + torch.stack([torch.zeros_like(self.b), self.b], 1)


@pytest.mark.parametrize("attack,dual", [(ma.deepfool_l2, 2), (ma.deepfool_linf, 1)])
def test_deepfool_reaches_the_linear_boundary_with_foolbox_overshoot(attack, dual):
    """For an affine binary classifier the closest boundary point is |f| / ||w||_dual away (dual norm: L2 for L2,
    L1 for L-inf); foolbox's DeepFool steps there (+1e-4) and scales the perturbation by 1 + overshoot (0.02)."""
    model, x, y, w = binary_linear()
    x_adv = attack(model, x, y)
    norm = 2 if dual == 2 else float("inf")
    dist = (x_adv - x).flatten(1).norm(p=norm, dim=1)
    expected = 1.02 * (2.0 / w.norm(p=dual) + 1e-4)
    assert dist.tolist() == pytest.approx([expected.item()] * 4, rel=1e-3)
    assert (model(x_adv).argmax(1) == 1).all()


def test_eps_bound_keeps_examples_fooled_only_beyond_it():
    model, x, y, w = binary_linear()
    d = 1.02 * (2.0 / w.abs().sum() + 1e-4)   # DeepFool L-inf's distance on this model
    assert torch.equal(ma.deepfool_linf(model, x, y, eps=0.9 * d), x)          # too far: the clean x, still right
    assert (model(ma.deepfool_linf(model, x, y, eps=1.1 * d)).argmax(1) == 1).all()
    x_adv = x + torch.tensor([0.05, 0.2, 0.0, 0.09]).view(4, 1, 1, 1)
    assert torch.equal(ma.within(x, x_adv, 0.1), torch.where(torch.tensor([0, 1, 0, 0]).bool().view(4, 1, 1, 1), x,
                                                               x_adv))


# ------------------------------------------------------------------------------------------------------------- ADef
H = W = 16
YS, XS = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")


def blob(cx, cy=7.5, s=2.0):
    return 0.05 + 0.9 * torch.exp(-((XS - cx) ** 2 + (YS - cy) ** 2) / (2 * s * s))


class RightOfCentre(torch.nn.Module):
    """Class 1 when the image's mass lies right of the centre (logit exp(s) - 1, s the centred first moment)."""

    def forward(self, x):
        s = (x.sum(1) * (torch.arange(W, dtype=x.dtype) - (W - 1) / 2)).sum((1, 2)) / 10
        return torch.stack([torch.zeros_like(s), torch.exp(s) - 1], 1)


def test_adef_moves_the_blob_across_and_matches_foolbox2():
    """Blobs left of the centre are deformed to the right class. Reference: foolbox 2.4.0's ADefAttack
    (subsample=2, other defaults) on the same inputs gave these image sums and L-inf distances."""
    model = RightOfCentre()
    x = torch.stack([blob(c) for c in (6.0, 6.5, 7.0)])[:, None]
    y = model(x).argmax(1)
    assert y.tolist() == [0, 0, 0]
    x_adv, tau, fooled = ma.adef_field(model, x, y)
    assert fooled.all() and (model(x_adv).argmax(1) == 1).all()
    assert x_adv.sum((1, 2, 3)).tolist() == pytest.approx([32.039330, 32.404831, 34.187145], abs=1e-4)
    assert (x_adv - x).abs().amax((1, 2, 3)).tolist() == pytest.approx([0.853906, 0.642132, 0.278478], abs=1e-4)
    # a deformation resamples x: values stay within the image's own range (so within [0, 1]); the field is the one
    # that produced it, and it moves mass rightwards (sampling from the left: negative x-displacement on average)
    assert x_adv.min() >= x.min() and x_adv.max() <= x.max()
    assert torch.equal(ma.deform(x, tau), x_adv)
    assert (tau[:, 0].mean((1, 2)) < 0).all()
    bounded = ma.adef(model, x, y, eps=0.3)                  # L-inf 0.85 and 0.64: too far; 0.28: kept
    assert torch.equal(bounded[:2], x[:2]) and torch.equal(bounded[2], x_adv[2])


def test_adef_step_is_the_smoothed_least_norm_field():
    """One ADef step, recomputed with numpy and scipy: tau = -f S(S alpha) / ||S alpha||^2, alpha = grad f * grad x
    (central differences), S = scipy's Gaussian filter with sigma 1; one step suffices for these blobs."""
    ndimage = pytest.importorskip("scipy.ndimage")
    model = RightOfCentre()
    x = torch.stack([blob(6.0), blob(7.0)])[:, None]
    _, tau, fooled = ma.adef_field(model, x, torch.zeros(2, dtype=torch.long), max_iter=1)
    assert fooled.all()
    for i in range(2):
        xi = x[i:i + 1].clone().requires_grad_(True)
        out = model(xi)
        f = (out[0, 1] - out[0, 0]).item()
        g = torch.autograd.grad(out[0, 1] - out[0, 0], xi)[0][0, 0].double().numpy()
        dy, dx = np.gradient(x[i, 0].double().numpy())
        alpha = np.stack([ndimage.gaussian_filter(g * d, 1.0) for d in (dx, dy)])
        expected = -f * np.stack([ndimage.gaussian_filter(a, 1.0) for a in alpha]) / (alpha ** 2).sum()
        assert np.allclose(tau[i].double().numpy(), expected, atol=1e-5 * np.abs(expected).max())


def test_adef_leaves_misclassified_inputs_alone():
    model = RightOfCentre()
    x = torch.stack([blob(6.5), blob(9.0)])[:, None]
    x_adv, tau, fooled = ma.adef_field(model, x, torch.zeros(2, dtype=torch.long))   # the second is misclassified
    assert fooled.tolist() == [True, True] and torch.equal(x_adv[1], x[1]) and not tau[1].any() and tau[0].any()


def test_deform_is_border_clamped_bilinear_resampling():
    g = torch.Generator().manual_seed(0)
    x, tau = torch.rand(3, 2, 9, 13, generator=g), 3 * torch.randn(3, 2, 9, 13, generator=g)
    grid = torch.stack([2 * (XS[:9, :13] + tau[:, 0]) / 12 - 1, 2 * (YS[:9, :13] + tau[:, 1]) / 8 - 1], -1)
    ref = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
    assert torch.allclose(ma.deform(x, tau), ref, atol=1e-5)
    assert torch.equal(ma.deform(x, torch.zeros_like(tau)), x)                  # identity field: x bit for bit
    shift = torch.zeros_like(tau)
    shift[:, 0] = 1.0                                                          # sample one pixel to the right
    assert torch.equal(ma.deform(x, shift)[..., :-1], x[..., 1:])


def test_gaussian_smooth_is_scipys_gaussian_filter():
    ndimage = pytest.importorskip("scipy.ndimage")
    a = torch.randn(2, 2, 9, 13, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for sigma in (1.0, 0.7, 3.0):   # sigma 3: a kernel wider than the 9-pixel axis, reflected more than once
        ref = ndimage.gaussian_filter(a.numpy(), (0, 0, sigma, sigma))
        assert np.allclose(ma.gaussian_smooth(a, sigma).numpy(), ref, atol=1e-12)


# ----------------------------------------------------------------------------------------------- salt and pepper
def test_salt_pepper_sets_whole_pixels_to_0_or_1_and_is_reproducible():
    torch.set_num_threads(1)   # 3 x 1000 tiny forward passes: threads only add overhead (conftest resets the count)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 10)).eval()
    x = 0.2 + 0.6 * torch.rand(6, 3, 8, 8)
    y = model(x).argmax(1)
    torch.manual_seed(1)
    a = ma.salt_pepper(model, x, y)
    torch.manual_seed(1)
    b = ma.salt_pepper(model, x, y)
    torch.manual_seed(2)
    c = ma.salt_pepper(model, x, y)
    assert torch.equal(a, b) and not torch.equal(a, c)
    changed = a != x
    assert changed.any() and ((a[changed] == 0) | (a[changed] == 1)).all()
    assert (changed == changed[:, :1]).all()                   # the same noise across the colour channels
    assert (model(a).argmax(1) != y).sum() >= 3


def test_evaluation_seeds_salt_pepper(monkeypatch):
    """``evaluate_attack`` seeds torch's global RNG (salt-and-pepper's source) before the attack, so the noise does
    not depend on what ran before; the spy records the RNG's next draws at the time of the attack."""
    seen = []
    monkeypatch.setattr(ma, "salt_pepper", lambda model, x, y, eps: seen.append(torch.rand(3)) or x)
    model, x, y = torch.nn.Flatten().eval(), torch.rand(2, 1, 2, 2), torch.zeros(2, dtype=torch.long)
    for _ in range(2):
        evaluate.evaluate_attack(model, x, y, {"type": "salt_pepper"}, "sp", 0.1, 2, seed=3)
        torch.rand(100)
    torch.manual_seed(3)
    assert len(seen) == 2 and torch.equal(seen[0], seen[1]) and torch.equal(seen[0], torch.rand(3))


# ------------------------------------------------------------------------------------------------------ wiring
@pytest.mark.parametrize("kind", evaluate.MINIMAL_ATTACKS)
def test_make_attack_passes_the_bound(monkeypatch, kind):
    got = []
    monkeypatch.setattr(ma, kind, lambda model, x, y, eps: got.append(eps) or x)
    for cfg in ({"type": kind}, {"type": kind, "eps": "1/10"}, {"type": kind, "unbounded": True},
                {"type": kind, "unbounded": False}):
        evaluate.make_attack(cfg, 0.3, "a")(None, torch.zeros(1), None)
    assert got == [0.3, pytest.approx(0.1), None, 0.3]


@pytest.mark.parametrize("cfg,token", [
    ({"type": "deepfool"}, "evaluation.attacks.a.type"),
    ({"type": "pgd", "unbounded": True}, "evaluation.attacks.a.unbounded"),
    ({"type": "adef", "unbounded": True, "eps": 0.1}, "evaluation.attacks.a.unbounded"),
])
def test_make_attack_rejects_bad_entries(cfg, token):
    with pytest.raises(ConfigError, match=token) as err:
        evaluate.make_attack(cfg, 0.3, "a")
    assert "\n" not in str(err.value)


def test_unbounded_evaluation_reports_no_eps(tmp_path):
    """An unbounded attack's JSON says eps null (not the run's eps), and the table note says so."""
    from specrobust import tables
    saved_tiny_run(tmp_path, "sk_v", 10)
    r = evaluate.run_evaluation(tmp_path / "model.pt", tmp_path / "d.npz", "deepfool_linf",
                                {"type": "deepfool_linf", "unbounded": True}, tmp_path / "o.json",
                                tmp_path / "o.npz", log=lambda m: None)
    assert r["eps"] is None and r["correct"] == 0      # unbounded DeepFool fools every example
    table = tables.build_table(tables.read_results([tmp_path / "o.json"]), ["deepfool_linf"],
                               [("mnist", "small_cnn", "sk_v")])
    assert "L-inf eps: none" in tables.to_markdown(table, ["deepfool_linf"], "t", {})
