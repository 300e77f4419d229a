"""Rule eps_curve: one checkpoint -> PGD-20 accuracy at multiples of its training eps (.csv)."""
from specrobust.analysis import run_eps_curve
from specrobust.script import evaluation, run
from specrobust.train import resolve_device


def main(sm, log):
    ev = evaluation(sm)
    run_eps_curve(sm.input.model, sm.input.data, sm.output[0], sm.params.multiples, n_test=sm.params.n_test,
                  batch_size=ev["batch_size"], seed=ev["seed"], device=resolve_device(sm.config["train"]["device"]),
                  log=log)


run(snakemake, main)  # noqa: F821
