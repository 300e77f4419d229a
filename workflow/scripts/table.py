"""Table rules: evaluation JSONs -> CSV in the paper's shape + Markdown."""
from specrobust.script import run
from specrobust.tables import write_table

LABELS = {"clean": "Clean", "fgsm": "FGSM", "pgd20": "PGD-20", "pgd50": "PGD-50", "cw": "C&W", "aa": "AA",
          "deepfool_l2": "DF (L2)", "deepfool_linf": "DF (L-inf)", "adef": "ADef", "salt_pepper": "S&P"}


def main(sm, log):
    table = write_table(list(sm.input.results), sm.params.columns, sm.params.rows, sm.output.csv, sm.output.md,
                        sm.params.title, LABELS, sanity=list(sm.input.sanity))
    log(f"wrote {sm.output.csv} ({len(table)} rows)")


run(snakemake, main)  # noqa: F821
