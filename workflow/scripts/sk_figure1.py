"""Rule sk_figure1: smooth-kernel Figure 1 on the four shapes: per model its first four kernels, their |DFT| and the
first layer's feature maps of one star (+ the numbers drawn, .npz)."""
import numpy as np
import torch

from specrobust import figures
from specrobust.data import load_prepared, to_tensor
from specrobust.evaluate import load_model
from specrobust.io import atomic_savez
from specrobust.script import run
from specrobust.smooth_kernels import first_layer_view


def main(sm, log):
    job = sm.params.job
    data = load_prepared(sm.input.data)
    star = int(np.flatnonzero(data.y_test == job["image_class"])[0])
    image = to_tensor(data.x_test[star:star + 1])[0]
    views, arrays = {}, {"test_position": star}
    for label, path in zip(job["labels"], sm.input.models):
        model, _ = load_model(path, "cpu")
        with torch.no_grad():
            views[label] = first_layer_view(model, image, job.get("n_kernels", 4), job.get("pad", 32))
        for key in ("kernels_2d", "spectra", "features"):
            arrays[f"{label}_{key}"] = views[label][key]
        arrays[f"{label}_roughness"] = figures.kernel_smoothness(views[label]["kernels_2d"])["roughness"]
        log(f"{label}: roughness of the first {len(views[label]['kernels_2d'])} kernels "
            f"{arrays[f'{label}_roughness']:.3f}")
    figures.sk_figure1(views, f"{job['dataset']}: first-layer kernels, their spectra and the feature maps of a "
                              f"{job['class_names'][job['image_class']]}", list(sm.output.figure))
    atomic_savez(sm.output.npz, labels=np.array(job["labels"]), **arrays)


run(snakemake, main)  # noqa: F821
