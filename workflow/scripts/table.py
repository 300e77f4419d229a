"""Table rules: evaluation JSONs (+ per-example files for the paired comparisons) -> CSV in the paper's shape + .md."""
from specrobust.script import run
from specrobust.tables import write_table


def main(sm, log):
    table = write_table(list(sm.input.results), sm.params.job, sm.output.csv, sm.output.md,
                        per_example=list(sm.input.per_example), sanity=list(sm.input.sanity),
                        kernels=list(sm.input.get("kernels", [])))
    log(f"wrote {sm.output.csv} ({len(table)} rows)")


run(snakemake, main)  # noqa: F821
