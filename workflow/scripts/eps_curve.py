"""Rule eps_curve: one checkpoint -> PGD-20 accuracy at multiples of the data set's evaluation eps (.csv)."""
from specrobust.analysis import run_eps_curve
from specrobust.script import device, run


def main(sm, log):
    run_eps_curve(sm.input.model, sm.input.data, sm.output[0], sm.params.job, device=device(sm), log=log)


run(snakemake, main)  # noqa: F821
