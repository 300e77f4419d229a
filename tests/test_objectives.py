"""Base objectives, the smooth-kernel penalty and AWP, checked against values worked out by hand.

Most loss tests use ``nn.Identity`` as the model (so the inputs *are* the logits) and replace the attack by a
fixed x_adv, which makes every softmax a small rational number.
"""
import copy
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from specrobust import objectives
from specrobust.awp import AdversarialWeightPerturbation
from specrobust.methods import ADVERSARIAL_BASES, BASES, parse_method
from specrobust.regularizers import smooth_kernel_exponent, smooth_kernel_penalty

LN = math.log


def spec(**kw):
    return SimpleNamespace(**{"eps": 8 / 255, "step_size": 2 / 255, "steps": 2, "bn_mode": "eval", **kw})


def fixed_attack(monkeypatch, x_adv, name="adversarial_inputs"):
    monkeypatch.setattr(objectives, name, lambda *a, **k: x_adv)


# ------------------------------------------------------------------------------------------------- registry
def test_objectives_and_method_lists_agree():
    assert set(objectives.OBJECTIVES) == set(BASES)
    assert set(ADVERSARIAL_BASES) == {"pgd_at", "trades", "mart", "sk_l"}
    assert parse_method("trades_fr").base == "trades" and parse_method("mart_fr_wa").fr == "wa"
    with pytest.raises(Exception, match="adversarial base"):
        parse_method("l_model_fr")


# ------------------------------------------------------------------------------------------------- TRADES
def test_kl_batchmean_hand_computed():
    # KL([1/2, 1/2] || [3/4, 1/4]) = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3); the second row has KL 0; mean over B = 2.
    p = torch.tensor([[0.5, 0.5], [0.75, 0.25]])
    q = torch.tensor([[0.75, 0.25], [0.75, 0.25]])
    assert objectives.kl_batchmean(q.log(), p).item() == pytest.approx(0.5 * LN(4 / 3) / 2, rel=1e-6)


@pytest.mark.parametrize("beta", [None, 2.0])
def test_trades_loss_hand_computed(monkeypatch, beta):
    # clean logits [0, 0] and [ln 3, 0]; adversarial logits [ln 3, 0] for both; y = 0.
    # CE(clean): ln 2 and ln(4/3). KL(p_nat || p_adv): 1/2 ln(4/3) and 0.
    x = torch.tensor([[0.0, 0.0], [LN(3), 0.0]])
    fixed_attack(monkeypatch, torch.tensor([[LN(3), 0.0], [LN(3), 0.0]]), "trades_inputs")
    s = spec() if beta is None else spec(trades_beta=beta)
    loss, z_adv, z_nat = objectives.trades(nn.Identity(), x, torch.tensor([0, 0]), s)
    b = 6.0 if beta is None else beta
    expected = (LN(2) + LN(4 / 3)) / 2 + b * (0.5 * LN(4 / 3) + 0) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert torch.equal(z_nat, x)


