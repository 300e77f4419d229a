"""Frequency-domain tools of the FR paper (Section 3, Appendix A.2): LPF/HPF, perturbation spectra, Fourier heat maps.

Everything is batched pure torch over ``(..., H, W)`` tensors (normally NCHW), so it runs on CPU or GPU alike.

Index conventions, shared by every function here:

* *Centred* (shifted) spectrum = ``torch.fft.fftshift(torch.fft.fft2(x))``. The DC term sits at ``(H // 2, W // 2)``
  and centred index ``(i, j)`` holds the frequency ``(i - H // 2, j - W // 2)`` (cycles per image), for even and odd
  sizes alike.
* The *centre k x k square* of an ``H x W`` array keeps rows ``H//2 - k//2 ... H//2 - k//2 + k - 1`` and columns
  ``W//2 - k//2 ... W//2 - k//2 + k - 1`` (clipped to the array, so any ``k >= H, W`` keeps everything). For even
  ``k`` it holds ``k//2`` rows before the centre and ``k//2 - 1`` after it, i.e. the same block as the usual
  ``[H//2 - k//2 : H//2 + k//2]`` slicing.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from .evaluate import fp32_eval


def centre_square_mask(h: int, w: int, k: int, device=None) -> torch.Tensor:
    """Boolean ``(h, w)`` mask of the centre k x k square (see the module docstring), shared by LPF and HPF.

    Public so that plots and tests can name exactly which coefficients a filter keeps.
    """
    if k < 0:
        raise ValueError(f"bandwidth k must be >= 0, not {k}")
    mask = torch.zeros(h, w, dtype=torch.bool, device=device)
    r0, c0 = h // 2 - k // 2, w // 2 - k // 2
    mask[max(r0, 0):max(r0 + k, 0), max(c0, 0):max(c0 + k, 0)] = True
    return mask


def _as_fft_dtype(x: torch.Tensor) -> torch.Tensor:
    """torch.fft has no CPU half kernels (and GPU ones only for powers of two): compute in at least fp32."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def low_pass(x: torch.Tensor, k: int) -> torch.Tensor:
    """LPF with bandwidth k: keep the centre k x k square of the *shifted* spectrum, i.e. the lowest frequencies.

    Per channel: FFT2, fftshift (DC to ``(H//2, W//2)``), zero everything outside the centre square, ifftshift,
    inverse FFT2, real part (as in Yin et al. 2019 and the FR paper). ``k >= H, W`` is the identity; any ``k >= 1``
    keeps the DC term, so constant images pass unchanged.

    Taking the real part symmetrises the mask: a kept frequency whose mirror ``-f`` is not kept contributes with
    weight 1/2. For odd k (and for k = size) the kept set is mirror symmetric, so the filter is an exact
    projection (idempotent); for even k < size the unpaired edge row ``H//2 - k//2`` (frequency ``-k/2``) and
    column are halved, which is what the paper's even bandwidths (4, 8, ..., 32) do too.
    """
    xf = _as_fft_dtype(x)
    mask = centre_square_mask(x.shape[-2], x.shape[-1], k, device=x.device)
    spec = torch.fft.fftshift(torch.fft.fft2(xf), dim=(-2, -1))
    spec = torch.where(mask, spec, torch.zeros((), dtype=spec.dtype, device=spec.device))
    out = torch.fft.ifft2(torch.fft.ifftshift(spec, dim=(-2, -1))).real
    return out.to(x.dtype)


def high_pass(x: torch.Tensor, k: int) -> torch.Tensor:
    """HPF with bandwidth k: keep the centre k x k square of the *unshifted* spectrum, i.e. the highest frequencies.

    Same as :func:`low_pass` without the shift: in ``fft2`` order the Nyquist frequency sits at index ``H//2``, so
    the centre square holds frequencies around ``(H/2, W/2)``. ``k >= H, W`` is the identity. The DC term (index 0)
    is kept only when ``H//2 - k//2 <= 0`` in both dimensions (for even sizes: only ``k = size``), so
    ``high_pass(constant, k) == 0`` for every ``k < size`` with even sizes. As for the LPF, an even k halves the
    unpaired edge frequencies; odd k around an even size's Nyquist index is mirror symmetric and exact.
    """
    xf = _as_fft_dtype(x)
    mask = centre_square_mask(x.shape[-2], x.shape[-1], k, device=x.device)
    spec = torch.fft.fft2(xf)
    spec = torch.where(mask, spec, torch.zeros((), dtype=spec.dtype, device=spec.device))
    return torch.fft.ifft2(spec).real.to(x.dtype)


def perturbation_spectrum(delta: torch.Tensor) -> torch.Tensor:
    """Mean magnitude of the centred FFT2 of perturbations (FR paper Figure 2): ``(..., H, W) -> (H, W)``.

    ``|fftshift(fft2(delta))|`` per image and channel, averaged over every leading dimension (batch and
    channels), so low frequencies are in the centre and the result is unnormalised (sum-convention FFT).
    Magnitudes, not complex values, are averaged: perturbations of opposite sign must not cancel.
    """
    spec = torch.fft.fftshift(torch.fft.fft2(_as_fft_dtype(delta)), dim=(-2, -1)).abs()
    return spec.reshape(-1, *spec.shape[-2:]).mean(0)


