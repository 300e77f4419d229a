"""Per-model frequency analyses of the FR paper (Section 3, Appendix A), computed once and stored as arrays.

One PGD-20 run per model feeds everything that needs a perturbation: accuracy on low-pass filtered clean inputs
(Table 1, Figure 3), on low-pass filtered adversarial inputs (workshop Table 1), on clean inputs plus the low- or
high-pass filtered perturbation (Figure 3), the mean perturbation spectrum (Figure 2) and the example grids
(Figure 1). Fourier heat maps (Figure 4) and accuracy against eps (smooth-kernel Appendix B) are separate because
they cost differently. Everything runs in fp32 on ``model.eval()`` like every reported evaluation.
"""
from __future__ import annotations

import numpy as np
import torch

from . import attacks
from .config import number
from .evaluate import accuracy, fp32_eval, load_test_set, make_attack
from .io import atomic_savez, atomic_write_text
from .spectral import fourier_heatmap, high_pass, low_pass, perturbation_spectrum


def bandwidths(size: int, step: int) -> list[int]:
    """The papers' bandwidth grid: multiples of ``step`` up to the image size (which means no filtering)."""
    if step < 1 or size % step:
        raise ValueError(f"bandwidth step {step} must divide the image size {size}")
    return list(range(step, size + 1, step))


def spectral_analysis(model, x, y, attack, ks: list[int], figure_k: int = 8, batch_size: int = 500,
                      seed: int = 0, n_images: int = 8) -> dict:
    """Everything Table 1 and Figures 1-3 need from one model, as numpy arrays (accuracies in %).

    ``attack(model, x, y) -> x_adv`` is the table's PGD-20 (:func:`specrobust.evaluate.make_attack`), so the
    "PGD-20" of Table 1 is the same attack as the PGD-20 column of every other table.
    """
    torch.manual_seed(seed)
    with fp32_eval(model):
        adv = torch.cat([attack(model, x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(x), batch_size)])
        delta = adv - x

        def acc(inputs):
            return accuracy(model, inputs, y, lambda m, xb, yb: xb, batch_size)

        out = {
            "bandwidths": np.array(ks),
            "clean": acc(x),
            "pgd20": acc(adv),
            "clean_lpf": np.array([acc(low_pass(x, k).clamp(0, 1)) for k in ks]),
            "pgd20_lpf": np.array([acc(low_pass(adv, k).clamp(0, 1)) for k in ks]),
            "pert_lpf": np.array([acc((x + low_pass(delta, k)).clamp(0, 1)) for k in ks]),
            "pert_hpf": np.array([acc((x + high_pass(delta, k)).clamp(0, 1)) for k in ks]),
        }
    out["spectrum"] = perturbation_spectrum(delta).cpu().numpy()
    first = slice(0, min(n_images, len(x)))
    out["images"] = x[first].cpu().numpy()
    out["images_lpf"] = low_pass(x[first], figure_k).clamp(0, 1).cpu().numpy()
    out["images_adv"] = adv[first].cpu().numpy()
    out["labels"] = y[first].cpu().numpy()
    out["figure1_bandwidth"], out["n"] = figure_k, len(x)
    return out


def run_spectral(model_path, data_path, out_npz, attack_cfg: dict, step: int, n_test=None, figure_k: int = 8,
                 batch_size: int = 500, seed: int = 0, device="cpu", log=print) -> dict:
    """Rule ``spectral``: the analysis of one selected checkpoint under the configured PGD-20 at its eps."""
    model, meta, _, x, y = load_test_set(model_path, data_path, n_test, device)
    ks = bandwidths(x.shape[-1], step)
    eps = number(attack_cfg.get("eps", meta["eps"]))
    out = spectral_analysis(model, x, y, make_attack(attack_cfg, meta["eps"], "pgd20"), ks, figure_k, batch_size,
                            seed)
    out.update(eps=eps, dataset=meta["dataset"], arch=meta["arch"], method=meta["method"], seed=meta["seed"])
    atomic_savez(out_npz, **out)
    log(f"{meta['dataset']}/{meta['method']}: clean {out['clean']:.2f}%, PGD-20 {out['pgd20']:.2f}% on "
        f"{len(x)} images; LPF clean accuracy " + ", ".join(f"k={k} {a:.1f}" for k, a in zip(ks, out['clean_lpf'])))
    return out


def run_heatmap(model_path, data_path, out_npz, v: float, n_test=None, stride: int = 1, batch_size: int = 500,
                seed: int = 0, device="cpu", log=print) -> np.ndarray:
    """Rule ``heatmap``: Fourier heat map (error rate in % per centred frequency) of one checkpoint."""
    model, meta, _, x, y = load_test_set(model_path, data_path, n_test, device)
    g = torch.Generator().manual_seed(seed)
    error = 100 * fourier_heatmap(model, x, y, v, batch_size=batch_size, generator=g, freqs=stride).numpy()
    atomic_savez(out_npz, error=error, v=v, n=len(x), stride=stride, dataset=meta["dataset"], arch=meta["arch"],
                 method=meta["method"], seed=meta["seed"])
    log(f"{meta['dataset']}/{meta['method']}: heat map v={v} on {len(x)} images, mean error "
        f"{np.nanmean(error):.1f}%, DC {error[error.shape[0] // 2, error.shape[1] // 2]:.1f}%")
    return error


def run_eps_curve(model_path, data_path, out_csv, multiples: list[float], n_test=None, steps: int = 20,
                  batch_size: int = 500, seed: int = 0, device="cpu", log=print):
    """Rule ``eps_curve``: PGD-``steps`` accuracy at multiples of the run's eps, step eps/4 (2/255 at 8/255)."""
    model, meta, _, x, y = load_test_set(model_path, data_path, n_test, device)
    points = []
    with fp32_eval(model):
        for mult in multiples:
            eps = float(mult) * meta["eps"]
            g = torch.Generator().manual_seed(seed)
            attack = (lambda m, xb, yb: xb) if eps == 0 else (  # noqa: E731
                lambda m, xb, yb, e=eps: attacks.pgd(m, xb, yb, e, e / 4, steps, generator=g))
            points.append((mult, eps, accuracy(model, x, y, attack, batch_size)))
    rows = ["multiple,eps,accuracy,n"] + [f"{mult},{eps:.6g},{acc:.4f},{len(x)}" for mult, eps, acc in points]
    atomic_write_text(out_csv, "\n".join(rows) + "\n")
    log(f"{meta['dataset']}/{meta['method']}: " + "; ".join(f"{eps:.6g} -> {acc:.4f}" for _, eps, acc in points))


def first_conv_weight(model_path) -> np.ndarray:
    """The first convolution's kernels (out, in, kh, kw) of a checkpoint: what the model first does to pixels."""
    from .io import load_checkpoint

    state = load_checkpoint(model_path)["model"]
    for name, w in state.items():
        if name.endswith("weight") and w.ndim == 4:
            return w.float().numpy()
    raise ValueError(f"{model_path}: no convolution weight in the checkpoint")