class ModeRecorder(nn.Module):
    """A tiny conv net that records ``self.training`` at every forward pass."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(2 * 6 * 6, 3))
        self.modes = []

    def forward(self, x):
        self.modes.append(self.training)
        return self.net(x)


@pytest.mark.parametrize("bn_mode", ["eval", "train"])
def test_trades_attack_stays_in_box_and_respects_bn_mode(bn_mode):
    model = ModeRecorder().train()
    x = torch.rand(4, 1, 6, 6)
    x_adv = objectives.trades_inputs(model, x, spec(eps=0.1, step_size=0.05, steps=3, bn_mode=bn_mode))
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    assert model.modes == [bn_mode == "train"] * 4 and model.training  # clean pass + 3 steps, then train mode
    model.train(bn_mode == "train")
    with torch.no_grad():  # the attack raises the KL it maximises far above its value at the start point
        p = F.softmax(model(x), 1)
        kl = lambda z: objectives.kl_batchmean(F.log_softmax(model(z), 1), p).item()  # noqa: E731
        assert kl(x_adv) > 100 * kl(x + 0.001 * torch.randn_like(x))


# ------------------------------------------------------------------------------------------------- MART
def test_mart_loss_hand_computed(monkeypatch):
    # sample 1: y = 0, p_adv = [1/4, 1/2, 1/4] (logits [0, ln 2, 0]) -> CE ln 4, y' = 1, boost -ln(1.0001 - 1/2);
    #           p_nat = [1/2, 1/4, 1/4] -> KL(p_nat || p_adv) = 1/2 ln 2 - 1/4 ln 2 = 1/4 ln 2, weight 1.0000001 - 1/2.
    # sample 2: y = 1, p_adv = p_nat = [3/10, 6/10, 1/10] -> CE -ln 0.6; y is the top class so y' = 0 (second),
    #           boost -ln(1.0001 - 0.3); KL 0.
    x_adv = torch.tensor([[0.0, LN(2), 0.0], [LN(3), LN(6), 0.0]])
    x = torch.tensor([[LN(2), 0.0, 0.0], [LN(3), LN(6), 0.0]])
    fixed_attack(monkeypatch, x_adv)
    loss, _, _ = objectives.mart(nn.Identity(), x, torch.tensor([0, 1]), spec(mart_beta=6.0))
    bce = (LN(4) - LN(0.6)) / 2 + (-LN(0.5001) - LN(0.7001)) / 2
    robust = (0.25 * LN(2) * 0.5000001 + 0) / 2
    assert loss.item() == pytest.approx(bce + 6.0 * robust, rel=1e-5)
    assert getattr(spec(), "mart_beta", 6.0) == 6.0  # default


# ------------------------------------------------------------------------------------------------- sk_l
def test_sk_l_loss_hand_computed_and_kl_direction(monkeypatch):
    # y = 0, p_nat = [1/2, 1/2], p_adv = [3/4, 1/4]: CE(adv) = ln(4/3);
    # KL(p_adv || p_nat) = 3/4 ln(3/2) + 1/4 ln(1/2) = 0.1308..., not KL(p_nat || p_adv) = 1/2 ln(4/3) = 0.1438...
    fixed_attack(monkeypatch, torch.tensor([[LN(3), 0.0]]))
    loss, _, _ = objectives.sk_l(nn.Identity(), torch.zeros(1, 2), torch.tensor([0]), spec(sk_gamma=2.0))
    assert loss.item() == pytest.approx(LN(4 / 3) + 2.0 * (0.75 * LN(1.5) + 0.25 * LN(0.5)), rel=1e-6)


# ------------------------------------------------------------------------------------------------- L-model
def linear_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))


@pytest.fixture
def images():
    torch.manual_seed(1)
    return torch.rand(2, 3, 8, 8), torch.tensor([1, 3])


def test_l_model_full_bandwidth_is_natural_training(images):
    x, y = images
    model = linear_model()
    loss, _, _ = objectives.l_model(model, x, y, spec(lpf_bandwidth=8))
    assert loss.item() == pytest.approx(F.cross_entropy(model(x), y).item(), rel=1e-5)


def test_l_model_bandwidth_one_is_ce_on_channel_means(images):
    # k = 1 keeps only the centre of the shifted spectrum, the DC term: each channel becomes its mean.
    x, y = images
    model = linear_model()
    loss, logits, _ = objectives.l_model(model, x, y, spec(lpf_bandwidth=1))
    flat = x.mean((-2, -1), keepdim=True).expand_as(x)
    assert loss.item() == pytest.approx(F.cross_entropy(model(flat), y).item(), rel=1e-5)
    assert getattr(spec(), "lpf_bandwidth", 16) == 16


def test_low_pass_keeps_low_and_drops_high_frequencies():
    i = torch.arange(8.0)
    low = torch.cos(2 * math.pi * i / 8)[:, None].expand(8, 8)  # frequency +-1 along rows
    checker = (-1.0) ** (i[:, None] + i[None, :])               # Nyquist, the corner of the shifted spectrum
    x = (0.5 + 0.1 * low + 0.2 * checker)[None, None]
    assert torch.allclose(objectives._low_pass(x, 4), (0.5 + 0.1 * low)[None, None], atol=1e-6)
    assert torch.allclose(objectives._low_pass(x, 8), x, atol=1e-6)


# ------------------------------------------------------------------------------------------------- smooth kernels
CHECKER = 0.5 * torch.tensor([[1.0, 0, 1], [0, 1, 0], [1, 0, 1]])
CENTRE = torch.tensor([[0.0, 0, 0], [0, 1, 0], [0, 0, 0]])
CORNER = torch.tensor([[1.0, 0, 0], [0, 0, 0], [0, 0, 0]])


def test_smooth_kernel_exponent_counts_each_adjacent_pair_once():
    # A 3x3 kernel has 3 rows x 2 horizontal pairs + 3 columns x 2 vertical pairs = 12 pairs (24 if double
    # counted; 20 with the 8 diagonals). In the checkerboard every one of the 12 pairs differs by 0.5:
    # 12 * 0.25 - sum w^2 (5 * 0.25) = 1.75. Centre spike: 4 neighbours -> 4 - 1 = 3.
    # Corner spike: 2 neighbours (the diagonal one does not count) -> 2 - 1 = 1.
    e = smooth_kernel_exponent(torch.stack([CHECKER, CENTRE, CORNER])[:, None])
    assert e.shape == (3, 1)
    assert e.flatten().tolist() == pytest.approx([1.75, 3.0, 1.0])


def conv_model():
    a = nn.Conv2d(1, 2, 3, bias=False)
    b = nn.Conv2d(2, 1, 3, bias=False)
    c = nn.Conv2d(1, 4, 1)  # a 1x1 kernel: no neighbours, skipped
    with torch.no_grad():
        a.weight.copy_(torch.stack([CHECKER, CENTRE])[:, None])
        b.weight.copy_(torch.stack([CORNER, torch.zeros(3, 3)])[None])
        c.weight.fill_(1.0)
    return nn.Sequential(a, b, c, nn.Flatten(), nn.Linear(4, 2))


@pytest.mark.parametrize("scope,expected", [
    ("kernel", math.exp(1.75) + math.exp(3) + math.exp(1) + math.exp(0)),  # one exp per 2-D kernel
    ("layer", math.exp(1.75 + 3) + math.exp(1 + 0)),                      # one exp per Conv2d
    ("model", math.exp(1.75 + 3 + 1 + 0)),                                # one exp of the whole sum
])
def test_smooth_kernel_penalty_hand_computed(scope, expected):
    assert smooth_kernel_penalty(conv_model(), scope).item() == pytest.approx(expected, rel=1e-6)


def test_smooth_kernel_penalty_gradient_smooths_a_spike():
    # lambda > 0 descends R: the centre spike shrinks and its neighbours rise towards it; lambda < 0 (H) opposite.
    model = nn.Sequential(nn.Conv2d(1, 1, 3, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(CENTRE[None, None])
    smooth_kernel_penalty(model).backward()
    g = model[0].weight.grad[0, 0]
    # d/dw_centre of (4 (w - 0)^2 - w^2) = 6 w = 6, d/dw_edge = -2 (w_c - w_e) = -2, corners 0; times exp(3).
    expected = math.exp(3) * torch.tensor([[0.0, -2, 0], [-2, 6, -2], [0, -2, 0]])
    assert torch.allclose(g, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="scope"):
        smooth_kernel_penalty(model, "net")


# ------------------------------------------------------------------------------------------------- AWP
def awp_setup(gamma=0.01):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                          nn.Linear(2 * 4 * 4, 3)).train()
    awp = AdversarialWeightPerturbation.build(model, gamma)
    with torch.no_grad():  # a stale proxy: perturb must start from the model's current weights
        for p in awp.proxy.parameters():
            p.add_(1.0)
    x, y = torch.rand(8, 1, 4, 4), torch.randint(0, 3, (8,))
    return model, awp, x, y


def test_awp_perturbs_only_matrices_by_gamma_times_their_norm_and_restores():
    model, awp, x, y = awp_setup(gamma=0.01)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loss = lambda: F.cross_entropy(copy.deepcopy(model)(x), y).item()  # noqa: E731  (a copy: BN stats unchanged)
    loss0 = loss()
    diff = awp.perturb(x, y)
    loss1 = loss()
    after = model.state_dict()
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert moved == ["0.weight", "4.weight"]  # conv and linear weights; biases and BatchNorm untouched
    for k, d in zip(moved, diff):
        delta = after[k] - before[k]
        assert torch.allclose(delta, d, atol=1e-7)
        assert delta.norm().item() == pytest.approx(0.01 * before[k].norm().item(), rel=1e-4)
    assert loss1 > loss0  # one ascent step on the loss: the perturbed weights are worse
    awp.restore(diff)
    for k, v in model.state_dict().items():
        assert torch.allclose(v, before[k], atol=1e-7), k


def test_awp_restore_keeps_the_optimizer_step():
    model, awp, x, y = awp_setup()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    w0 = model[0].weight.detach().clone()
    diff = awp.perturb(x, y)
    F.cross_entropy(model(x), y).backward()
    step = -0.1 * model[0].weight.grad.clone()
    opt.step()
    awp.restore(diff)
    assert torch.allclose(model[0].weight, w0 + step, atol=1e-6)


# ------------------------------------------------------------------------------------------------- smoke
@pytest.mark.parametrize("name", sorted(objectives.OBJECTIVES))
def test_every_objective_backpropagates_on_a_tiny_cnn(name):
    model = ModeRecorder().train()
    x, y = torch.rand(4, 1, 6, 6), torch.tensor([0, 1, 2, 0])
    loss, z_adv, z_nat = objectives.OBJECTIVES[name](model, x, y, spec(eps=0.1, step_size=0.05, lpf_bandwidth=4))
    loss.backward()
    assert torch.isfinite(loss) and loss.ndim == 0 and z_adv.shape == (4, 3) and model.training
    assert (z_nat is None) == (name == "pgd_at")
    assert all(p.grad is not None for p in model.parameters())


def test_mart_gradient_stays_finite_when_a_clean_probability_underflows():
    """Confident wrong logits (the smoke run's CIFAR-10 prefix) make p_nat exactly 0 for some class; the official
    KLDivLoss(log p_adv, p_nat) then back-propagates log 0 and left NaN weights. Same value, finite gradient."""
    model = torch.nn.Linear(2, 3)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[150.0, 0.0], [-150.0, 0.0], [0.0, 1.0]]))
        model.bias.zero_()
    x, x_adv, y = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.9, 0.5]]), torch.tensor([2])
    loss, _, _ = objectives.mart_loss(model, x, y, x_adv, SimpleNamespace(mart_beta=6.0))
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters())
    assert F.softmax(model(x), 1)[0, 1] == 0            # the clean probability that underflowed
