"""The smooth-kernel paper's minimal-perturbation attacks: FGSM, PGD, DeepFool and C&W against their closed forms on
linear models and (FGSM, PGD, C&W, ADef) against foolbox 2, ADef's building blocks, salt-and-pepper's noise, the eps
bound, the per-example distances and accuracy curve of Appendix B, and the config wiring."""
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


# ------------------------------------------------------------------------------------ foolbox 2's FGSM, PGD, C&W
def affine_binary(margins=(2.0, 0.3, 1.0, 0.05), seed=0, unfoolable=False):
    """A 2-class linear model on (n, 3, 4, 4) inputs in [0.27, 0.73] (for margins up to 2) whose logit gap
    f = w.x (class 1 minus class 0) is -margin at example i: class 0 everywhere, fooled along sign(w) at L-inf
    distance margin / ||w||_1 and in L2 at margin / ||w||_2 (the box does not bind). Unlike :func:`binary_linear`,
    each example's logits depend on that example only, so the attacks may run any subset of the batch.
    ``unfoolable``: class 1's bias is -100 instead, more than any input in [0, 1] can make up (||w||_1 < 40).
    Returns model, x, y, w."""
    torch.set_num_threads(1)        # tiny batches: a second thread only adds overhead (conftest resets the count)
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(48, generator=g)
    base = 0.35 + 0.3 * torch.rand(len(margins), 48, generator=g)
    t = (-torch.tensor(margins) - base @ w) / w.abs().sum()
    x = (base + t[:, None] * w.sign()).view(-1, 3, 4, 4)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 2)).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.stack([torch.zeros(48), w]))
        model[1].bias.copy_(torch.tensor([0.0, -100.0 if unfoolable else 0.0]))
    return model, x, torch.zeros(len(margins), dtype=torch.long), w


def fgsm_grid_hit(e_star):
    """The epsilon foolbox 2's GradientSignAttack stops at when every eps > e_star fools (and none below): the first
    of linspace(0, 1, 1001)[1:] past e_star, refined over linspace(0, that, 21)[1:] when it is among the first 20."""
    grid = np.linspace(0, 1, 1001)[1:]
    i = int(np.argmax(grid > e_star))
    if i < 20:
        fine = np.linspace(0, grid[i], 21)[1:]
        return fine[np.argmax(fine > e_star)]
    return grid[i]


def test_fgsm_min_stops_at_the_first_grid_eps_past_the_boundary():
    """Along sign(w) the boundary is at e* = margin / ||w||_1 (0.054, 0.0081, 0.027, 0.0013 here): fgsm_min stops at
    the first of 1000 epsilons past it (grid spacing 0.001), on a 20x finer grid when that is among the first 20."""
    model, x, y, w = affine_binary()
    e_star = (torch.tensor([2.0, 0.3, 1.0, 0.05]) / w.abs().sum()).double()
    x_adv = ma.fgsm_min(model, x, y)
    assert (model(x_adv).argmax(1) == 1).all()
    expected = [fgsm_grid_hit(e) for e in e_star.tolist()]
    assert ma._linf(x, x_adv).tolist() == pytest.approx(expected, abs=1e-6)
    assert all(e < h <= e + s for e, h, s in zip(e_star.tolist(), expected, [0.001, 0.00045, 0.001, 0.0001]))
    assert torch.allclose(x_adv - x, torch.tensor(expected, dtype=x.dtype).view(4, 1, 1, 1) * w.sign().view(3, 4, 4),
                          atol=1e-6)


def test_fgsm_min_leaves_unfoolable_and_misclassified_inputs_alone():
    """No step fools the unfoolable model: the 1000 epsilons and the 20 retried ones fail and x comes back; an
    example misclassified already is not attacked; the line search clips to [0, 1]."""
    model, x, y, _ = affine_binary((2.0, 1.0, 1.0), unfoolable=True)
    y[2] = 1
    assert torch.equal(ma.fgsm_min(model, x, y), x)
    model, x, y, _ = affine_binary((2.0, 1.0, 1.0))
    y[2] = 1
    x[1, 0], x[1, 1] = 1.0, 0.0                     # pixels at the bounds
    x_adv = ma.fgsm_min(model, x, y)
    assert torch.equal(x_adv[2], x[2]) and not torch.equal(x_adv[1], x[1])
    assert x_adv.min() >= 0 and x_adv.max() <= 1 and (model(x_adv[:2]).argmax(1) == 1).all()


