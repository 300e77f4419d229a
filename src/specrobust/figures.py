"""Figures of the frequency analyses, drawn from the arrays the analysis rules store (no torch: analysis env).

FR paper (seed 001) Figures 1/7-9 (:func:`lpf_grid`), 2 (:func:`perturbation_spectra`), 3 (:func:`bandwidth_curves`)
and 4 (:func:`fourier_heatmaps`); workshop paper (seed 000) Figure 1 and smooth-kernel paper (seed 003) Figure 1
(:func:`kernels`, numbers from :func:`kernel_smoothness`); workshop Figure 3 left (:func:`training_curves`);
smooth-kernel Appendix B (:func:`eps_curves`).

Every plotting function takes a mapping ``label -> data`` (the models to compare, drawn in the order given), a
title and ``out``: a path stem (``figs/fig2`` -> ``figs/fig2.png`` and ``figs/fig2.pdf``; a trailing ``.png`` or
``.pdf`` is dropped) or an explicit list of ``.png``/``.pdf`` paths. It writes PNG (200 dpi) and PDF atomically
and returns the paths written. Figures live on an explicit Agg canvas, never in pyplot's registry, so no display is
needed, the global backend is left alone and nothing outlives the call. Accuracies are in percent.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

__all__ = ["lpf_grid", "perturbation_spectra", "bandwidth_curves", "fourier_heatmaps", "kernels",
           "kernel_smoothness", "training_curves", "eps_curves", "ablation", "DPI"]

DPI = 200
STYLE = {"font.size": 10, "axes.titlesize": 10.5, "axes.labelsize": 10, "legend.fontsize": 9,
         "xtick.labelsize": 8.5, "ytick.labelsize": 8.5, "figure.titlesize": 12, "image.interpolation": "nearest"}
# FR paper Figure 3 colours: red = clean LPF, orange = LPF'd perturbation, green = HPF'd perturbation
CURVES = (("clean_lpf", "tab:red", "-", "o", "clean: LPF$_k(x)$"),
          ("pert_lpf", "tab:orange", "-", "s", "$x$ + LPF$_k(\\delta)$"),
          ("pert_hpf", "tab:green", "-", "^", "$x$ + HPF$_k(\\delta)$"),
          ("pgd20_lpf", "tab:blue", ":", "v", "LPF$_k(x+\\delta)$"))
KERNEL_CUTOFF = 0.25  # cycles/pixel: half the Nyquist frequency, the "lowest frequencies" of kernel_smoothness


# ------------------------------------------------------------------------------------------------------ helpers
def _outputs(out) -> list[Path]:
    if isinstance(out, (str, os.PathLike)):
        p = Path(out)
        stem = p.with_suffix("") if p.suffix.lower() in (".png", ".pdf") else p
        return [stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".pdf")]
    paths = [Path(o) for o in out]
    suffixes = [p.suffix.lower() for p in paths]
    if not {".png", ".pdf"} <= set(suffixes) or not set(suffixes) <= {".png", ".pdf"}:
        raise ValueError(f"figure outputs must be .png and .pdf paths (both), got {[str(p) for p in paths]}")
    return paths


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, out) -> list[Path]:
    """Write every output via a temporary file in the same folder, so a crash never leaves a half-written figure."""
    paths = _outputs(out)
    try:
        for p in paths:
            p.parent.mkdir(parents=True, exist_ok=True)
            fmt = p.suffix.lower()[1:]
            fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=f".tmp.{fmt}")
            os.close(fd)
            try:
                # bbox "tight": whatever constrained layout leaves outside the canvas (fixed-aspect panels can push
                # labels out) is still saved; no creation date in the PDF: the same data gives the same bytes
                fig.savefig(tmp, dpi=DPI, format=fmt, bbox_inches="tight", pad_inches=0.05,
                            metadata={"CreationDate": None} if fmt == "pdf" else None)
                os.replace(tmp, p)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    finally:
        fig.clear()
    return paths


def _styled(fn):
    """Run a plotting function under the module's font sizes without changing the caller's rcParams."""
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return fn(*args, **kwargs)
    wrapper.__name__, wrapper.__qualname__, wrapper.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
    wrapper.__wrapped__ = fn
    return wrapper


def _items(models, single_key: str | None = None) -> list[tuple[str, object]]:
    """``label -> data`` as a list; one bare data dict (it has ``single_key``) counts as one unlabelled model."""
    if single_key is not None and isinstance(models, Mapping) and single_key in models:
        return [("", models)]
    items = [(str(k), v) for k, v in models.items()]
    if not items:
        raise ValueError("nothing to plot: no models given")
    return items


def _scalar(d, key, default=None):
    if not isinstance(d, Mapping) or key not in d:
        return default
    return np.asarray(d[key]).item()


def _centred_extent(h: int, w: int) -> tuple[float, float, float, float]:
    """imshow extent (origin upper) that puts the centred FFT's DC term, at (h//2, w//2), at coordinate (0, 0)."""
    return (-w // 2 - 0.5, w - w // 2 - 0.5, h - h // 2 - 0.5, -h // 2 - 0.5)


def _as_hwc(img: np.ndarray) -> np.ndarray:
    img = np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0)
    if img.ndim != 3 or img.shape[0] not in (1, 3):
        raise ValueError(f"expected a (C, H, W) image with 1 or 3 channels, got shape {img.shape}")
    return img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)


