"""Rule evaluate: one selected checkpoint x one attack preset at one threat model -> result JSON + per-example."""
from specrobust.evaluate import run_evaluation
from specrobust.script import device, run


def main(sm, log):
    run_evaluation(sm.input.model, sm.input.data, sm.params.job, sm.output.json, sm.output.per_example,
                   device=device(sm), log=log)


run(snakemake, main)  # noqa: F821