def test_pgd_min_binary_search_finds_the_linf_distance():
    """With the step a 30th of eps, 40 sign steps reach the corner x + eps sign(w) of the eps-ball, the L-inf optimum
    of an affine classifier: the exponential + 20-step bisection search (bracket 0.3 / 2^20) ends within 2e-6 of
    e* = margin / ||w||_1, along sign(w). Where all 20 exponential tries fail, x comes back."""
    model, x, y, w = affine_binary()
    x_adv = ma.pgd_min(model, x, y)
    e_star = (torch.tensor([2.0, 0.3, 1.0, 0.05]) / w.abs().sum()).tolist()
    assert (model(x_adv).argmax(1) == 1).all()
    assert all(e < d < e + 2e-6 for e, d in zip(e_star, ma._linf(x, x_adv).tolist()))
    assert ((x_adv - x).sign() == w.sign().view(3, 4, 4)).all()
    model, x, y, _ = affine_binary((2.0,), unfoolable=True)
    assert torch.equal(ma.pgd_min(model, x, y), x)


def test_cw_l2_reaches_the_l2_boundary():
    """The least-L2 adversarial of an affine classifier lies margin / ||w||_2 away along w; C&W with foolbox 2's
    defaults (5 constants, 1000 Adam steps, per-example early abort) ends just beyond it, nearly along w (Adam's
    first steps are sign-like, and its path does not quite straighten out for every input)."""
    model, x, y, w = affine_binary()
    x_adv = ma.cw_l2(model, x, y)
    assert (model(x_adv).argmax(1) == 1).all()
    d_star = (torch.tensor([2.0, 0.3, 1.0, 0.05]) / w.norm()).tolist()
    l2 = (x_adv - x).flatten(1).norm(dim=1).tolist()
    assert all(d < got <= 1.03 * d for d, got in zip(d_star, l2))
    cos = F.cosine_similarity((x_adv - x).flatten(1), w.expand(4, -1), dim=1)
    assert (cos > 0.98).all()


def tiny_mlp(scale):
    """A 48-16-5 tanh network with fixed random weights (first layer scaled by ``scale``: 0.25 puts the boundaries
    0.004 to 0.06 away in L-inf, 0.05 puts them 0.24 to 0.34 away) and 8 inputs; the first label is wrong."""
    g = torch.Generator().manual_seed(5)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 16), torch.nn.Tanh(),
                                torch.nn.Linear(16, 5)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) / 3)
        model[1].weight.mul_(scale)
    x = 0.2 + 0.6 * torch.rand(8, 3, 4, 4, generator=g)
    y = model(x).argmax(1)
    y[0] = (y[0] + 1) % 5
    return model, x, y


# foolbox 2.4.0 (FGSM, PGD, CarliniWagnerL2Attack(max_iterations=300), other arguments default, inputs as float32)
# on tiny_mlp(scale): L2 and L-inf size of each returned adversarial
FOOLBOX2 = {
    (0.25, "fgsm_min"): ([0.0, 0.207846, 0.145492, 0.031177, 0.07621, 0.125054, 0.180133, 0.429549],
                         [0.0, 0.03, 0.021, 0.0045, 0.011, 0.01805, 0.026, 0.062]),
    (0.25, "pgd_min"): ([0.0, 0.202642, 0.142019, 0.030012, 0.075616, 0.121263, 0.170227, 0.420531],
                        [0.0, 0.029249, 0.020499, 0.004332, 0.010914, 0.017658, 0.024811, 0.06134]),
    (0.25, "cw_l2"): ([0.0, 0.150971, 0.095184, 0.019481, 0.049492, 0.070718, 0.128528, 0.323858],
                      [0.0, 0.056496, 0.035908, 0.006527, 0.015904, 0.02472, 0.046644, 0.11189]),
    (0.05, "fgsm_min"): ([0.0, 2.113423, 1.700055, 2.324021, 1.860669, 2.049031, 1.779262, 1.957953],
                         [0.0, 0.317, 0.25, 0.342, 0.272, 0.303, 0.26, 0.29]),
    (0.05, "pgd_min"): ([0.0, 2.113095, 1.632079, 2.249351, 1.802282, 1.979142, 1.777688, 1.958911],
                        [0.0, 0.320256, 0.240153, 0.333947, 0.265793, 0.294691, 0.260372, 0.290962]),
    (0.05, "cw_l2"): ([0.0, 1.257458, 1.241239, 1.470481, 1.402497, 1.581561, 1.106501, 1.196739],
                      [0.0, 0.309603, 0.311502, 0.34184, 0.363396, 0.40036, 0.275779, 0.284506]),
}