# ------------------------------------------------------------------------------------ FR Figures 1 and 7-9
@_styled
def lpf_grid(models, title: str, out, class_names: Sequence[str] | None = None, n_images: int = 8) -> list[Path]:
    """FR Figure 1 / 7-9: LPF_k images (top), natural images (middle), perturbed images x + delta (bottom).

    ``models``: one spectral dict (keys ``images``, ``images_lpf``, ``images_adv`` of shape (N, C, H, W) in
    [0, 1], ``labels`` (N,), ``figure1_bandwidth``), or ``label -> spectral dict`` to show one perturbed row per
    model under the shared LPF and natural rows (all models must hold the same example images).
    Grayscale for 1 channel, RGB for 3; columns titled with the class (``class_names[y]`` or ``class y``).
    """
    items = _items(models, single_key="images")
    first = items[0][1]
    natural = np.asarray(first["images"])
    for label, d in items[1:]:
        if np.asarray(d["images"]).shape != natural.shape or not np.allclose(d["images"], natural, atol=1e-6):
            raise ValueError(f"model {label!r} holds other example images than {items[0][0]!r}: columns would not "
                             "match")
    n = min(n_images, len(natural))
    k = _scalar(first, "figure1_bandwidth")
    rows = [(f"LPF, $k$={k:g}" if k is not None else "LPF", np.asarray(first["images_lpf"])),
            ("natural $X$", natural)]
    rows += [("perturbed $X+\\delta$" + (f"\n{label}" if label else ""), np.asarray(d["images_adv"]))
             for label, d in items]
    labels = np.asarray(first["labels"]).astype(int) if "labels" in first else None

    fig = _figure(1.25 * n + 1.3, 1.3 * len(rows) + 0.7)
    axes = fig.subplots(len(rows), n, squeeze=False)
    for r, (row_label, imgs) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            img = _as_hwc(imgs[c])
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if r == 0 and labels is not None:
                y = labels[c]
                name = class_names[y] if class_names is not None and 0 <= y < len(class_names) else f"class {y}"
                ax.set_title(str(name), fontsize=9)
            if c == 0:
                ax.set_ylabel(row_label, fontsize=9.5)
    fig.suptitle(title)
    return _save(fig, out)


# ------------------------------------------------------------------------------------------------ FR Figure 2
@_styled
def perturbation_spectra(models, title: str, out, log: bool = True) -> list[Path]:
    """FR Figure 2: mean magnitude spectrum of the PGD-20 perturbations, one panel per model, low frequency centred.

    ``models``: ``label -> spectral dict`` (key ``spectrum`` (H, W), centred; optional ``n``) or ``label -> (H, W)
    array``. All panels share one colour scale (logarithmic by default, floor 1e-3 of the maximum) and one colour
    bar, so the models' perturbations compare directly (same eps, so comparable energy).
    """
    items = _items(models)
    specs = [(label, np.asarray(d["spectrum"] if isinstance(d, Mapping) else d, dtype=np.float64), d)
             for label, d in items]
    vmax = max(float(np.nanmax(s)) for _, s, _ in specs)
    if not np.isfinite(vmax) or vmax <= 0:
        raise ValueError("perturbation spectra are all zero or not finite")
    if log:
        positive = np.concatenate([s[s > 0].ravel() for _, s, _ in specs])
        norm = LogNorm(vmin=max(float(positive.min()), vmax * 1e-3), vmax=vmax)
    else:
        norm = Normalize(vmin=0.0, vmax=vmax)
    cmap = matplotlib.colormaps["viridis"]
    cmap = cmap.with_extremes(bad=cmap(0.0), under=cmap(0.0))

    fig = _figure(2.9 * len(specs) + 1.0, 3.7)
    axes = fig.subplots(1, len(specs), squeeze=False)[0]
    for i, (ax, (label, s, d)) in enumerate(zip(axes, specs)):
        im = ax.imshow(s, norm=norm, cmap=cmap, extent=_centred_extent(*s.shape))
        n = _scalar(d, "n")
        ax.set_title(label + (f"\n(mean over {n:g} images)" if n is not None else ""))
        ax.set_xlabel("horizontal frequency")
        if i == 0:
            ax.set_ylabel("vertical frequency")
    fig.colorbar(im, ax=list(axes), shrink=0.9, label="mean |FFT(δ)|" + (" (log scale)" if log else ""))
    fig.suptitle(title)
    return _save(fig, out)


# ------------------------------------------------------------------------------------------------ FR Figure 3
@_styled
def bandwidth_curves(models, title: str, out) -> list[Path]:
    """FR Figure 3: accuracy against bandwidth k, one panel per model.

    ``models``: ``label -> spectral dict`` with ``bandwidths`` (K,) and any of ``clean_lpf`` (accuracy on
    LPF_k(x), red), ``pert_lpf`` (x + LPF_k(delta), orange), ``pert_hpf`` (x + HPF_k(delta), green),
    ``pgd20_lpf`` (LPF_k(x + delta), blue dotted); scalars ``clean`` and ``pgd20`` (unfiltered) are drawn as grey
    reference lines when present. Larger k keeps more of the input or perturbation.
    """
    items = _items(models)
    fig = _figure(3.3 * len(items) + 0.6, 3.9)
    axes = fig.subplots(1, len(items), squeeze=False, sharey=True)[0]
    handles = {}
    for i, (ax, (label, d)) in enumerate(zip(axes, items)):
        ks = np.asarray(d["bandwidths"])
        for key, colour, ls, marker, name in CURVES:
            if key in d:
                (line,) = ax.plot(ks, np.asarray(d[key], dtype=np.float64), ls, color=colour, marker=marker,
                                  markersize=4, linewidth=1.6, label=name)
                handles.setdefault(name, line)
        for key, ls, name in (("clean", "--", "clean, unfiltered"), ("pgd20", ":", "PGD-20, unfiltered")):
            value = _scalar(d, key)
            if value is not None:
                line = ax.axhline(value, color="0.45", linestyle=ls, linewidth=1.1, label=name)
                handles.setdefault(name, line)
        ax.set_title(label)
        ax.set_xticks(ks)
        ax.tick_params(axis="x", labelrotation=90 if len(ks) > 10 else 0)
        ax.set_xlabel("bandwidth $k$")
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.set_ylabel("accuracy (%)")
    fig.legend(list(handles.values()), list(handles.keys()), loc="outside lower center",
               ncols=min(len(handles), 3))
    fig.suptitle(title)
    return _save(fig, out)


