"""Rule curves_figure: per-model metrics or eps curves of one table -> training curves / accuracy against eps."""
import pandas as pd

from specrobust import figures
from specrobust.script import run


def main(sm, log):
    job = sm.params.job
    models = job["models"]
    several = len({(d, a) for d, a, _, _ in models}) > 1
    frames = {(f"{d}/{a}/{m}" if several else m): pd.read_csv(p) for (d, a, m, _), p in zip(models, sm.input)}
    if job["kind"] == "training_curves":
        figures.training_curves(frames, f"Training curves: {job['title']}", list(sm.output))
    else:
        eps = max(float(f["eps"].max()) for f in frames.values())
        figures.eps_curves(frames, f"Accuracy against eps: {job['title']}", list(sm.output),
                           scale=255.0 if eps < 0.2 and not several and abs(eps * 255 - round(eps * 255)) < 1e-6
                           else 1.0)
    log(f"wrote {', '.join(sm.output)} ({len(frames)} models)")


run(snakemake, main)  # noqa: F821
