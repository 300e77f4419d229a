"""Rule sk_figure2: smooth-kernel Figure 2: per class the on-average most deceptive FGSM example, each model's
adversarial of it beside the original O (+ the numbers drawn, .npz)."""
import numpy as np

from specrobust import figures
from specrobust.data import load_prepared
from specrobust.io import atomic_savez
from specrobust.script import run
from specrobust.smooth_kernels import deceptive_across_models


def main(sm, log):
    job = sm.params.job
    per = {label: dict(np.load(p)) for label, p in zip(job["labels"], sm.input.fgsm)}
    y = next(iter(per.values()))["labels"]
    x = load_prepared(sm.input.data).x_test[:len(y)].transpose(0, 3, 1, 2) / 255.0
    d = deceptive_across_models(per, x, y, len(job["class_names"]))
    figures.sk_figure2(d["models"], d["originals"], job["class_names"],
                       f"{job['dataset']}: the most deceptive FGSM example of each class (O: original)",
                       list(sm.output.figure))
    atomic_savez(sm.output.npz, originals=d["originals"], selected=d["selected"], mean_conf=d["mean_conf"],
                 labels=np.array(job["labels"]),
                 **{f"{label}_{k}": v for label, m in d["models"].items() for k, v in m.items()})
    for label, m in d["models"].items():
        log(f"{label}: predicted " + ", ".join(f"{job['class_names'][c]}->{int(p[0])}"
                                               for c, p in enumerate(m["pred"])))


run(snakemake, main)  # noqa: F821
