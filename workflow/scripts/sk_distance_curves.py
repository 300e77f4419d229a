"""Rule sk_distance_curves: smooth-kernel Appendix B: accuracy against the l0 / l2 / l-inf size of the minimal
perturbations each attack found (stored with every evaluation), per model (+ the curves drawn, .csv)."""
import numpy as np
import pandas as pd

from specrobust import figures
from specrobust.io import atomic_write_text
from specrobust.minimal_attacks import accuracy_at
from specrobust.script import run


def main(sm, log):
    job, norm = sm.params.job, sm.params.job["norm"]
    attacks, paths = job["attacks"], iter(sm.input)
    dists = {label: {a: np.load(next(paths))[f"dist_{norm}"] for a in attacks} for label in job["labels"]}
    finite = np.concatenate([d[np.isfinite(d)] for m in dists.values() for d in m.values()] + [np.zeros(1)])
    bounds = np.linspace(0.0, float(finite.max()) or 1.0, 101)
    curves = {label: {a: (bounds, accuracy_at(d, bounds)) for a, d in m.items()} for label, m in dists.items()}
    rows = [{"model": label, "attack": a, "norm": norm, "bound": b, "accuracy": acc}
            for label, m in curves.items() for a, (bs, accs) in m.items() for b, acc in zip(bs, accs)]
    atomic_write_text(sm.output.csv, pd.DataFrame(rows).to_csv(index=False))
    names = {"l0": "$\\ell_0$", "l2": "$\\ell_2$", "linf": "$\\ell_\\infty$"}
    figures.sk_distance_curves(curves, norm, f"{job['dataset']}: accuracy against the {names[norm]} size of the "
                               f"minimal perturbation", list(sm.output.figure))
    log(f"{len(rows)} points, bounds 0..{bounds[-1]:.4g}")


run(snakemake, main)  # noqa: F821
