"""Rule sanity_table: all models' checks in results/sanity.csv and .md; failures are printed, not hidden."""
from specrobust.tables import write_sanity_table
from specrobust.script import run


def main(sm, log):
    failed = write_sanity_table(list(sm.input), sm.output.csv, sm.output.md)
    for f in failed:
        log(f"SANITY FAILURE {f}")
    log(f"{len(failed)} failed checks" if failed else "all sanity checks passed")


run(snakemake, main)  # noqa: F821
