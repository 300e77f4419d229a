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
