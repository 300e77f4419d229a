"""Rule spectral: one checkpoint -> LPF/HPF accuracies, PGD-20 perturbation spectrum, example images (.npz)."""
from specrobust.analysis import run_spectral
from specrobust.script import evaluation, run
from specrobust.train import resolve_device


def main(sm, log):
    an, ev = sm.config["analysis"], evaluation(sm)
    run_spectral(sm.input.model, sm.input.data, sm.output[0], sm.params.attack, sm.params.step, n_test=an["n_test"],
                 figure_k=an["figure1_bandwidth"], batch_size=ev["batch_size"], seed=ev["seed"],
                 device=resolve_device(sm.config["train"]["device"]), log=log)


run(snakemake, main)  # noqa: F821
