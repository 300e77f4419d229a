"""White-box L-inf attacks on models that take [0, 1] inputs: FGSM, PGD (CE or margin loss), C&W-inf, AutoAttack.

The caller chooses the BatchNorm mode and precision: training attacks may run under autocast; reported
evaluations run through :mod:`specrobust.evaluate`, which forces fp32, TF32 off and ``model.eval()``.
"""
from __future__ import annotations

import logging
import time

import torch
import torch.nn.functional as F

from .distributed import like_global


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``max_{k != y} z_k - z_y`` per example: positive exactly when the example is misclassified."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.clone()
    other.scatter_(1, y[:, None], float("-inf"))
    return other.amax(1) - true


LOSSES = {
    "ce": lambda logits, y: F.cross_entropy(logits.float(), y, reduction="sum"),
    "margin": lambda logits, y: margin(logits.float(), y).sum(),  # C&W-inf: PGD on the margin
}


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Into the eps-ball around x and the image box [0, 1]."""
    return torch.min(torch.max(x_adv, x - eps), x + eps).clamp_(0.0, 1.0)


def pgd(model, x, y, eps: float, step_size: float, steps: int, *, restarts: int = 1, random_start: bool = True,
        loss: str = "ce", generator: torch.Generator | None = None) -> torch.Tensor:
    """Projected sign-gradient ascent (Madry et al.); with restarts, keeps the worst case per example.

    The worst case is the adversarial input with the largest margin, so a misclassified point always beats a
    correctly classified one, whichever restart found it.
    """
    loss_fn = LOSSES[loss]
    x = x.detach()
    best, best_margin = x.clone(), None
    for _ in range(restarts):
        if random_start:  # in a data-parallel step: this rank's rows of the global batch's noise (like_global)
            noise = like_global(lambda t: torch.rand(t.shape, generator=generator,
                                                     device=t.device if generator is None else "cpu"), x)
            x_adv = project(x + (2 * noise.to(x.device, x.dtype) - 1) * eps, x, eps)
        else:
            x_adv = x.clone()
        for _ in range(steps):
            x_adv.requires_grad_(True)
            grad, = torch.autograd.grad(loss_fn(model(x_adv), y), x_adv)
            x_adv = project(x_adv.detach() + step_size * grad.sign(), x, eps)
        x_adv = x_adv.detach()
        if restarts == 1:
            return x_adv
        with torch.no_grad():
            m = margin(model(x_adv).float(), y)
        if best_margin is None:
            best, best_margin = x_adv, m
        else:
            better = m > best_margin
            best = torch.where(better[:, None, None, None], x_adv, best)
            best_margin = torch.where(better, m, best_margin)
    return best


def fgsm(model, x, y, eps: float, **_) -> torch.Tensor:
    """One signed-gradient step of size eps from the clean input (Goodfellow et al.)."""
    return pgd(model, x, y, eps, eps, 1, random_start=False)


def cw_inf(model, x, y, eps: float, step_size: float, steps: int = 30, **kw) -> torch.Tensor:
    """C&W-inf as the FR code runs it: PGD on the margin loss (30 steps of 2/255 by default)."""
    return pgd(model, x, y, eps, step_size, steps, loss="margin", **kw)


class _ToLog(logging.Handler):
    """Forwards AutoAttack's own progress messages (logger ``auto-attack``) to a rule's log function."""

    def __init__(self, log):
        super().__init__(logging.DEBUG)
        self.log = log

    def emit(self, record):
        self.log(f"autoattack: {record.getMessage()}")


def autoattack(model, x, y, eps: float, *, version: str = "standard", seed: int = 0, batch_size: int = 500,
               attacks: list[str] | None = None, flags: torch.Tensor | None = None, on_step=None, log=None):
    """AutoAttack (Croce & Hein) through PyPI ``pyautoattack``, whose APGD, FAB and Square are the official code.

    Runs the version's attacks one at a time on the points still robust, exactly as the official loop does, so
    that the robust accuracy after each attack is known. ``flags`` (robust so far) and ``attacks`` (still to run)
    resume an interrupted evaluation; ``on_step(name, flags)`` is called after each attack to save that state.
    ``log`` receives AutoAttack's own progress lines and one line per finished attack.
    Returns the final per-example robust flags and the breakdown {attack: robust accuracy}.
    """
    from pyautoattack import AutoAttack

    aa = AutoAttack(model, eps=eps, norm="Linf", version=version, seed=seed, device=x.device)
    with torch.no_grad():   # the targeted attacks take the 9 most likely other classes: fewer when there are fewer
        classes = model(x[:1]).shape[1]  # (Restricted ImageNet's 9, the four shapes' 4), as the official code asks
    for attack in (aa.apgd_targeted, aa.fab):
        attack.n_target_classes = min(attack.n_target_classes, classes - 1)
    todo = list(aa.attacks_to_run if attacks is None else attacks)
    logger, handler = logging.getLogger("auto-attack"), _ToLog(log) if log else None
    if handler:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        if flags is None:
            with torch.no_grad():
                flags = torch.cat([model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]
                                   for i in range(0, len(x), batch_size)])
            if on_step:
                on_step("clean", flags)
        breakdown = {}
        for name in todo:
            idx = flags.nonzero().flatten()
            t0 = time.time()
            if len(idx):
                aa.attacks_to_run = [name]
                _, y_adv = aa.run_standard_evaluation(x[idx].contiguous(), y[idx], batch_size=batch_size)
                flags = flags.clone()
                flags[idx] = y_adv.to(flags.device) == y[idx]
            breakdown[name] = flags.float().mean().item()
            if log:
                log(f"{name}: robust accuracy {100 * breakdown[name]:.2f}% after attacking {len(idx)} points "
                    f"({time.time() - t0:.1f}s)")
            if on_step:
                on_step(name, flags)
    finally:
        if handler:
            logger.removeHandler(handler)
    return flags, breakdown
