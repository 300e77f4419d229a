"""Rule lpf_table: per-model spectral arrays -> the FR paper's Table 1 or the workshop's Table 1 (CSV + Markdown)."""
from specrobust.script import run
from specrobust.tables import write_lpf_table


def main(sm, log):
    job = sm.params.job
    table = write_lpf_table(list(sm.input), sm.output.csv, sm.output.md, job["title"], workshop=job["workshop"])
    log(f"wrote {sm.output.csv} ({len(table)} rows)")


run(snakemake, main)  # noqa: F821
