"""Base training objectives, each in two phases: its training attack (``ATTACKS``), then its loss (``LOSSES``)
returning (loss, adversarial logits, clean logits or None). The split lets AWP perturb the weights between them.

Plug-ins (FR, FR/WA, SWA, AWP, smooth kernels) are added in :mod:`specrobust.train`, so any objective composes with
them. A new defense is one loss function here and one line in ``ATTACKS`` and ``LOSSES``.

Losses are computed in fp32 (autocast does it for cross-entropy, ``.float()`` elsewhere), so bf16 autocast
changes the forward passes only.
Every attack runs with BatchNorm in ``spec.bn_mode`` (config ``train.bn_mode``, default ``eval`` as in the TRADES,
MART and FR code), so one recorded setting governs all methods.

Hyper-parameters come from the run spec (config ``train.trades_beta``, ``mart_beta``, ``sk_gamma``,
``lpf_bandwidth``); ``getattr`` defaults keep the losses usable on bare test specs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .attacks import pgd, project
from .distributed import like_global


def adversarial_inputs(model, x, y, spec):
    """PGD-k with random start for training; BatchNorm in ``spec.bn_mode`` while attacking (config train.bn_mode)."""
    model.train(spec.bn_mode == "train")
    x_adv = pgd(model, x, y, spec.eps, spec.step_size, spec.steps)
    model.train()
    return x_adv


def kl_batchmean(log_q: torch.Tensor, p: torch.Tensor, log_target: bool = False) -> torch.Tensor:
    """``KL(p || q)`` summed over classes and averaged over the batch: TRADES' ``KLDivLoss(sum)(log q, p) / B``.
    The losses pass ``log p`` (``log_target``): the same value, and a finite gradient where a softmax underflows
    to 0 (large logits give 0 * -inf = NaN otherwise)."""
    return F.kl_div(log_q, p, reduction="sum", log_target=log_target) / len(p)


def natural_loss(model, x, y, x_adv, spec):
    """Standard training (V): cross-entropy on clean inputs."""
    logits = model(x)
    return F.cross_entropy(logits, y), logits, logits


def pgd_at_loss(model, x, y, x_adv, spec):
    """PGD adversarial training (Madry et al.; locuslab/robust_overfitting): CE on PGD-10 inputs."""
    logits_adv = model(x_adv)
    return F.cross_entropy(logits_adv, y), logits_adv, None


def trades_inputs(model, x, spec):
    """The TRADES attack (yaodongyu/TRADES): sign ascent on ``KL(p(x) || p(x_adv))`` from ``x + 0.001 N(0, 1)``.

    Unlike PGD-AT it needs no label: it pushes the prediction away from the clean one. The start is not clipped
    to [0, 1] (as in the official code); every step is projected onto the eps-ball and [0, 1].
    """
    model.train(spec.bn_mode == "train")
    x = x.detach()
    with torch.no_grad():
        p_nat = F.softmax(model(x).float(), dim=1)
    x_adv = x + 0.001 * like_global(torch.randn_like, x)  # data-parallel: this rank's rows of the global draw
    for _ in range(spec.steps):
        x_adv.requires_grad_(True)
        loss = F.kl_div(F.log_softmax(model(x_adv).float(), dim=1), p_nat, reduction="sum")
        grad, = torch.autograd.grad(loss, x_adv)
        x_adv = project(x_adv.detach() + spec.step_size * grad.sign(), x, spec.eps)
    model.train()
    return x_adv.detach()


def trades_loss(model, x, y, x_adv, spec):
    """TRADES (Zhang et al.): ``CE(f(x), y) + beta * KL(p(x) || p(x_adv))``, KL batchmean, beta 6 by default.

    Both branches carry gradients, as in the official code (which runs the clean forward twice; once here).
    """
    beta = getattr(spec, "trades_beta", 6.0)
    logits_nat, logits_adv = model(x), model(x_adv)
    robust = kl_batchmean(F.log_softmax(logits_adv.float(), dim=1), F.log_softmax(logits_nat.float(), dim=1),
                          log_target=True)
    return F.cross_entropy(logits_nat.float(), y) + beta * robust, logits_adv, logits_nat


def mart_loss(model, x, y, x_adv, spec):
    """MART (Wang et al.; YisenWang/MART): boosted CE on x_adv plus a KL term weighted by clean misclassification.

    ``BCE = CE(z_adv, y) - mean log(1.0001 - p_adv[y'])``, y' = most likely wrong class of p_adv;
    ``robust = (1/B) sum_i KL(p_nat || p_adv)_i * (1.0000001 - p_nat[y_i])``; loss = BCE + beta * robust, beta 6
    (the repo uses 5 for ResNet-18). The ``+ 1e-12`` inside the logs is the official code's.
    The attack is the shared CE-PGD of :func:`adversarial_inputs` (uniform start; the official MART code starts
    from ``x + 0.001 N(0, 1)``).
    """
    beta = getattr(spec, "mart_beta", 6.0)
    logits_adv = model(x_adv)
    logits_nat = model(x)
    za, zn = logits_adv.float(), logits_nat.float()
    p_adv, log_p_nat = F.softmax(za, dim=1), F.log_softmax(zn, dim=1)
    y_wrong = p_adv.scatter(1, y[:, None], float("-inf")).argmax(1)
    bce = F.cross_entropy(za, y) + F.nll_loss(torch.log(1.0001 - p_adv + 1e-12), y_wrong)
    # the official KLDivLoss(log(p_adv + 1e-12), p_nat) with the target as log-probabilities: the same value, but a
    # p_nat that underflows to 0 gives its gradient log 0 = -inf there (NaN weights from confident wrong logits)
    kl = F.kl_div(torch.log(p_adv + 1e-12), log_p_nat, reduction="none", log_target=True).sum(1)
    p_true = log_p_nat.gather(1, y[:, None]).squeeze(1).exp()
    robust = (kl * (1.0000001 - p_true)).sum() / len(y)
    return bce + beta * robust, logits_adv, logits_nat


def sk_l_loss(model, x, y, x_adv, spec):
    """L of the smooth-kernel paper (a variation of logit pairing): ``CE(f(x'), y) + gamma * KL(p(x') || p(x))``.

    x' is the CE-PGD input. The paper writes ``gamma * k(f_l(x'), f_l(x))`` with k the KL divergence "following
    the Trades loss" and describes L as the mirror of TRADES: fit x', pull the clean softmax towards the
    adversarial one. Mirroring TRADES' ``KLDivLoss(log p(x_adv), p(x))`` therefore gives
    ``KLDivLoss(log p(x), p(x'))`` = KL(p(x') || p(x)), which is also the paper's argument order. Batchmean;
    both branches carry gradients. gamma from {0.1, 1, 10}, 1 by default.
    """
    gamma = getattr(spec, "sk_gamma", 1.0)
    logits_adv = model(x_adv)
    logits_nat = model(x)
    pair = kl_batchmean(F.log_softmax(logits_nat.float(), dim=1), F.log_softmax(logits_adv.float(), dim=1),
                        log_target=True)
    return F.cross_entropy(logits_adv.float(), y) + gamma * pair, logits_adv, logits_nat


def _low_pass(x: torch.Tensor, k: int) -> torch.Tensor:
    """LPF of bandwidth k (FR paper): per-channel FFT, low frequencies shifted to the centre, keep the centre
    k x k square, inverse FFT, real part. k >= the image size keeps everything. The result is not clipped."""
    h, w = x.shape[-2:]
    spec = torch.fft.fftshift(torch.fft.fft2(x.float()), dim=(-2, -1))
    mask = torch.zeros(h, w, device=x.device)
    r0, c0 = max(h // 2 - k // 2, 0), max(w // 2 - k // 2, 0)
    mask[r0:r0 + k, c0:c0 + k] = 1
    return torch.fft.ifft2(torch.fft.ifftshift(spec * mask, dim=(-2, -1))).real


def l_model_loss(model, x, y, x_adv, spec):
    """L-model of the FR paper (Table 1): natural training on LPF'd inputs, bandwidth 16 (32 for Tiny ImageNet)."""
    logits = model(_low_pass(x, int(getattr(spec, "lpf_bandwidth", 16))))
    return F.cross_entropy(logits, y), logits, logits


