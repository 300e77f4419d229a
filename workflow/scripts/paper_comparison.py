"""Rule paper_comparison: our tables x reference/paper_numbers.csv -> matched cells with differences and scale."""
from specrobust.comparison import write_comparison
from specrobust.script import run


def main(sm, log):
    tables = {name: (csv, paper) for name, csv, paper in zip(sm.params.names, sm.input.tables, sm.params.papers)}
    out = write_comparison(tables, sm.input.reference, sm.output.csv, sm.output.md, sm.params.scale, sm.params.eps)
    log(f"{len(out)} of our cells have a published counterpart ({sm.params.scale} scale)")


run(snakemake, main)  # noqa: F821
