"""Rule ablation: one FR Figure 6 ablation -> its table (CSV + Markdown) and figure."""
import json

import pandas as pd

from specrobust import figures
from specrobust.io import atomic_write_text
from specrobust.script import run


def accuracy(paths) -> dict:
    results = [json.loads(open(p).read()) for p in paths]
    return {r["attack"]: r["accuracy"] for r in results}


def main(sm, log):
    a = sm.params.job
    cols = a["columns"]
    base = accuracy(sm.input.baseline)
    rows = [{"param": a["param"], "value": v, **accuracy(sm.input.points[i * len(cols):(i + 1) * len(cols)])}
            for i, v in enumerate(a["values"])]
    table = pd.DataFrame([{"param": "baseline", "value": a["baseline"], **base}] + rows)
    atomic_write_text(sm.output.csv, table.to_csv(index=False))
    md = [f"# {a['title']}", "", f"{a['dataset']}, {a['arch']}, {a['method']} with fr.{a['param']} varied, "
          f"branched from the shared first-decay checkpoint; baseline {a['baseline']}. Accuracy in % "
          f"({a['threat']}).", "",
          "| " + " | ".join([a["param"]] + cols) + " |", "|" + "---|" * (len(cols) + 1)]
    md += ["| " + " | ".join([str(r["value"])] + [f"{r[c]:.2f}" for c in cols]) + " |"
           for r in table.to_dict("records")]
    atomic_write_text(sm.output.md, "\n".join(md) + "\n")
    final = pd.DataFrame(rows)
    final.attrs["baseline"] = base
    curves = {f"{a['baseline']} (AT)": pd.read_csv(sm.input.baseline_metrics)}
    curves |= {f"{a['param']}={v}": pd.read_csv(p) for v, p in zip(a["values"], sm.input.metrics)}
    figures.ablation(curves, final, a["param"], a["baseline"], a["title"], list(sm.output.figure))
    log(f"wrote {sm.output.csv}: " + "; ".join(f"{r['value']}: " + ", ".join(f"{c} {r[c]:.1f}" for c in cols)
                                                for r in table.to_dict("records")))


run(snakemake, main)  # noqa: F821
