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

from .registry import POINT_VALUES

FFTS = POINT_VALUES["fft"]
DISTANCES = POINT_VALUES["distance"]


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


# ------------------------------------------------------------------------------------------------- smooth kernels
SK_SCOPES = ("kernel", "layer", "model")


def smooth_kernel_exponent(weight: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``sum_{adjacent pairs} (w_a - w_b)^2 - sum w^2`` of each 2-D kernel of a (out, in, kh, kw) conv weight.

    Pairs are horizontal and vertical neighbours, each counted once (a k x k kernel has 2k(k-1) of them).
    Returns shape (out, in): the operation is broadcast over the channels. Computed in ``dtype``.

    It is the quadratic form ``w' (L - I) w`` of the grid graph's Laplacian L, so it is indefinite: its eigenvalues
    lie in [-1, 5] for 3x3, [-1, 6.24] for 5x5 and [-1, 6.60] for 7x7 kernels. Rough patterns raise it; the flat
    (DC) pattern lowers it by its squared norm (and for 5x5 and 7x7 a few other low-frequency patterns too).
    """
    w = weight.to(dtype)
    vertical = (w[..., 1:, :] - w[..., :-1, :]).pow(2).sum((-2, -1))
    horizontal = (w[..., :, 1:] - w[..., :, :-1]).pow(2).sum((-2, -1))
    return vertical + horizontal - w.pow(2).sum((-2, -1))


class _SliceGradClip(torch.autograd.Function):
    """Identity on a (out, in, kh, kw) weight; backward rescales the gradient of each 2-D (out, in) slice to an
    L2 norm of at most ``max_norm``, keeping its direction (slices below the bound pass unchanged)."""

    @staticmethod
    def forward(ctx, weight, max_norm):
        ctx.max_norm = max_norm
        return weight.view_as(weight)

    @staticmethod
    def backward(ctx, grad):
        norm = grad.flatten(-2).norm(dim=-1)[..., None, None]
        return grad * (ctx.max_norm / norm).clamp(max=1.0), None   # norm 0: inf clamped to 1


def clip_slice_grad(weight: torch.Tensor, max_norm: float) -> torch.Tensor:
    """``weight`` itself in the forward pass; in the backward pass each 2-D kernel slice's gradient (whatever flows
    back through this use of the weight only) is clipped to L2 norm ``max_norm``."""
    if not max_norm > 0:
        raise ValueError(f"smooth-kernel gradient clip must be a positive number, not {max_norm!r}")
    return _SliceGradClip.apply(weight, float(max_norm))


def smooth_kernel_penalty(model: torch.nn.Module, scope: str = "kernel", clip: float | None = None,
                          dtype: torch.dtype = torch.float64, max_exponent: float | None = None) -> torch.Tensor:
    """R(w) of the smooth-kernel paper (seed 003), summed over the model; the caller adds ``lambda * R``.

    ``R(w) = exp(sum_{i,j} sum_{(h,k) in N(i,j)} (w_ij - w_hk)^2 - sum_{i,j} w_ij^2)`` with i, j the two spatial
    indices of a kernel w; the paper applies it "broadcasting the operation through the channels". Taken
    literally, w is one 2-D kernel, so ``scope="kernel"`` (default) sums exp(.) over every (out, in) slice of
    every Conv2d. It is also the only reading that stays finite: at initialisation the exponent of a whole
    ResNet-18 layer reaches ~285 (exp overflows fp32 at 88), the whole model ~1870, one 3x3 slice < 0.7.
    ``scope="layer"`` (one exp per Conv2d weight) and ``"model"`` (one exp of the summed exponent) are kept for
    ablations. Kernels with a single spatial position (1x1 shortcuts) have no neighbours to smooth and are
    skipped; literally they would add exp(-w^2), which only pushes their weights away from zero.
    A negative lambda gives the paper's "H" control (high-frequency kernels).

    The value is always the paper's R (no rescaling, no cap). Two numerical safeguards act on how it is computed:

    - ``dtype`` (float64 by default; float32 on MPS, which has no float64): exponents and exps are computed in it,
      so an exponent up to ~709 (not 88) still has a finite exp and gradient. The sum is returned in the weights'
      dtype (at least float32), so the training loss keeps its dtype.
    - ``clip`` (None = the exact gradient): the gradient of the added term ``lambda * R`` (the factor lambda comes
      from the caller's product through autograd) is clipped, per 2-D kernel slice, to L2 norm ``clip``.
      ``d(lambda exp(E))/dw = 2 lambda exp(E) (L - I) w`` has curvature ``~2 |lambda| exp(E) mu`` along a rough
      pattern (mu up to 6.6), so plain SGD overshoots as soon as ``lr |lambda| exp(E) mu`` exceeds ~1-2: e.g.
      lambda >= 10 at lr 0.05 from the first step, after which the exponent explodes and exp overflows. A clipped
      slice moves at most ``lr * clip`` per step under the penalty, so its rough part stays small and bounded; a
      slice whose gradient is below ``clip`` is untouched, and the cross-entropy gradient never passes here.

    ``max_exponent`` (None = the paper's R) is for the H control only, and changes the value: each exponent is
    clamped to it (no gradient above). With lambda < 0 the objective is unbounded below (rough patterns raise
    exp(E) without limit), so a faithful H run overflows whatever the step: the clip delays it from the first step
    to about the fifteenth at lr 0.05. The clamp stops each slice once its exponent reaches the bound. It is
    applied to the exponent of the chosen scope (one per slice, layer or model).
    """
    if scope not in SK_SCOPES:
        raise ValueError(f"smooth-kernel scope must be one of {SK_SCOPES}, not {scope!r}")
    weights = [m.weight for m in model.modules()
               if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-2] * m.weight.shape[-1] > 1]
    if not weights:
        return torch.zeros(())
    out_dtype = torch.promote_types(weights[0].dtype, torch.float32)
    if weights[0].device.type == "mps" and dtype == torch.float64:
        dtype = torch.float32
    weights = [w.to(dtype) for w in weights]   # clip in ``dtype``: a float64 gradient beyond float32's range is
    if clip is not None:                        # clipped before it is cast back, so it never becomes inf
        weights = [clip_slice_grad(w, clip) for w in weights]
    exps = [smooth_kernel_exponent(w, dtype) for w in weights]
    if scope == "layer":
        exps = [e.sum() for e in exps]
    elif scope == "model":
        exps = [sum(e.sum() for e in exps)]
    if max_exponent is not None:
        exps = [e.clamp(max=max_exponent) for e in exps]
    return sum(e.exp().sum() for e in exps).to(out_dtype)


def add_smooth_kernel_gradient(model: torch.nn.Module, lam: float, scope: str = "kernel", clip: float | None = None,
                               dtype: torch.dtype = torch.float64, max_exponent: float | None = None) -> torch.Tensor:
    """Accumulate the gradient of ``lam * R(w)`` into the conv weights' ``.grad``; return ``lam * R`` (detached).

    For a trainer that back-propagates its data term first and clips that gradient (``train.grad_clip``) before
    adding the penalty's, whose own per-slice clip is ``clip``: so neither bound is spent on the other term. It
    uses ``torch.autograd.grad``, so no parameter hook fires (DistributedDataParallel's all-reduce): R is a function
    of the weights alone, identical on every rank, and its gradient needs no averaging. Same arguments and value as
    :func:`smooth_kernel_penalty`.
    """
    weights = [m.weight for m in model.modules()
               if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-2] * m.weight.shape[-1] > 1]
    term = lam * smooth_kernel_penalty(model, scope, clip, dtype, max_exponent)
    if weights and term.requires_grad:
        for w, g in zip(weights, torch.autograd.grad(term, weights)):
            if w.grad is None:
                w.grad = torch.empty_like(w).copy_(g)   # the weight's own memory format (channels_last)
            else:
                w.grad.add_(g)
    return term.detach()