# ------------------------------------------------------------------------------------------------ FR Figure 4
def _fill_strided(error: np.ndarray) -> tuple[np.ndarray, int | None]:
    """Heat maps computed on every s-th frequency hold NaN elsewhere: show each sample as a block (nearest
    evaluated frequency) instead of a sparse dot grid. Irregular gaps stay NaN (drawn grey). Returns (map, s)."""
    finite = np.isfinite(error)
    if finite.all() or not finite.any():
        return error, None
    rows, cols = np.flatnonzero(finite.any(1)), np.flatnonzero(finite.any(0))
    if finite.sum() != len(rows) * len(cols) or not finite[np.ix_(rows, cols)].all():
        return error, None
    ri = rows[np.abs(np.arange(error.shape[0])[:, None] - rows[None]).argmin(1)]
    ci = cols[np.abs(np.arange(error.shape[1])[:, None] - cols[None]).argmin(1)]
    steps = np.concatenate([np.diff(rows), np.diff(cols)])
    return error[np.ix_(ri, ci)], int(steps.min()) if len(steps) else None


@_styled
def fourier_heatmaps(models, title: str, out) -> list[Path]:
    """FR Figure 4: Fourier heat maps, error rate (%) under each centred Fourier-basis perturbation, per model.

    ``models``: ``label -> dict`` with ``error`` (H, W) in % (DC at (H//2, W//2); NaN = not evaluated) and
    scalars ``v`` (perturbation norm, shown in the title) and optionally ``n``. One shared 0-100 colour bar.
    """
    items = _items(models)
    cmap = matplotlib.colormaps["magma"].with_extremes(bad="0.8")
    fig = _figure(2.9 * len(items) + 1.0, 3.8)
    axes = fig.subplots(1, len(items), squeeze=False)[0]
    for i, (ax, (label, d)) in enumerate(zip(axes, items)):
        error, stride = _fill_strided(np.asarray(d["error"], dtype=np.float64))
        im = ax.imshow(error, cmap=cmap, vmin=0.0, vmax=100.0, extent=_centred_extent(*error.shape))
        v, n = _scalar(d, "v"), _scalar(d, "n")
        extra = [f"$v$ = {v:g}"] if v is not None else []
        extra += [f"n = {n:g}"] if n is not None else []
        extra += [f"freq. stride {stride}"] if stride else []
        ax.set_title(label + ("\n" + ", ".join(extra) if extra else ""))
        ax.set_xlabel("horizontal frequency")
        if i == 0:
            ax.set_ylabel("vertical frequency")
    fig.colorbar(im, ax=list(axes), shrink=0.9, label="error rate (%)")
    fig.suptitle(title)
    return _save(fig, out)


# ------------------------------------------------------------------ workshop Figure 1, smooth-kernel Figure 1
def kernel_smoothness(weight, cutoff: float = KERNEL_CUTOFF) -> dict:
    """Smoothness numbers of conv kernels ``(..., kh, kw)`` (e.g. a first layer's (out, in, kh, kw)), pooled.

    ``roughness`` = sum over kernels and horizontally/vertically adjacent weight pairs (each pair once) of
    (w_a - w_b)^2, divided by the sum of w^2 over all weights: the smooth-kernel paper's R_0(w) made
    scale-free by its own "divide by the scale of w" heuristic (its literal double sum counts each pair twice:
    double this to compare). 0 for constant kernels, at most 8; lower = smoother. Ratio of sums, so dead
    (all-zero) kernels neither count nor divide by zero.

    ``high_freq_energy`` = the fraction of the kernels' spectral energy |DFT|^2, taken on each kernel's own
    kh x kw DFT grid (no padding, so Parseval makes it exact and a constant kernel has only the DC term), at
    frequencies with max(|f_y|, |f_x|) > ``cutoff`` cycles/pixel, i.e. outside the centred low-pass square of
    half-width ``cutoff`` (default 1/4, half the Nyquist frequency; for 3x3 kernels that square is just DC,
    for 5x5 and 7x7 the centre 3x3 frequencies). 0 for a constant kernel, near 1 for a checkerboard.
    NaN when all weights are zero.
    """
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim < 2:
        raise ValueError(f"kernels need two spatial dimensions, got shape {w.shape}")
    kh, kw = w.shape[-2:]
    w = w.reshape(-1, kh, kw)
    total = float((w ** 2).sum())
    diffs = float(((w[:, 1:, :] - w[:, :-1, :]) ** 2).sum() + ((w[:, :, 1:] - w[:, :, :-1]) ** 2).sum())
    energy = np.abs(np.fft.fft2(w)) ** 2
    fy, fx = np.abs(np.fft.fftfreq(kh)), np.abs(np.fft.fftfreq(kw))
    low = (fy[:, None] <= cutoff + 1e-12) & (fx[None, :] <= cutoff + 1e-12)
    spectral = float(energy.sum())
    return {"kernels": int(w.shape[0]), "kh": int(kh), "kw": int(kw),
            "roughness": diffs / total if total > 0 else float("nan"),
            "high_freq_energy": float(energy[:, ~low].sum()) / spectral if spectral > 0 else float("nan"),
            "cutoff": float(cutoff)}


