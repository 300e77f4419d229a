"""Rule sanity: measure and judge the sanity checks of one model -> one CSV row per check."""
import numpy as np
import pandas as pd
import torch

from specrobust.data import load_prepared, to_tensor
from specrobust.evaluate import load_model
from specrobust.io import atomic_write_text
from specrobust.methods import is_natural
from specrobust.sanity import run_sanity
from specrobust.script import run
from specrobust.train import resolve_device


def main(sm, log):
    device = resolve_device(sm.config["train"]["device"])
    cfg = sm.params.sanity
    model, meta = load_model(sm.input.model, device)
    data = load_prepared(sm.input.data)
    n = min(int(cfg["n_test"]), len(data.x_test))
    x, y = to_tensor(data.x_test[:n], device), torch.as_tensor(data.y_test[:n], device=device)
    evaluated = {a: np.load(p)["correct"] for a, p in zip(cfg["compare"], sm.input.evaluated)}
    checks = run_sanity(model, x, y, meta["eps"], meta.get("step_size", 2 / 255), cfg,
                        natural=is_natural(meta["method"]), evaluated=evaluated,
                        seed=sm.config["evaluation"]["seed"], batch_size=sm.config["evaluation"]["batch_size"])
    ids = {k: meta[k] for k in ("dataset", "arch", "method", "seed")} | {"n": n}
    table = pd.DataFrame([c.row(**ids) for c in checks])
    atomic_write_text(sm.output[0], table.to_csv(index=False))
    for c in checks:
        log(f"{'PASS' if c.passed else 'FAIL'} {c.check}: {c.detail}")


run(snakemake, main)  # noqa: F821