@pytest.mark.parametrize("scale,name", list(FOOLBOX2))
def test_matches_foolbox2(scale, name):
    """Against foolbox 2.4.0 itself on a small nonlinear net: FGSM's refined and unrefined line search, PGD's
    bisection (scale 0.25) and exponential phase (0.05: eps 0.45 for two inputs), C&W's constant search and early
    abort; the misclassified input is left alone. (foolbox 2 batches its forward passes across inputs, so its own
    results move by ~1e-6 with the batch; ours agree to that.)"""
    torch.set_num_threads(1)
    model, x, y = tiny_mlp(scale)
    x_adv = getattr(ma, name)(model, x, y, **({"max_iterations": 300} if name == "cw_l2" else {}))
    l2, linf = FOOLBOX2[scale, name]
    d = ma.distances(x, x_adv, torch.ones(8, dtype=torch.bool))
    assert d["l2"].tolist() == pytest.approx(l2, abs=1e-4)
    assert d["linf"].tolist() == pytest.approx(linf, abs=1e-4)
    assert torch.equal(x_adv[0], x[0]) and (model(x_adv[1:]).argmax(1) != y[1:]).all()


def test_cw_l2_matches_foolbox3_without_early_abort():
    """Without early abort foolbox 3's L2CarliniWagnerAttack with foolbox 2's values is the same algorithm (its abort
    test sums the loss over the batch, so it differs with abort_early): the same adversarials."""
    import foolbox as fb
    torch.set_num_threads(1)
    model, x, y = tiny_mlp(0.25)
    x, y = x[1:], y[1:]
    ours = ma.cw_l2(model, x, y, max_iterations=100, abort_early=False)
    attack = fb.attacks.L2CarliniWagnerAttack(binary_search_steps=5, steps=100, stepsize=5e-3, confidence=0,
                                              initial_const=1e-2, abort_early=False)
    theirs, _, _ = attack(fb.PyTorchModel(model, bounds=(0, 1)), x, y, epsilons=None)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_new_attacks_are_deterministic_and_respect_the_bound():
    torch.set_num_threads(1)
    model, x, y = tiny_mlp(0.25)
    for fn, kw in ((ma.fgsm_min, {}), (ma.pgd_min, {"iterations": 5}), (ma.cw_l2, {"max_iterations": 50})):
        a, b = fn(model, x, y, **kw), fn(model, x, y, **kw)
        assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1
        bounded = fn(model, x, y, eps=0.02, **kw)
        far = ma._linf(x, a) > 0.02
        assert far.any() and (~far).any()
        assert torch.equal(bounded, torch.where(far.view(-1, 1, 1, 1), x, a))


