"""Rule kernels: first-layer kernels of the natural and the robust model -> figure + smoothness numbers."""
import pandas as pd

from specrobust import figures
from specrobust.analysis import first_conv_weight
from specrobust.io import atomic_write_text
from specrobust.script import run


def main(sm, log):
    job = sm.params.job
    weights = {m: first_conv_weight(p) for m, p in zip(job["methods"], sm.input)}
    d = job["dataset"]
    figures.kernels(weights, f"{d}: first-layer kernels, natural against robust", list(sm.output.figure))
    rows = [{"dataset": d, "arch": job["arch"], "method": m, **figures.kernel_smoothness(w)}
            for m, w in weights.items()]
    atomic_write_text(sm.output.csv, pd.DataFrame(rows).to_csv(index=False))
    for r in rows:
        log(", ".join(f"{k}={v}" for k, v in r.items()))


run(snakemake, main)  # noqa: F821
