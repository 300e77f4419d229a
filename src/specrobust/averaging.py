"""Weight averaging along the training trajectory: the FR/WA teacher (FR paper, Appendix A.3) and SWA."""
from __future__ import annotations

import copy

import torch


class WeightAverage:
    """``W_wa = (W_wa * k + W) / (k + 1)``, k = number of checkpoints averaged so far.

    Floating-point parameters and buffers (BatchNorm running statistics) are averaged; integer buffers
    (``num_batches_tracked``) are copied. The average is a frozen model in eval mode, used without gradient.
    """

    def __init__(self, model: torch.nn.Module):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.k = 1

    @torch.no_grad()
    def update(self, model: torch.nn.Module):
        for avg, cur in zip(self.model.state_dict().values(), model.state_dict().values()):
            if avg.is_floating_point():
                avg.mul_(self.k / (self.k + 1)).add_(cur.detach(), alpha=1 / (self.k + 1))
            else:
                avg.copy_(cur)
        self.k += 1

    def state_dict(self) -> dict:
        return {"k": self.k, "model": self.model.state_dict()}

    def load_state_dict(self, state: dict):
        self.k = int(state["k"])
        self.model.load_state_dict(state["model"])