# ------------------------------------------------------------------------------------------ distances, accuracy
def test_distances_by_hand():
    """l0 counts changed values (each channel: foolbox 2's L0), l2 and linf as usual; inf where not fooled; an input
    misclassified already comes back as x and is fooled at distance 0."""
    x = torch.full((3, 2, 2, 2), 0.5)
    x_adv = x.clone()
    x_adv[0, 0, 0, 0] += 0.3
    x_adv[0, 1, 0, 0] -= 0.4                      # the same pixel's other channel: a second value
    x_adv[1, 0, 1, 1] = 0.9                       # changed, but the attack did not fool it
    d = ma.distances(x, x_adv, torch.tensor([True, False, True]))
    assert d["l0"].tolist() == [2, np.inf, 0]
    assert d["l2"].tolist() == pytest.approx([0.5, np.inf, 0.0])
    assert d["linf"].tolist() == pytest.approx([0.4, np.inf, 0.0])
    assert all(v.dtype == np.float64 and v.shape == (3,) for v in d.values())


def test_accuracy_at_by_hand_and_non_increasing():
    dist = [0.0, 0.1, 0.5, np.inf]          # misclassified already, fooled at 0.1 and at 0.5, not fooled
    assert ma.accuracy_at(dist, [0, 0.05, 0.1, 0.3, 1.0, np.inf]).tolist() == [75, 75, 50, 50, 25, 25]
    assert ma.robust_at(dist, 0.1).tolist() == [False, False, True, True]
    assert ma.robust_at(dist, None).tolist() == [False, False, False, True]
    rng = np.random.default_rng(0)
    d = np.where(rng.random(200) < 0.2, np.inf, rng.exponential(0.1, 200))
    acc = ma.accuracy_at(d, np.linspace(0, 1, 101))
    assert (np.diff(acc) <= 0).all() and acc[0] == 100 and acc[-1] == pytest.approx(100 * np.isinf(d).mean())
    assert np.isnan(ma.accuracy_at([], [0.1])).all()


def test_run_minimal_gives_the_table_count_and_the_curve_from_one_run():
    """One unbounded run: the bounded adversarial counts exactly what accuracy_at / robust_at say at that bound,
    including an input whose distance equals the bound (fooled within it); distances 0 for the misclassified
    input and inf for the unfoolable one; one call of the attack."""
    model, x, y, _ = affine_binary((2.0, 0.5, 1.0, 0.3))
    y[3] = 1                                                     # misclassified already
    calls = []

    def spy(model, x, y, eps=None):                              # FGSM that fails on example 1
        calls.append(eps)
        x_adv = ma.fgsm_min(model, x, y)
        x_adv[1] = x[1]
        return x_adv

    _, d = ma.run_minimal(spy, model, x, y)
    bound = float(d["linf"][2])                                  # exactly example 2's distance
    x_b, d2 = ma.run_minimal(spy, model, x, y, bound)
    assert calls == [None, None] and all(np.array_equal(d[k], d2[k]) for k in d)
    assert d["linf"][1] == np.inf and d["l0"][3] == d["l2"][3] == d["linf"][3] == 0
    assert d["linf"][0] > bound and d["l0"][2] == 48             # FGSM moves every value
    correct = (model(x_b).argmax(1) == y).numpy()
    assert correct.tolist() == [True, True, False, False]
    assert np.array_equal(correct, ma.robust_at(d["linf"], bound))
    assert ma.accuracy_at(d["linf"], [bound])[0] == 100 * correct.mean()


def test_run_minimal_resets_what_the_attack_did_not_fool():
    """An attack's non-adversarial output (foolbox 3's DeepFool returns its last iterate) counts as x."""
    model, x, y, _ = affine_binary((2.0, 1.0))
    x_b, d = ma.run_minimal(lambda model, x, y, eps=None: x + 0.01, model, x, y, 0.5)
    assert torch.equal(x_b, x) and np.isinf(d["l2"]).all()


def test_registry_names_the_module_functions():
    assert all(getattr(ma, name) is fn for name, fn in ma.ATTACKS.items())
    assert set(evaluate.MINIMAL_ATTACKS) <= set(ma.ATTACKS)
    assert {"fgsm_min", "pgd_min", "cw_l2"} <= set(ma.ATTACKS)


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


