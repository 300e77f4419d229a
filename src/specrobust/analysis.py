"""Per-model frequency analyses of the FR paper (Section 3, Appendix A), computed once and stored as arrays.

One PGD-20 run per model feeds everything that needs a perturbation: accuracy on low-pass filtered clean inputs
(Table 1, Figure 3), on low-pass filtered adversarial inputs (workshop Table 1), on clean inputs plus the low- or
high-pass filtered perturbation (Figure 3), the mean perturbation spectrum (Figure 2) and the example grids
(Figure 1). Fourier heat maps (Figure 4) and accuracy against eps (smooth-kernel Appendix B) are separate because
they cost differently. Everything runs in fp32 on ``model.eval()`` like every reported evaluation.
"""
from __future__ import annotations

import json

import numpy as np
import torch

from . import attacks
from .evaluate import accuracy, fp32_eval, load_test_set, make_attack
from .io import atomic_savez, atomic_write_text
from .spectral import fourier_heatmap, high_pass, low_pass, perturbation_spectrum


def bandwidths(size: int, step: int) -> list[int]:
    """The papers' bandwidth grid: multiples of ``step`` up to the image size (which means no filtering)."""
    if step < 1 or size % step:
        raise ValueError(f"bandwidth step {step} must divide the image size {size}")
    return list(range(step, size + 1, step))


def spectral_analysis(model, x, y, attack, ks: list[int], figure_k: int = 8, batch_size: int = 500,
                      seed: int = 0, n_images: int = 8, spectrum_n: int | None = None) -> dict:
    """Everything Table 1 and Figures 1-3 need from one model, as numpy arrays (accuracies in %).

    ``attack(model, x, y) -> x_adv`` is the table's PGD-20 (:func:`specrobust.evaluate.make_attack`), so the
    "PGD-20" of Table 1 is the same attack as the PGD-20 column of every other table. Accuracies use every image
    of ``x`` (Table 1 and Figure 3: the whole test set); the spectrum the first ``spectrum_n`` (Figure 2: 2,000).
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
    out["spectrum"] = perturbation_spectrum(delta[:spectrum_n]).cpu().numpy()
    out["spectrum_n"] = len(delta[:spectrum_n])
    first = slice(0, min(n_images, len(x)))
    out["images"] = x[first].cpu().numpy()
    out["images_lpf"] = low_pass(x[first], figure_k).clamp(0, 1).cpu().numpy()
    out["images_adv"] = adv[first].cpu().numpy()
    out["labels"] = y[first].cpu().numpy()
    out["figure1_bandwidth"], out["n"] = figure_k, len(x)
    return out


def run_spectral(model_path, data_path, out_npz, job: dict, device="cpu", log=print) -> dict:
    """Rule spectral: the analysis of one selected checkpoint under the tables' PGD-20 at the data set's eps."""
    model, meta, _, x, y = load_test_set(model_path, data_path, job["n_test"], device)
    ks = bandwidths(x.shape[-1], job["bandwidth_step"])
    out = spectral_analysis(model, x, y, make_attack(job), ks, job["figure1_bandwidth"], job["batch_size"],
                            job["attack_seed"], spectrum_n=job["spectrum_n_test"])
    out.update(eps=job["eps"], step_size=job["step_size"], dataset=job["dataset"], arch=job["arch"],
               method=job["method"], seed=job["seed"], job=json.dumps(job))
    atomic_savez(out_npz, **out)
    log(f"{job['dataset']}/{job['method']}: clean {out['clean']:.2f}%, PGD-20 {out['pgd20']:.2f}% on "
        f"{len(x)} images; LPF clean accuracy " + ", ".join(f"k={k} {a:.1f}" for k, a in zip(ks, out['clean_lpf'])))
    return out


def run_heatmap(model_path, data_path, out_npz, job: dict, device="cpu", log=print) -> np.ndarray:
    """Rule heatmap: Fourier heat map (error rate in % per centred frequency) of one checkpoint."""
    model, meta, _, x, y = load_test_set(model_path, data_path, job["n_test"], device)
    g = torch.Generator().manual_seed(job["attack_seed"])
    error = 100 * fourier_heatmap(model, x, y, job["v"], batch_size=job["batch_size"], generator=g,
                                  freqs=job["stride"]).numpy()
    atomic_savez(out_npz, error=error, v=job["v"], n=len(x), stride=job["stride"], dataset=job["dataset"],
                 arch=job["arch"], method=job["method"], seed=job["seed"], job=json.dumps(job))
    log(f"{job['dataset']}/{job['method']}: heat map v={job['v']} on {len(x)} images, mean error "
        f"{np.nanmean(error):.1f}%, DC {error[error.shape[0] // 2, error.shape[1] // 2]:.1f}%")
    return error


def run_eps_curve(model_path, data_path, out_csv, job: dict, device="cpu", log=print):
    """Rule eps_curve: PGD-``steps`` accuracy at multiples of the data set's evaluation eps, step a fraction of each
    eps (eps/4: 2/255 at 8/255)."""
    model, meta, _, x, y = load_test_set(model_path, data_path, job["n_test"], device)
    points = []
    with fp32_eval(model):
        for mult in job["multiples"]:
            eps = float(mult) * job["eps"]
            g = torch.Generator().manual_seed(job["attack_seed"])
            step = job["step_fraction"] * eps
            attack = (lambda m, xb, yb: xb) if eps == 0 else (  # noqa: E731
                lambda m, xb, yb, e=eps, s=step: attacks.pgd(m, xb, yb, e, s, job["steps"], generator=g))
            points.append((mult, eps, step, accuracy(model, x, y, attack, job["batch_size"])))
            log(f"eps {eps:.6g} (step {step:.6g}): {points[-1][-1]:.2f}%")
    rows = ["multiple,eps,step_size,accuracy,n"] + [f"{mult},{eps:.6g},{step:.6g},{acc:.4f},{len(x)}"
                                                    for mult, eps, step, acc in points]
    atomic_write_text(out_csv, "\n".join(rows) + "\n")


def first_conv_weight(model_path) -> np.ndarray:
    """The first convolution's kernels (out, in, kh, kw) of a checkpoint: what the model first does to pixels."""
    from .io import load_checkpoint

    state = load_checkpoint(model_path)["model"]
    for name, w in state.items():
        if name.endswith("weight") and w.ndim == 4:
            return w.float().numpy()
    raise ValueError(f"{model_path}: no convolution weight in the checkpoint")