def _size2(size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def mirror_index(size, i: int, j: int) -> tuple[int, int]:
    """Centred index of the frequency ``-f`` mirrored to centred index ``(i, j)`` (Yin et al.'s symmetric position).

    Centred index ``s`` holds ``s - n//2``; its mirror is ``2*(n//2) - s`` modulo n, i.e. ``(n - s) % n`` for even n
    and ``n - 1 - s`` for odd n, matching ``_get_symmetric_pos`` of google-research's freq_heatmap.py.
    """
    h, w = _size2(size)
    return (2 * (h // 2) - i) % h, (2 * (w // 2) - j) % w


def _fourier_bases(size, freqs: list[tuple[int, int]], dtype=torch.float32, device=None) -> torch.Tensor:
    """``(len(freqs), H, W)`` stack of :func:`fourier_basis` images, built with one batched inverse FFT."""
    h, w = _size2(size)
    spec = torch.zeros(len(freqs), h, w, dtype=torch.complex128, device=device)
    for n, (i, j) in enumerate(freqs):
        if not (0 <= i < h and 0 <= j < w):
            raise ValueError(f"frequency index ({i}, {j}) outside the centred {h}x{w} grid")
        mi, mj = mirror_index((h, w), i, j)
        if (mi, mj) == (i, j):  # self-mirrored (DC, Nyquist): one real coefficient
            spec[n, i, j] = 1.0
        else:  # conjugate pair with phase pi/4 on the first of the pair in row-major order, as freq_heatmap.py
            (a, b), (c, d) = sorted([(i, j), (mi, mj)])
            spec[n, a, b] = 0.5 + 0.5j
            spec[n, c, d] = 0.5 - 0.5j
    basis = torch.fft.ifft2(torch.fft.ifftshift(spec, dim=(-2, -1))).real * math.sqrt(h * w)
    return basis.to(dtype)


def fourier_basis(size, i: int, j: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """Real 2D Fourier basis image ``U_ij`` (``size x size``, or ``size = (H, W)``) with ``||U_ij||_2 = 1``.

    ``(i, j)`` is a *centred* index (``0 <= i < H``; DC at ``(H//2, W//2)``, frequency ``(i - H//2, j - W//2)``).
    ``fftshift(fft2(U))`` is nonzero only at ``(i, j)`` and its mirror :func:`mirror_index` (value
    ``sqrt(HW) * (1 ± 1j) / 2``), or only at ``(i, j)`` (value ``sqrt(HW)``) when the frequency is its own mirror
    (DC and Nyquist rows/columns of even sizes), so the norm is 1 either way. Same construction and phase as
    Yin et al. 2019 (google-research frequency_analysis): the ``(1 + 1j) / 2`` coefficient goes to whichever of the
    pair comes first in row-major order, so ``U_ij`` and its mirror are the same image, as in their code.
    """
    return _fourier_bases(size, [(i, j)], dtype=dtype, device=device)[0]


def _heatmap_freqs(h: int, w: int, freqs) -> list[tuple[int, int]]:
    """None: the full grid; int s: every s-th row and column through the DC term; else explicit centred pairs."""
    if freqs is None:
        freqs = 1
    if isinstance(freqs, int):
        if freqs < 1:
            raise ValueError(f"frequency stride must be >= 1, not {freqs}")
        rows = range((h // 2) % freqs, h, freqs)
        cols = range((w // 2) % freqs, w, freqs)
        return [(i, j) for i in rows for j in cols]
    return [(int(i), int(j)) for i, j in freqs]


def fourier_heatmap(model, x: torch.Tensor, y: torch.Tensor, eps_v: float, batch_size: int = 256,
                    generator: torch.Generator | None = None,
                    freqs: int | Iterable[tuple[int, int]] | None = None) -> torch.Tensor:
    """Fourier heat map (Yin et al. 2019; FR paper Appendix A.2): error rate under each Fourier basis perturbation.

    For every centred frequency ``(i, j)`` the model classifies ``clip(x + r * eps_v * U_ij, 0, 1)``, with a fresh
    sign ``r = ±1`` per frequency, image and channel (channels are perturbed independently), and the entry is the
    fraction of the N images misclassified. Returns a float64 CPU ``(H, W)`` map with low frequencies in the
    centre (same indexing as :func:`fourier_basis`).

    ``freqs`` keeps it affordable on CPU: None = all ``H*W`` frequencies, an int s = every s-th row and column of
    the centred grid, aligned so that the DC term is included, or an explicit iterable of centred ``(i, j)``.
    Frequencies not evaluated are NaN (missing, not "robust"). The model runs in eval mode, fp32, TF32 off,
    without gradients (its previous mode is restored). ``batch_size`` is the number of perturbed images per
    forward pass (several frequencies share one pass when N is small). Signs come from ``generator`` (on CPU, so
    a seed gives the same map on every device) and depend on ``batch_size``.
    """
    n, c, h, w = x.shape
    todo = _heatmap_freqs(h, w, freqs)
    errors = torch.zeros(len(todo), dtype=torch.float64)
    y = y.to(x.device)
    with fp32_eval(model), torch.no_grad():
        for start in range(0, n, batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            b = xb.shape[0]
            group = max(1, batch_size // b)
            for f0 in range(0, len(todo), group):
                fs = todo[f0:f0 + group]
                basis = _fourier_bases((h, w), fs, dtype=xb.dtype, device=xb.device)  # (G, H, W)
                signs = torch.randint(0, 2, (len(fs), b, c), generator=generator).to(xb.device, xb.dtype) * 2 - 1
                pert = (xb[None] + eps_v * signs[..., None, None] * basis[:, None, None]).clamp_(0.0, 1.0)
                pred = model(pert.reshape(-1, c, h, w)).argmax(1).view(len(fs), b)
                errors[f0:f0 + len(fs)] += (pred != yb[None]).sum(1).double().cpu()
    heat = torch.full((h, w), float("nan"), dtype=torch.float64)
    for (i, j), e in zip(todo, errors):
        heat[i, j] = e / n
    return heat