# name -> (training attack or None, loss). The attacks are looked up when called, so tests can replace them.
ATTACKS = {
    "natural": None, "l_model": None,
    "pgd_at": lambda model, x, y, spec: adversarial_inputs(model, x, y, spec),
    "mart": lambda model, x, y, spec: adversarial_inputs(model, x, y, spec),
    "sk_l": lambda model, x, y, spec: adversarial_inputs(model, x, y, spec),
    "trades": lambda model, x, y, spec: trades_inputs(model, x, spec),
}
LOSSES = {"natural": natural_loss, "pgd_at": pgd_at_loss, "trades": trades_loss, "mart": mart_loss,
          "sk_l": sk_l_loss, "l_model": l_model_loss}


def training_inputs(name, model, x, y, spec):
    """The objective's own training attack (None for non-adversarial objectives)."""
    attack = ATTACKS[name]
    return None if attack is None else attack(model, x, y, spec)


def _objective(name):
    def objective(model, x, y, spec):
        return LOSSES[name](model, x, y, training_inputs(name, model, x, y, spec), spec)
    objective.__doc__ = LOSSES[name].__doc__
    return objective


OBJECTIVES = {name: _objective(name) for name in LOSSES}
natural, pgd_at, trades, mart, sk_l, l_model = (OBJECTIVES[n] for n in
                                                ("natural", "pgd_at", "trades", "mart", "sk_l", "l_model"))

from .methods import BASES  # noqa: E402

assert set(OBJECTIVES) == set(BASES), "methods.BASES must list exactly the objectives implemented here"