def test_salt_pepper_steps_is_its_number_of_forward_passes():
    """The smoke config shrinks ``steps``; foolbox must receive it, not keep its 1,000."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 10)).eval()
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    x = 0.2 + 0.6 * torch.rand(4, 3, 8, 8)
    y = model(x).argmax(1)
    for steps in (5, 40):
        calls.clear()
        ma.salt_pepper(model, x, y, steps=steps)
        assert steps <= len(calls) <= steps + 3, (steps, len(calls))   # + foolbox's checks of x and the result


def test_evaluation_seeds_salt_pepper(monkeypatch):
    """``evaluate_attack`` seeds torch's global RNG (salt-and-pepper's source) before the attack, so the noise does
    not depend on what ran before; the spy records the RNG's next draws at the time of the attack."""
    seen = []
    monkeypatch.setattr(ma, "salt_pepper", lambda model, x, y, eps, **kw: seen.append(torch.rand(3)) or x)
    model, x, y = torch.nn.Flatten().eval(), torch.rand(2, 1, 2, 2), torch.zeros(2, dtype=torch.long)
    for _ in range(2):
        evaluate.evaluate_attack(model, x, y, {"attack": "sp", "type": "salt_pepper", "eps": 0.1}, 2, seed=3)
        torch.rand(100)
    torch.manual_seed(3)
    assert len(seen) == 2 and torch.equal(seen[0], seen[1]) and torch.equal(seen[0], torch.rand(3))


# ------------------------------------------------------------------------------------------------------ wiring
@pytest.mark.parametrize("kind", evaluate.MINIMAL_ATTACKS)
def test_make_attack_runs_the_search_unbounded_and_counts_within_the_bound(monkeypatch, kind):
    """A minimal search runs once without a bound (through the module attribute); the record's eps then decides
    which adversarials count, and the unbounded distances go to the sink (Appendix B)."""
    got, sink = [], []
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [-1.0, 0, 0, 0]]))   # class 1 iff pixel 0 < 0.5
        model[1].bias.copy_(torch.tensor([-0.5, 0.5]))
    x = torch.full((2, 1, 2, 2), 0.6)
    x[1, 0, 0, 0] = 0.9
    y = torch.zeros(2, dtype=torch.long)
    # the "search" moves pixel 0 of each image to 0.4, which flips the prediction: L-inf sizes 0.2 and 0.5
    def search(model, x, y, eps, **kw):
        got.append(eps)
        x_adv = x.clone()
        x_adv[:, 0, 0, 0] = 0.4
        return x_adv

    monkeypatch.setattr(ma, kind, search)
    for eps, fooled in ((0.3, [True, False]), (None, [True, True])):
        rec = {"attack": "a", "type": kind, "norm": "linf", "eps": eps}
        x_adv = evaluate.make_attack(rec, sink)(model, x, y)
        assert ((model(x_adv).argmax(1) != y).tolist()) == fooled
    assert got == [None, None] and sink[0]["linf"] == pytest.approx([0.2, 0.5])


def test_make_attack_rejects_an_unknown_type():
    with pytest.raises(ConfigError, match="evaluation.attacks.a.type") as err:
        evaluate.make_attack({"attack": "a", "type": "deepfool", "eps": 0.1})
    assert "\n" not in str(err.value)


def test_unbounded_evaluation_reports_no_eps(tmp_path):
    """An unbounded search's JSON says eps null, and the table's threat model column says unbounded."""
    from specrobust import tables
    saved_tiny_run(tmp_path, "sk_v", 10)
    job = {"attack": "deepfool_linf", "type": "deepfool_linf", "threat": "unbounded", "norm": "linf", "eps": None,
           "n_test": None, "batch_size": 10, "attack_seed": 0, "dataset": "mnist", "arch": "small_cnn",
           "method": "sk_v", "seed": 0}
    r = evaluate.run_evaluation(tmp_path / "model.pt", tmp_path / "d.npz", job, tmp_path / "o.json",
                                tmp_path / "o.npz", log=lambda m: None)
    assert r["eps"] is None and r["correct"] == 0      # unbounded DeepFool fools every example
    table = tables.build_table(tables.read_results([tmp_path / "o.json"]), ["deepfool_linf"],
                               [("mnist", "small_cnn", "sk_v")])
    assert "| unbounded |" in tables.to_markdown(table, ["deepfool_linf"], "t", {})
