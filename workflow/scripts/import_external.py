"""Rule import_external: a user's state_dict + arch name -> results/models/.../external_{name}/seed0/model.pt."""
from specrobust.evaluate import import_external
from specrobust.script import run


def main(sm, log):
    job = sm.params.job
    meta = import_external(sm.input.checkpoint, job["arch"], sm.input.data, sm.output[0], job["name"], job["mean"],
                           job["std"], job["arch_options"])
    log(f"imported {sm.input.checkpoint} as {meta['dataset']}/{meta['arch']}/{meta['method']}")


run(snakemake, main)  # noqa: F821
