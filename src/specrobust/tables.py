"""Tables in the papers' shape from evaluation results (mean over seeds, spread, Markdown) and the sanity
summary. Needs pandas only, so table rules run in the light analysis environment."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .io import atomic_write_text


def read_results(paths) -> pd.DataFrame:
    rows = []
    for p in paths:
        r = json.loads(Path(p).read_text())
        rows.append({k: r[k] for k in ("dataset", "arch", "method", "seed", "attack", "accuracy", "n", "eps")})
    return pd.DataFrame(rows)


def build_table(results: pd.DataFrame, columns: list[str], row_order: list[tuple]) -> pd.DataFrame:
    """One row per (dataset, arch, method) in ``row_order``; each attack column is the mean over seeds (%)."""
    g = results.groupby(["dataset", "arch", "method", "attack"])["accuracy"]
    mean, std, count = g.mean().unstack("attack"), g.std(ddof=1).unstack("attack"), g.count().unstack("attack")
    n = results.groupby("attack")["n"].max()
    eps = results.groupby("attack")["eps"].max()
    out = []
    for key in row_order:
        row = dict(zip(("dataset", "arch", "method"), key))
        for c in columns:
            row[c] = round(float(mean.loc[key, c]), 2)
        row["seeds"] = int(count.loc[key, columns[0]])
        for c in columns:
            s = std.loc[key, c]
            row[f"{c}_std"] = round(float(s), 2) if pd.notna(s) else None
        out.append(row)
    table = pd.DataFrame(out)
    table.attrs["n"], table.attrs["eps"] = n.to_dict(), eps.to_dict()
    return table


def to_markdown(table: pd.DataFrame, columns: list[str], title: str, labels: dict[str, str]) -> str:
    """Paper-style Markdown: mean ± std when several seeds ran, best value per dataset in bold."""
    head = ["Dataset", "Arch", "Method"] + [labels.get(c, c) for c in columns]
    lines = [f"# {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    best = table.groupby("dataset")[columns].transform("max")
    for i, r in table.iterrows():
        cells = [r["dataset"], r["arch"], r["method"]]
        for c in columns:
            v = f"{r[c]:.2f}" + (f" ± {r[c + '_std']:.2f}" if r["seeds"] > 1 and pd.notna(r[c + "_std"]) else "")
            cells.append(f"**{v}**" if r[c] == best.loc[i, c] else v)
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    n, eps = table.attrs.get("n", {}), table.attrs.get("eps", {})
    lines += ["", "Accuracy in %. Test images per column: "
              + ", ".join(f"{labels.get(c, c)} {n.get(c, '?')}" for c in columns)
              + "; L-inf eps: " + ", ".join(sorted({f"{e:.4g}" for e in eps.values()}))
              + f"; seeds per row: {sorted(set(table['seeds']))}."]
    return "\n".join(lines) + "\n"


def write_table(result_paths, columns, row_order, out_csv, out_md, title, labels=None, sanity=()) -> pd.DataFrame:
    """CSV in the paper's shape (extra columns after it) and Markdown, with the models' sanity-check summary."""
    table = build_table(read_results(result_paths), columns, [tuple(k) for k in row_order])
    paper_cols = ["dataset", "arch", "method"] + columns
    extra = [c for c in table.columns if c not in paper_cols]
    atomic_write_text(out_csv, table[paper_cols + extra].to_csv(index=False))
    md = to_markdown(table, columns, title, labels or {})
    if sanity:
        md += "\n" + sanity_markdown(*sanity_summary(sanity))
    atomic_write_text(out_md, md)
    return table


def sanity_summary(paths) -> tuple[pd.DataFrame, list[str]]:
    """All per-model sanity CSVs in one frame, and one line per failed check."""
    table = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    failed = [f"{r.dataset}/{r.arch}/{r.method}/seed{r.seed} {r.check}: {r.detail}"
              for r in table.itertuples() if not r.passed]
    return table, failed


def sanity_markdown(table, failed) -> str:
    lines = [f"**Sanity checks: {len(table) - len(failed)} of {len(table)} passed.**"]
    lines += [f"- FAIL {f}" for f in failed]
    return "\n".join(lines) + "\n"


def write_sanity_table(paths, out_csv, out_md) -> list[str]:
    table, failed = sanity_summary(paths)
    atomic_write_text(out_csv, table.to_csv(index=False))
    cols = ["dataset", "arch", "method", "seed", "check", "passed", "value", "reference", "tolerance", "detail"]
    md = ["# Sanity checks", "", sanity_markdown(table, failed), "| " + " | ".join(cols) + " |",
          "|" + "---|" * len(cols)]
    for r in table[cols].itertuples(index=False):
        md.append("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in r) + " |")
    atomic_write_text(out_md, "\n".join(md) + "\n")
    return failed
