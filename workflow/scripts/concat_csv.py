"""Rule kernel_table: per-data-set CSVs -> one CSV."""
import pandas as pd

from specrobust.io import atomic_write_text
from specrobust.script import run


def main(sm, log):
    table = pd.concat([pd.read_csv(p) for p in sm.input], ignore_index=True)
    atomic_write_text(sm.output[0], table.to_csv(index=False))
    log(f"wrote {sm.output[0]} ({len(table)} rows)")


run(snakemake, main)  # noqa: F821
