"""Rules spectral_figure and heatmap_figure: per-model analysis arrays -> FR paper Figures 1-4 (PNG + PDF)."""
from pathlib import Path

import numpy as np

from specrobust import figures
from specrobust.script import run

LABELS = {"natural": "natural", "l_model": "L-model"}
TITLES = {
    "figure1": "{d}: LPF$_{{{k}}}$ images (top), natural (middle), perturbed by PGD-20 against {m} (bottom)",
    "figure2": "{d}: mean spectrum of PGD-20 perturbations (low frequencies centred)",
    "figure3": "{d}: accuracy against bandwidth k (LPF'd inputs, LPF'd / HPF'd perturbations)",
    "figure4": "{d}: Fourier heat maps, error rate (%) per frequency",
}


def main(sm, log):
    arrays = [dict(np.load(p)) for p in sm.input]
    models = {LABELS.get(str(a["method"]), f"robust ({a['method']})"): a for a in arrays}
    kind, first = sm.params.job["kind"], arrays[0]
    title = TITLES[kind].format(d=sm.params.job["dataset"], k=int(first.get("figure1_bandwidth", 0)),
                                m=first["method"])
    draw = {"figure1": lambda: figures.lpf_grid(first, title, list(sm.output)),
            "figure2": lambda: figures.perturbation_spectra(models, title, list(sm.output)),
            "figure3": lambda: figures.bandwidth_curves(models, title, list(sm.output)),
            "figure4": lambda: figures.fourier_heatmaps(models, title, list(sm.output))}[kind]
    paths = draw()
    log("wrote " + ", ".join(str(Path(p)) for p in paths))


run(snakemake, main)  # noqa: F821
