"""Base training objectives. Each returns (loss, adversarial logits, clean logits or None) for one batch.

Plug-ins (FR, FR/WA) are added on top in :mod:`specrobust.train`, so any objective composes with them.
A new defense is one function here and one line in ``OBJECTIVES``.
"""
from __future__ import annotations

import torch.nn.functional as F

from .attacks import pgd


def adversarial_inputs(model, x, y, spec):
    """PGD-k with random start for training; BatchNorm in ``spec.bn_mode`` while attacking (config train.bn_mode)."""
    model.train(spec.bn_mode == "train")
    x_adv = pgd(model, x, y, spec.eps, spec.step_size, spec.steps)
    model.train()
    return x_adv


def natural(model, x, y, spec):
    """Standard training (V): cross-entropy on clean inputs."""
    logits = model(x)
    return F.cross_entropy(logits, y), logits, logits


def pgd_at(model, x, y, spec):
    """PGD adversarial training (Madry et al.; locuslab/robust_overfitting): CE on PGD-10 inputs."""
    logits_adv = model(adversarial_inputs(model, x, y, spec))
    return F.cross_entropy(logits_adv, y), logits_adv, None


OBJECTIVES = {"natural": natural, "pgd_at": pgd_at}

from .methods import BASES  # noqa: E402

assert set(OBJECTIVES) == set(BASES), "methods.BASES must list exactly the objectives implemented here"
