"""Frequency regularization (FR, renamed Spectral Alignment Regularization, SAR): align output spectra.

``fr_loss(teacher_logits, student_logits)`` is ``Dis(F(f1(x)), F(f2(x_adv)))`` of the FR paper, Eq. 2.

Two DFT variants (config ``fr.fft``):
- ``batch2d`` (authors' code, the default, produced the published numbers): one unnormalized 2-D FFT of the whole
  batch x classes logits matrix; distances are mean reductions over every real and imaginary entry (L1Loss /
  MSELoss of the code). It mixes samples, so it depends on batch composition: training drops the last partial batch.
- ``per_sample`` (paper text): one 1-D DFT of each sample's logits; distances are per-sample norms over the real and
  imaginary parts, averaged over the n samples.
Distances: ``l1`` (default), ``l2``, ``cosine`` (1 - cosine similarity, per row, averaged).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

FFTS = ("batch2d", "per_sample")
DISTANCES = ("l1", "l2", "cosine")


def spectrum(logits: torch.Tensor, fft: str = "batch2d") -> torch.Tensor:
    """Real view of the DFT of the logits: shape (batch, classes, 2)."""
    logits = logits.float()
    if fft == "batch2d":
        return torch.view_as_real(torch.fft.fft2(logits))
    if fft == "per_sample":
        return torch.view_as_real(torch.fft.fft(logits, dim=1))
    raise ValueError(f"fr.fft must be one of {FFTS}, not {fft!r}")


def fr_loss(teacher_logits: torch.Tensor, student_logits: torch.Tensor, distance: str = "l1",
            fft: str = "batch2d") -> torch.Tensor:
    a, b = spectrum(teacher_logits, fft), spectrum(student_logits, fft)
    if distance == "cosine":
        return (1 - F.cosine_similarity(a.flatten(1), b.flatten(1), dim=1)).mean()
    if distance not in DISTANCES:
        raise ValueError(f"fr.distance must be one of {DISTANCES}, not {distance!r}")
    diff = (a - b).flatten(1)
    if fft == "batch2d":
        return diff.abs().mean() if distance == "l1" else diff.pow(2).mean()
    return diff.abs().sum(1).mean() if distance == "l1" else diff.norm(dim=1).mean()
