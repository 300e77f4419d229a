"""Rule paper_comparison: our tables x reference/paper_numbers.csv -> matched cells with differences and scale."""
from specrobust.comparison import write_comparison
from specrobust.script import run


def main(sm, log):
    job = sm.params.job
    tables = {name: (csv, paper) for name, csv, paper in zip(job["names"], sm.input.tables, job["papers"])}
    out = write_comparison(tables, sm.input.reference, sm.output.csv, sm.output.md, job["scale"])
    log(f"{len(out)} of our cells have a published counterpart ({job['scale']} scale)")


run(snakemake, main)  # noqa: F821
