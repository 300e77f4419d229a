"""Rule sanity: measure and judge the sanity checks of one model -> one CSV row per check."""
import numpy as np
import pandas as pd

from specrobust.evaluate import load_test_set
from specrobust.io import atomic_write_text
from specrobust.methods import is_natural
from specrobust.sanity import run_sanity
from specrobust.script import evaluation, run
from specrobust.train import resolve_device


def main(sm, log):
    device = resolve_device(sm.config["train"]["device"])
    ev = evaluation(sm)
    cfg = sm.params.sanity
    model, meta, _, x, y = load_test_set(sm.input.model, sm.input.data, int(cfg["n_test"]), device)
    n = len(x)
    evaluated = {a: np.load(p)["correct"] for a, p in zip(cfg["compare"], sm.input.evaluated)}
    checks = run_sanity(model, x, y, meta["eps"], meta.get("step_size", 2 / 255), cfg,
                        natural=is_natural(meta["method"]), evaluated=evaluated,
                        seed=ev["seed"], batch_size=ev["batch_size"])
    ids = {k: meta[k] for k in ("dataset", "arch", "method", "seed")} | {"n": n}
    table = pd.DataFrame([c.row(**ids) for c in checks])
    atomic_write_text(sm.output[0], table.to_csv(index=False))
    for c in checks:
        log(f"{'PASS' if c.passed else 'FAIL'} {c.check}: {c.detail}")


run(snakemake, main)  # noqa: F821
