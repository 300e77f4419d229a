"""Rule evaluations: one model's evaluations at one threat model, one line each (the group's last job)."""
import json

from specrobust.io import atomic_write_text
from specrobust.script import run


def main(sm, log):
    rows = ["attack\ttype\teps\tn\taccuracy"]
    for path in sm.input.results:
        r = json.loads(open(path).read())
        rows.append(f"{r['attack']}\t{r['type']}\t{r['eps']}\t{r['n']}\t{r['accuracy']:.2f}")
    atomic_write_text(sm.output[0], "\n".join(rows) + "\n")
    log(f"{len(rows) - 1} evaluations" + (", sanity checks done" if sm.input.sanity else ""))


run(snakemake, main)  # noqa: F821