def _kernel_layout(o: int, c: int, n_out: int) -> tuple[int, int]:
    """(kernels shown, kernels per mosaic row). One row per input channel; a single input channel (MNIST)
    wraps into two rows, else its one long row would be a thin strip."""
    n = min(n_out, o)
    return n, (n if c > 1 or n <= 8 else -(-n // 2))


def _kernel_mosaic(w: np.ndarray, n_out: int) -> np.ndarray:
    """Per-kernel max-abs-normalised kernels: input channels down, output channels across, NaN (white) gaps."""
    o, c, kh, kw = w.shape
    n, per_row = _kernel_layout(o, c, n_out)
    scale = np.abs(w[:n]).max(axis=(-2, -1), keepdims=True)
    normed = np.divide(w[:n], scale, out=np.zeros_like(w[:n]), where=scale > 0)
    rows = c * -(-n // per_row)
    mosaic = np.full((rows * (kh + 1) - 1, per_row * (kw + 1) - 1), np.nan)
    for j in range(n):
        for i in range(c):
            r, col = (j // per_row) * c + i, j % per_row
            mosaic[r * (kh + 1):r * (kh + 1) + kh, col * (kw + 1):col * (kw + 1) + kw] = normed[j, i]
    return mosaic


def _kernel_spectrum(w: np.ndarray, pad: int) -> np.ndarray:
    """Mean |FFT| of all kernels, each scaled to unit L2 norm and zero-padded to pad x pad, DC centred."""
    k = w.reshape(-1, *w.shape[-2:])
    norms = np.sqrt((k ** 2).sum(axis=(-2, -1)))
    k = k[norms > 0] / norms[norms > 0, None, None]
    if not len(k):
        return np.zeros((pad, pad))
    return np.fft.fftshift(np.abs(np.fft.fft2(k, s=(pad, pad))), axes=(-2, -1)).mean(0)


@_styled
def kernels(models, title: str, out, n_out: int = 16, pad: int = 32) -> list[Path]:
    """Workshop Figure 1 / smooth-kernel Figure 1: first-layer kernels per model and their mean magnitude spectrum.

    ``models``: ``label -> weight`` array (out_channels, in_channels, kh, kw). Left: the first ``n_out`` output
    channels (columns) for every input channel (rows), each kernel divided by its max |w| (diverging colours,
    white = 0), so shape, not scale, is compared. Right: mean |FFT| of all the model's kernels, each scaled to
    unit L2 norm and zero-padded to ``pad`` x ``pad``, DC centred, one colour scale for all models; the dashed
    square is :func:`kernel_smoothness`'s low-frequency cutoff, whose numbers are in the row titles.
    """
    items = [(label, np.asarray(w, dtype=np.float64)) for label, w in _items(models)]
    for label, w in items:
        if w.ndim != 4:
            raise ValueError(f"{label}: expected conv weights (out, in, kh, kw), got shape {w.shape}")
    pad = max(pad, *(max(w.shape[-2:]) for _, w in items))
    mosaics = [_kernel_mosaic(w, n_out) for _, w in items]
    spectra = [_kernel_spectrum(w, pad) for _, w in items]
    smax = max(float(s.max()) for s in spectra) or 1.0
    mosaic_ratio = max(m.shape[1] / m.shape[0] for m in mosaics)
    height = 2.0 * len(items) + 0.9
    fig = _figure(min(14.0, 1.9 * min(mosaic_ratio, 6.0) + 4.2), height)
    gs = fig.add_gridspec(len(items), 2, width_ratios=[min(mosaic_ratio, 6.0), 1.0])
    kernel_cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="white")
    spec_extent = (-0.5 - 0.5 / pad, 0.5 - 0.5 / pad, 0.5 - 0.5 / pad, -0.5 - 0.5 / pad)
    mosaic_axes, spec_axes = [], []
    for r, ((label, w), mosaic, spec) in enumerate(zip(items, mosaics, spectra)):
        o, c, kh, kw = w.shape
        stats = kernel_smoothness(w)
        ax = fig.add_subplot(gs[r, 0])
        km = ax.imshow(mosaic, cmap=kernel_cmap, vmin=-1.0, vmax=1.0, aspect="equal")
        n, per_row = _kernel_layout(o, c, n_out)
        shown = f"all {o}" if n == o else f"first {n} of {o}"
        ax.set_title(f"{label}: {shown} kernels ({kh}x{kw}) — roughness {stats['roughness']:.2f}, "
                     f"high-freq. energy {100 * stats['high_freq_energy']:.0f}%", loc="left")
        centre = (kh - 1) / 2
        if per_row == n:  # rows are input channels, columns output channels
            ax.set_yticks([i * (kh + 1) + centre for i in range(c)],
                          list("RGB") if c == 3 else [f"in {i}" for i in range(c)])
            ticks = list(range(0, n, 4 if n > 8 else 1))
            ax.set_xticks([j * (kw + 1) + (kw - 1) / 2 for j in ticks], [str(j) for j in ticks])
            if r == len(items) - 1:
                ax.set_xlabel("output channel")
        else:  # one input channel wrapped: each row is a range of output channels
            starts = list(range(0, n, per_row))
            ax.set_yticks([b * (kh + 1) + centre for b in range(len(starts))],
                          [f"out {s}-{min(s + per_row, n) - 1}" for s in starts])
            ax.set_xticks([])
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        mosaic_axes.append(ax)

        sax = fig.add_subplot(gs[r, 1])
        sm = sax.imshow(spec, cmap="viridis", vmin=0.0, vmax=smax, extent=spec_extent)
        sax.add_patch(Rectangle((-KERNEL_CUTOFF, -KERNEL_CUTOFF), 2 * KERNEL_CUTOFF, 2 * KERNEL_CUTOFF, fill=False,
                                edgecolor="white", linestyle="--", linewidth=1.0))
        sax.set_xticks([-0.5, 0, 0.5], ["-½", "0", "½"])
        sax.set_yticks([-0.5, 0, 0.5], ["-½", "0", "½"])
        sax.set_title("mean |FFT|", fontsize=9.5)
        if r == len(items) - 1:
            sax.set_xlabel("cycles / pixel")
        spec_axes.append(sax)
    fig.colorbar(km, ax=mosaic_axes, location="right", shrink=0.8, label="w / max|w|")
    fig.colorbar(sm, ax=spec_axes, location="right", shrink=0.8, label="|FFT| (unit-norm kernels)")
    fig.suptitle(title)
    return _save(fig, out)


# ------------------------------------------------------------------------------------ workshop Figure 3 left
def _series(df, x: str, y: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(x, y) of a column with missing values dropped; None when the column is absent or empty."""
    if y not in df or x not in df:
        return None
    xs, ys = np.asarray(df[x], dtype=np.float64), np.asarray(df[y], dtype=np.float64)
    keep = np.isfinite(xs) & np.isfinite(ys)
    return (xs[keep], ys[keep]) if keep.any() else None


@_styled
def training_curves(models, title: str, out) -> list[Path]:
    """Workshop Figure 3 left: clean (dashed) and PGD-20 (solid) accuracy over epochs, one colour per method.

    ``models``: ``label -> DataFrame`` (or dict of columns) with ``epoch``, ``val_clean``, ``val_pgd20`` and
    optionally ``test_clean``, ``test_pgd20``; missing values are skipped. Validation on the left; a test panel
    (same y scale) only when some model has test values.
    """
    items = _items(models)
    splits = [("val", "validation")]
    if any(_series(df, "epoch", f"test_{m}") is not None for _, df in items for m in ("clean", "pgd20")):
        splits.append(("test", "test"))
    fig = _figure(4.6 * len(splits) + 1.8, 3.8)
    axes = fig.subplots(1, len(splits), squeeze=False, sharey=True)[0]
    colours = matplotlib.colormaps["tab10"].colors
    for ax, (split, name) in zip(axes, splits):
        for i, (label, df) in enumerate(items):
            for metric, ls in (("clean", "--"), ("pgd20", "-")):
                s = _series(df, "epoch", f"{split}_{metric}")
                if s is not None:
                    ax.plot(*s, ls, color=colours[i % len(colours)], linewidth=1.5)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%)")
    handles = [Line2D([], [], color=colours[i % len(colours)], linewidth=2.5, label=label)
               for i, (label, _) in enumerate(items)]
    handles += [Line2D([], [], color="black", linestyle="--", label="clean (SA)"),
                Line2D([], [], color="black", linestyle="-", label="PGD-20 (RA)")]
    fig.legend(handles=handles, loc="outside right center")
    fig.suptitle(title)
    return _save(fig, out)


# --------------------------------------------------------------------------------- smooth-kernel Appendix B
@_styled
def eps_curves(models, title: str, out, scale: float = 255.0) -> list[Path]:
    """Smooth-kernel Appendix B: accuracy against the attack budget eps, one line per method.

    ``models``: ``label -> DataFrame`` (or dict of columns) with ``eps`` and ``accuracy`` (%). eps is shown
    multiplied by ``scale`` (default 255: in units of 1/255).
    """
    items = _items(models)
    fig = _figure(5.6, 3.9)
    ax = fig.subplots()
    markers = "osD^vP*Xh<>"
    for i, (label, df) in enumerate(items):
        eps, acc = np.asarray(df["eps"], dtype=np.float64), np.asarray(df["accuracy"], dtype=np.float64)
        order = [i for i in np.argsort(eps) if np.isfinite(eps[i]) and np.isfinite(acc[i])]
        ax.plot(eps[order] * scale, acc[order], marker=markers[i % len(markers)], markersize=4.5, linewidth=1.6,
                label=label)
    ax.set_xlabel("$\\epsilon$ (in units of 1/255)" if scale == 255 else
                  ("$\\epsilon$" if scale == 1 else f"$\\epsilon$ × {scale:g}"))
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    ax.set_title(title)
    return _save(fig, out)


# ------------------------------------------------------------------------------------------- FR Figure 6
@_styled
def ablation(curves, final, param: str, baseline: str, title: str, out) -> list[Path]:
    """FR Figure 6: one ablation of FR (distance function or lambda) against plain AT.

    ``curves``: ``label -> metrics DataFrame`` (baseline first); the left panel shows clean (dashed) and PGD-20
    (solid) per epoch on the test images when the runs scored them, else on validation. ``final``: DataFrame with
    ``value``, ``clean``, ``pgd20`` (the selected checkpoints, in %) per point; the right panel plots them against
    the value (a line for numbers, points for names), the baseline as dotted horizontal lines.
    """
    items = _items(curves)
    split = "test" if any(_series(df, "epoch", "test_pgd20") is not None for _, df in items) else "val"
    fig = _figure(10.5, 3.9)
    left, right = fig.subplots(1, 2)
    colours = matplotlib.colormaps["tab10"].colors
    for i, (label, df) in enumerate(items):
        for metric, ls in (("clean", "--"), ("pgd20", "-")):
            s = _series(df, "epoch", f"{split}_{metric}")
            if s is not None:
                left.plot(*s, ls, color=colours[i % len(colours)], linewidth=1.5,
                          label=label if metric == "pgd20" else None)
    left.set_xlabel("epoch")
    left.set_ylabel(f"{split} accuracy (%)")
    left.set_title("clean (dashed) and PGD-20 (solid) per epoch")
    left.legend(fontsize=8)
    left.grid(alpha=0.3)
    values = list(final["value"])
    numeric = all(isinstance(v, (int, float, np.number)) for v in values)
    xs = np.asarray(values, dtype=np.float64) if numeric else np.arange(len(values))
    base = final.attrs.get("baseline", {})
    for metric, marker, colour, name in (("clean", "o", "tab:blue", "clean (SA)"), ("pgd20", "s", "tab:red",
                                                                                 "PGD-20 (RA)")):
        right.plot(xs, final[metric], marker=marker, color=colour, linestyle="-" if numeric else "none",
                   label=name)
        if metric in base:
            right.axhline(base[metric], color=colour, linestyle=":", linewidth=1.2, label=f"{baseline} {name}")
    if not numeric:
        right.set_xticks(xs, [str(v) for v in values])
        right.set_xlim(-0.5, len(values) - 0.5)
    right.set_xlabel(param)
    right.set_ylabel("accuracy (%)")
    right.set_title("selected checkpoint")
    right.legend(fontsize=8)
    right.grid(alpha=0.3)
    fig.suptitle(title)
    return _save(fig, out)


# ==================================================================================================================
# Smooth-kernel paper (seed 003): Figures 1-6 and Appendices B-C from the arrays of specrobust.smooth_kernels
# ==================================================================================================================
__all__ += ["sk_figure1", "sk_figure2", "sk_class_images", "sk_distance_curves", "sk_targeted"]

SK_FAIL_COLOUR = "tab:red"


def _img_axis(ax, img, *, frame: str | None = None, vmin: float | None = 0.0, vmax: float | None = 1.0,
              cmap: str = "gray") -> None:
    """One image (C, H, W) (or (H, W)) without ticks; NaN images (nothing to show) are left blank with 'n/a'.
    ``frame``: a colour for a thick frame (e.g. a failed attack), else no spines."""
    arr = np.asarray(img, dtype=np.float64)
    ax.set_xticks([])
    ax.set_yticks([])
    if not np.isfinite(arr).all():
        ax.text(0.5, 0.5, "n/a", ha="center", va="center", transform=ax.transAxes, color="0.4", fontsize=8)
        ax.set_facecolor("0.93")
    elif arr.ndim == 2:
        ax.imshow(arr, cmap=cmap, vmin=vmin, vmax=vmax)
    else:
        hwc = _as_hwc(arr)
        ax.imshow(hwc, cmap="gray" if hwc.ndim == 2 else None, vmin=0.0, vmax=1.0)
    for spine in ax.spines.values():
        spine.set_visible(frame is not None)
        if frame is not None:
            spine.set_edgecolor(frame)
            spine.set_linewidth(2.5)


def _class_name(class_names, c) -> str:
    c = int(c)
    return str(class_names[c]) if class_names is not None and 0 <= c < len(class_names) else f"class {c}"


@_styled
def sk_figure1(models, title: str, out, n_kernels: int = 4) -> list[Path]:
    """Smooth-kernel Figure 1: per model a row of (a) the first ``n_kernels`` first-layer kernels, (b) |DFT| of
    each (low frequencies in the centre) and (c) the first layer's feature maps of one image (the paper's: a star).

    ``models``: ``label -> specrobust.smooth_kernels.first_layer_view`` dict (``kernels_2d`` or ``kernels``,
    ``spectra``, ``features``, optional ``image``). Each kernel is divided by its max |w| (diverging colours,
    white = 0), each spectrum by its own maximum, each feature map stretched to its own range (gray), so shapes,
    not scales, are compared. Row labels give the drawn kernels' roughness (:func:`kernel_smoothness`).
    """
    items = _items(models)
    n = n_kernels
    has_image = any("image" in d for _, d in items)
    # columns: [input] | n kernels | gap | n spectra | gap | n feature maps
    ratios = ([1.0, 0.25] if has_image else []) + [1.0] * n + [0.25] + [1.0] * n + [0.25] + [1.0] * n
    fig = _figure(0.95 * sum(ratios) + 1.4, 1.15 * len(items) + 1.0)
    gs = fig.add_gridspec(len(items), len(ratios), width_ratios=ratios, wspace=0.05, hspace=0.12)
    offset = 2 if has_image else 0
    starts = {"kernels": offset, "spectra": offset + n + 1, "features": offset + 2 * n + 2}
    heads = {"kernels": "(a) kernels $w$", "spectra": "(b) |DFT($w$)|", "features": "(c) feature maps"}
    kernel_cmap = matplotlib.colormaps["RdBu_r"]
    for r, (label, d) in enumerate(items):
        kern = np.asarray(d["kernels_2d"] if "kernels_2d" in d else d["kernels"], dtype=np.float64)
        if kern.ndim == 4:  # (k, in, kh, kw): channel sum, as first_layer_view draws it
            kern = kern.sum(1)
        spectra = np.asarray(d["spectra"], dtype=np.float64)
        feats = np.asarray(d["features"], dtype=np.float64)
        rough = kernel_smoothness(kern[:n])["roughness"]
        if has_image:
            ax = fig.add_subplot(gs[r, 0])
            if "image" in d:
                _img_axis(ax, d["image"])
            else:
                ax.axis("off")
            ax.set_ylabel(f"{label}\nroughness {rough:.2f}", fontsize=9.5)
            if r == 0:
                ax.set_title("input", fontsize=9)
        for j in range(n):
            for key, arr in (("kernels", kern), ("spectra", spectra), ("features", feats)):
                ax = fig.add_subplot(gs[r, starts[key] + j])
                if j >= len(arr):
                    ax.axis("off")
                    continue
                a = arr[j]
                if key == "kernels":
                    m = float(np.abs(a).max()) or 1.0
                    _img_axis(ax, a / m, vmin=-1.0, vmax=1.0, cmap=kernel_cmap)
                elif key == "spectra":
                    m = float(a.max()) or 1.0
                    _img_axis(ax, a / m, vmin=0.0, vmax=1.0, cmap="viridis")
                else:
                    lo, hi = float(a.min()), float(a.max())
                    _img_axis(ax, a, vmin=lo, vmax=hi if hi > lo else lo + 1.0)
                if r == 0:
                    ax.set_title(f"{heads[key]}\n#{j}" if j == 0 else f"\n#{j}", fontsize=9, loc="left" if j == 0
                                 else "center")
                if j == 0 and key == "kernels" and not has_image:
                    ax.set_ylabel(f"{label}\nroughness {rough:.2f}", fontsize=9.5)
    fig.suptitle(title)
    return _save(fig, out)


def _cell_note(d, c: int, class_names) -> str | None:
    """'-> predicted class (confidence)' and 'eps = ...' under a deceptive-image cell, from the first selected
    example of class c, when the model's dict has ``pred`` (and ``conf`` / ``eps``); None otherwise."""
    if not isinstance(d, Mapping) or "pred" not in d:
        return None

    def first(key):
        a = np.asarray(d[key])
        return a.reshape(len(a), -1)[c, 0]

    pred = int(first("pred"))
    if pred < 0:
        return None
    note = f"→ {_class_name(class_names, pred)}" + (f" ({float(first('conf')):.2f})" if "conf" in d else "")
    if "eps" in d and np.isfinite(float(first("eps"))):
        note += f"\nε = {float(first('eps')):.3g}"
    return note


@_styled
def sk_figure2(models, originals, class_names, title: str, out) -> list[Path]:
    """Smooth-kernel Figure 2: the most deceptive FGSM adversarial of each class (rows), per model (columns),
    beside the original(s) **O**.

    ``models``: ``label -> images`` (K, C, H, W) or ``label -> dict`` with ``images`` and optionally ``pred``,
    ``conf`` (wrong-class confidence), ``eps`` ((K,) or (K, top_k); the first is shown under the image), as
    :func:`specrobust.smooth_kernels.deceptive_across_models` returns them under ``models``. ``originals``:
    (K, C, H, W), one O column shared by all models (the paper's layout), or ``label -> (K, C, H, W)`` when each
    model has its own selection (:func:`specrobust.smooth_kernels.deceptive_images`): then an O column precedes
    each model. NaN images (no fooled example of that class) are drawn as 'n/a'.
    """
    items = _items(models)
    imgs = {label: np.asarray(d["images"] if isinstance(d, Mapping) else d, dtype=np.float64) for label, d in items}
    shared = not isinstance(originals, Mapping)
    columns: list[tuple[str, np.ndarray, object]] = []
    if shared:
        columns.append(("O", np.asarray(originals, dtype=np.float64), None))
    for label, d in items:
        if not shared:
            columns.append((f"O ({label})", np.asarray(originals[label], dtype=np.float64), None))
        columns.append((label, imgs[label], d))
    k = len(columns[0][1])
    for name, arr, _ in columns:
        if len(arr) != k:
            raise ValueError(f"column {name!r} has {len(arr)} classes, expected {k}")
    annotated = any(_cell_note(d, c, class_names) is not None for _, _, d in columns for c in range(k))
    fig = _figure(1.15 * len(columns) + 1.2, (1.55 if annotated else 1.2) * k + 0.8)
    axes = fig.subplots(k, len(columns), squeeze=False)
    for c in range(k):
        for j, (name, arr, d) in enumerate(columns):
            ax = axes[c, j]
            _img_axis(ax, arr[c])
            if c == 0:
                ax.set_title(name, fontsize=9.5, fontweight="bold" if name == "O" else None)
            if j == 0:
                ax.set_ylabel(_class_name(class_names, c), fontsize=9.5)
            note = _cell_note(d, c, class_names)
            if note is not None:
                ax.set_xlabel(note, fontsize=7.5)
    fig.suptitle(title)
    return _save(fig, out)


def _first_per_class(d, k_hint: int | None = None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(images (K, C, H, W), start images or None, pred or None) with one image per class: the first of each
    target when ``target`` is given (class_images with per_class > 1)."""
    if not isinstance(d, Mapping):
        return np.asarray(d, dtype=np.float64), None, None
    images = np.asarray(d["images"], dtype=np.float64)
    start = np.asarray(d["start"], dtype=np.float64) if "start" in d else None
    pred = np.asarray(d["pred"]) if "pred" in d else None
    if "target" in d:
        target = np.asarray(d["target"])
        idx = np.array([np.flatnonzero(target == c)[0] for c in np.unique(target)])
        images = images[idx]
        start = start[idx] if start is not None else None
        pred = pred[idx] if pred is not None else None
    return images, start, pred


@_styled
def sk_class_images(models, class_names, title: str, out, stretch: bool = False) -> list[Path]:
    """Smooth-kernel Figures 3-6: what each model considers each class to be (activation maximisation).

    ``models``: ``label -> images`` (K, C, H, W) or ``label -> specrobust.smooth_kernels.class_images`` dict
    (``images``, optional ``start`` = the noise input **I**, ``pred``, ``target``). Columns are classes, the first
    row the input I (from the first model that has one), then one row per model. Images are shown on the fixed
    [0, 1] range, or each stretched to its own range with ``stretch`` (grayscale only). A red frame marks an
    image that the model does not assign to its class.
    """
    items = _items(models)
    rows = []
    start = None
    for label, d in items:
        images, s, pred = _first_per_class(d)
        rows.append((label, images, pred))
        if start is None and s is not None:
            start = s
    if start is not None:
        rows.insert(0, ("I", start, None))
    k = len(rows[-1][1])
    fig = _figure(1.05 * k + 1.2, 1.1 * len(rows) + 0.8)
    axes = fig.subplots(len(rows), k, squeeze=False)
    for r, (label, images, pred) in enumerate(rows):
        for c in range(k):
            ax = axes[r, c]
            failed = pred is not None and int(pred[c]) != c
            img = images[c]
            if stretch and img.shape[0] == 1 and np.isfinite(img).all():
                lo, hi = float(img.min()), float(img.max())
                _img_axis(ax, img[0], vmin=lo, vmax=hi if hi > lo else lo + 1e-6,
                          frame=SK_FAIL_COLOUR if failed else None)
            else:
                _img_axis(ax, img, frame=SK_FAIL_COLOUR if failed else None)
            if r == 0:
                ax.set_title(_class_name(class_names, c), fontsize=9)
            if c == 0:
                ax.set_ylabel(label, fontsize=9.5, fontweight="bold" if label == "I" else None,
                              rotation=0 if len(label) <= 4 else 90, ha="right" if len(label) <= 4 else "center",
                              va="center")
    fig.suptitle(title + (" (red frame: not classified as its class)" if any(
        p is not None and (np.asarray(p)[:k] != np.arange(k)).any() for _, _, p in rows) else ""))
    return _save(fig, out)


def _curve(value) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(value, Mapping):
        b, a = value["bounds"], value["accuracy"]
    else:
        b, a = value
    b, a = np.asarray(b, dtype=np.float64), np.asarray(a, dtype=np.float64)
    keep = np.isfinite(b) & np.isfinite(a)
    order = np.argsort(b[keep], kind="stable")
    return b[keep][order], a[keep][order]


def _sk_base(label: str) -> tuple[str, str]:
    """('V', 'R') for 'VR', ('T', 'H') for 'TH', ('A', '') for 'A': the basic loss and the regulariser suffix."""
    if len(label) > 1 and label[-1] in "RH":
        return label[:-1], label[-1]
    return label, ""


@_styled
def sk_distance_curves(curves, norm, title: str, out, novel=None, by_dataset: bool = False) -> list[Path]:
    """Smooth-kernel Appendix B (Figures 7-9): accuracy (%) against the perturbation bound, one panel per attack,
    one line per model. As in the paper, "novel methods are denoted with solid lines": by default the labels
    ending in R (VR, TR, ...), or those in ``novel``; the others dashed (dotted for the H controls); a basic
    loss and its R / H variants share a colour.

    ``curves``: ``model label -> attack -> (bounds, accuracy)`` (or ``{"bounds", "accuracy"}``), e.g. from
    ``specrobust.minimal_attacks.accuracy_at``; panels wrap four to a row. With ``by_dataset``:
    ``data set -> model label -> attack -> curve``, one row of panels per data set (the paper's figures hold its
    three data sets). ``norm``: "0", "2" or "inf" (axis label).
    """
    blocks = [(str(d), _items(m)) for d, m in _items(curves)] if by_dataset else [("", _items(curves))]
    attacks: list[str] = []
    bases: list[str] = []
    for _, items in blocks:
        for label, per in items:
            attacks += [a for a in per if a not in attacks]
            if _sk_base(label)[0] not in bases:
                bases.append(_sk_base(label)[0])
    if not attacks:
        raise ValueError("no attack curves given")
    norm_tex = {"0": "\\ell_0", "2": "\\ell_2", "inf": "\\ell_\\infty", "linf": "\\ell_\\infty"}.get(
        str(norm).lower(), f"\\ell_{{{norm}}}")
    colours = matplotlib.colormaps["tab10"].colors
    ncols = len(attacks) if by_dataset else min(len(attacks), 4)
    per_block = 1 if by_dataset else -(-len(attacks) // ncols)
    nrows = per_block * len(blocks)
    fig = _figure(3.2 * ncols + 1.6, 2.9 * nrows + 0.6)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    handles = {}
    for bi, (dataset, items) in enumerate(blocks):
        for i, attack in enumerate(attacks):
            r, c = bi * per_block + i // ncols, i % ncols
            ax = axes[r, c]
            drawn = False
            for label, per in items:
                if attack not in per:
                    continue
                base, suffix = _sk_base(label)
                is_novel = label in novel if novel is not None else suffix == "R"
                ls = "-" if is_novel else (":" if suffix == "H" else "--")
                b, a = _curve(per[attack])
                (line,) = ax.plot(b, a, ls, color=colours[bases.index(base) % len(colours)],
                                  linewidth=1.9 if is_novel else 1.4, label=label)
                handles.setdefault(label, line)
                drawn = True
            if not drawn:
                ax.axis("off")
                continue
            ax.set_title(f"{dataset}: {attack}" if dataset else attack)
            ax.set_ylim(-2, 102)
            ax.grid(alpha=0.3)
            ax.set_xlabel(f"${norm_tex}$ bound")
            if c == 0:
                ax.set_ylabel("accuracy (%)")
        if not by_dataset:
            for j in range(len(attacks), per_block * ncols):
                axes[bi * per_block + j // ncols, j % ncols].axis("off")
    fig.legend(list(handles.values()), list(handles.keys()), loc="outside right center")
    fig.suptitle(title)
    return _save(fig, out)


@_styled
def sk_targeted(grid, class_names, title: str, out) -> list[Path]:
    """Smooth-kernel Appendix C (Figures 10-37): targeted attacks, columns = source (original) class, rows =
    target class, the source image on the diagonal (gray frame).

    ``grid``: :func:`specrobust.smooth_kernels.targeted_grid` dict: ``images`` (K, K, C, H, W) indexed
    [target, source], ``pred`` (K, K) and ``success`` (K, K). A failed attack (the model does not predict the
    row's class) gets a red frame and its predicted class underneath.
    """
    images = np.asarray(grid["images"], dtype=np.float64)
    k = images.shape[0]
    if images.shape[1] != k:
        raise ValueError(f"targeted grid images must be (K, K, C, H, W), got {images.shape}")
    pred = np.asarray(grid["pred"]) if "pred" in grid else None
    success = np.asarray(grid["success"], dtype=bool) if "success" in grid else (
        pred == np.arange(k)[:, None] if pred is not None else np.ones((k, k), bool))
    fig = _figure(0.95 * k + 1.3, 1.05 * k + 1.0)
    axes = fig.subplots(k, k, squeeze=False)
    for t in range(k):
        for s in range(k):
            ax = axes[t, s]
            failed = t != s and not success[t, s]
            _img_axis(ax, images[t, s], frame="0.55" if t == s else (SK_FAIL_COLOUR if failed else None))
            if failed and pred is not None:
                ax.set_xlabel(f"→ {_class_name(class_names, pred[t, s])}", fontsize=7, color=SK_FAIL_COLOUR,
                              labelpad=1)
            if t == 0:
                ax.set_title(_class_name(class_names, s), fontsize=9)
            if s == 0:
                ax.set_ylabel(_class_name(class_names, t), fontsize=9)
    off = ~np.eye(k, dtype=bool)
    fig.supxlabel("original class (columns); rows: target class", fontsize=9)
    fig.suptitle(f"{title}\n{int(success[off].sum())}/{int(off.sum())} targeted attacks succeed "
                 "(red frame: failed)")
    return _save(fig, out)
