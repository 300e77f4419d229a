"""Rule sanity: measure and judge the sanity checks of one model at one threat model -> one CSV row per check."""
from specrobust.sanity import run_sanity_job
from specrobust.script import device, run


def main(sm, log):
    run_sanity_job(sm.input.model, sm.input.data, list(sm.input.evaluated), sm.params.job, sm.output[0],
                   device=device(sm), log=log)


run(snakemake, main)  # noqa: F821
