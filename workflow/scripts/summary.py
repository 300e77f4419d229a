"""Rule summary: the summary notebook executed on this run's results, and its HTML."""
from pathlib import Path

from specrobust.script import run
from specrobust.summary import render_summary


def main(sm, log):
    tables = [Path(p).stem for p in sm.input.tables if Path(p).stem not in ("sanity", "paper_comparison")]
    tables += [f"ablations/{Path(p).stem}" for p in sm.input.ablations]
    size = render_summary(sm.input.notebook, sm.output.notebook, sm.output.html, "results", sm.params.job["scale"],
                          tables, sm.input.figures)
    log(f"executed {sm.input.notebook} -> {sm.output.notebook}, {sm.output.html} ({size // 1024} KiB)")


run(snakemake, main)  # noqa: F821
