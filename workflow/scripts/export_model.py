"""Rule export_model: one trained model + its clean and AutoAttack results -> RobustBench model_info JSON + weights."""
from specrobust.export import export_model
from specrobust.script import run


def main(sm, log):
    info = export_model(sm.input.model, dict(zip(("clean", "autoattack"), sm.input.results)), sm.output.json,
                        sm.output.weights, clean_per_example=sm.input.clean)
    log(f"exported {sm.input.model}: clean {info['clean_acc']}%, AutoAttack {info['autoattack_acc']}% at eps "
        f"{info['eps']}")


run(snakemake, main)  # noqa: F821
