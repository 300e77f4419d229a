"""Rules sk_class_figure and sk_targeted_figure: per-model arrays -> smooth-kernel Figures 3-6 (class images of
every model of a data set) or one model's targeted-attack grid (Figures 10-17)."""
import numpy as np

from specrobust import figures
from specrobust.io import atomic_savez
from specrobust.script import run


def main(sm, log):
    job = sm.params.job
    if job["figure"] == "class_images":
        models = {label: dict(np.load(p)) for label, p in zip(job["labels"], sm.input)}
        figures.sk_class_images(models, job["class_names"], f"{job['dataset']}: what each model takes each class "
                                f"to be ({job['steps']} steps of gradient ascent on the class logit)",
                                list(sm.output.figure))
        atomic_savez(sm.output.npz, labels=np.array(job["labels"]),
                     **{f"{label}_{k}": m[k] for label, m in models.items() for k in ("images", "logits", "pred")})
        for label, m in models.items():
            log(f"{label}: {int((m['pred'] == m['target']).sum())} of {len(m['target'])} class images are "
                f"classified as their class")
    else:
        grid = dict(np.load(sm.input[0]))
        label = job["labels"][job["methods"].index(job["method"])]
        figures.sk_targeted(grid, job["class_names"], f"{job['dataset']}, {label}: targeted attacks (columns: source "
                            f"class, rows: target class)", list(sm.output))
        off = ~np.eye(len(grid["pred"]), dtype=bool)
        log(f"{label}: {int(grid['success'][off].sum())} of {int(off.sum())} targeted attacks reach their target")


run(snakemake, main)  # noqa: F821
