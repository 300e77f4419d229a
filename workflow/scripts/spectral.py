"""Rule spectral: one checkpoint -> LPF/HPF accuracies, PGD-20 perturbation spectrum, example images (.npz)."""
from specrobust.analysis import run_spectral
from specrobust.script import device, run


def main(sm, log):
    run_spectral(sm.input.model, sm.input.data, sm.output[0], sm.params.job, device=device(sm), log=log)


run(snakemake, main)  # noqa: F821
