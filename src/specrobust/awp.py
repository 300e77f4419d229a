"""Adversarial Weight Perturbation (Wu et al. 2020; csdongxian/AWP, ``utils_awp.py``).

Per training step the caller (1) crafts x_adv on the *unperturbed* weights, (2) ``diff = awp.perturb(...)``,
(3) runs forward / backward / ``optimizer.step()`` on the perturbed weights, (4) ``awp.restore(diff)``. Restore
subtracts the perturbation rather than reloading a copy, so the optimizer step of (3) is kept.

gamma (the relative size of the weight perturbation): 0.01 for AT-AWP; 0.005 for TRADES-AWP, which also skips
AWP for the first 10 epochs (``awp_warmup``). Wiring into :mod:`specrobust.train` is the integrator's job.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

EPS = 1e-20


def cross_entropy(model, x_adv, y):
    """The AT-AWP proxy loss; TRADES-AWP passes ``CE(f(x), y) + beta * KL batchmean`` instead."""
    return F.cross_entropy(model(x_adv), y)


class AdversarialWeightPerturbation:
    """Finds the weight perturbation by one SGD step of a proxy copy on the negated loss.

    Only parameters with ndim > 1 (conv and linear weights) are perturbed; biases and BatchNorm are not.
    Each is moved by ``gamma * ||w|| / (||diff|| + 1e-20) * diff``, i.e. by gamma times its own norm.
    """

    def __init__(self, model: torch.nn.Module, proxy: torch.nn.Module, proxy_optim: torch.optim.Optimizer,
                 gamma: float = 0.01):
        self.model, self.proxy, self.proxy_optim, self.gamma = model, proxy, proxy_optim, gamma

    @classmethod
    def build(cls, model: torch.nn.Module, gamma: float = 0.01, lr: float = 0.01):
        """With a deep-copied proxy and its SGD (lr 0.01, no momentum), as the official scripts set them up."""
        proxy = copy.deepcopy(model)
        return cls(model, proxy, torch.optim.SGD(proxy.parameters(), lr=lr), gamma)

    def _pairs(self):
        return [(w, p) for w, p in zip(self.model.parameters(), self.proxy.parameters()) if w.ndim > 1]

    def perturb(self, x_adv, y, loss_fn=cross_entropy) -> list[torch.Tensor]:
        """Adds the perturbation to the model's weights in place and returns it (one tensor per ndim > 1 weight)."""
        with torch.no_grad():  # load_state_dict by position: a torch.compile'd model prefixes its keys
            for dst, src in zip(self.proxy.state_dict().values(), self.model.state_dict().values()):
                dst.copy_(src)
        self.proxy.train()
        with torch.enable_grad():
            loss = -loss_fn(self.proxy, x_adv, y)
            self.proxy_optim.zero_grad(set_to_none=True)
            loss.backward()
        self.proxy_optim.step()
        diff = []
        with torch.no_grad():
            for w, p in self._pairs():
                d = p - w
                d = self.gamma * w.norm() / (d.norm() + EPS) * d
                w.add_(d)
                diff.append(d)
        return diff

    @torch.no_grad()
    def restore(self, diff: list[torch.Tensor]):
        for (w, _), d in zip(self._pairs(), diff):
            w.sub_(d)
