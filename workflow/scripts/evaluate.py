"""Rule evaluate: one selected checkpoint x one configured attack -> accuracy JSON + per-example results."""
from specrobust.evaluate import run_evaluation
from specrobust.script import evaluation, run
from specrobust.train import resolve_device


def main(sm, log):
    ev = evaluation(sm)
    run_evaluation(sm.input.model, sm.input.data, sm.wildcards.attack, sm.params.attack, sm.output.json,
                   sm.output.per_example, n_test=sm.params.n_test, batch_size=ev["batch_size"], seed=ev["seed"],
                   device=resolve_device(sm.config["train"]["device"]), log=log)


run(snakemake, main)  # noqa: F821
