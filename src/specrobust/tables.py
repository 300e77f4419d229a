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
    """One row per (dataset, arch, method) in ``row_order``; each attack column is the mean over seeds (%); ``eps``
    is the row's largest L-inf bound (rows of one table may differ: the smooth-kernel table's data sets)."""
    g = results.groupby(["dataset", "arch", "method", "attack"])["accuracy"]
    mean, std, count = g.mean().unstack("attack"), g.std(ddof=1).unstack("attack"), g.count().unstack("attack")
    n = results.groupby("attack")["n"].max()
    eps = results.groupby("attack")["eps"].max()
    row_eps = results.groupby(["dataset", "arch", "method"])["eps"].max()  # the row's L-inf bound (NaN: unbounded)
    out = []
    for key in row_order:
        row = dict(zip(("dataset", "arch", "method"), key))
        for c in columns:
            row[c] = round(float(mean.loc[key, c]), 2)
        row["seeds"] = int(count.loc[key, columns[0]])
        row["eps"] = float(row_eps.loc[key])
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
              + "; L-inf eps: " + ", ".join(sorted({f"{e:.4g}" if pd.notna(e) else "none" for e in eps.values()}))
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


def _npz_row(path) -> dict:
    import numpy as np

    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _lpf_label(column: str) -> str:
    """lpf16 -> LPF 16, pgd20_lpf16 -> PGD-20, LPF 16, clean_lpf16 -> clean, LPF 16."""
    return column.replace("pgd20", "PGD-20").replace("_lpf", ", LPF ").replace("lpf", "LPF ")


def write_lpf_table(spectral_paths, out_csv, out_md, title: str, workshop: bool = False) -> pd.DataFrame:
    """FR paper Table 1 (accuracy on LPF'd clean inputs per bandwidth k, plus PGD-20) or, with ``workshop``, the
    workshop's Table 1 (clean and PGD-20 inputs after LPF at the five widest bandwidths, widest first)."""
    rows = []
    for p in spectral_paths:
        z = _npz_row(p)
        ks = [int(k) for k in z["bandwidths"]]
        row = {"dataset": str(z["dataset"]), "arch": str(z["arch"]), "method": str(z["method"]), "seed": int(z["seed"])}
        if workshop:
            keep = sorted(range(len(ks)), key=lambda i: -ks[i])[:5]
            row |= {f"clean_lpf{ks[i]}": round(float(z["clean_lpf"][i]), 2) for i in keep}
            row |= {f"pgd20_lpf{ks[i]}": round(float(z["pgd20_lpf"][i]), 2) for i in keep}
        else:
            row |= {f"lpf{k}": round(float(a), 2) for k, a in zip(ks, z["clean_lpf"])}
            row["pgd20"] = round(float(z["pgd20"]), 2)
        row["n"] = int(z["n"])
        rows.append(row)
    table = pd.DataFrame(rows)
    atomic_write_text(out_csv, table.to_csv(index=False))
    lines = [f"# {title}", ""]
    for ds, part in table.groupby("dataset", sort=False):
        cols = [c for c in part.columns if c not in ("dataset", "arch", "seed", "n") and part[c].notna().any()]
        lines += [f"## {ds} ({part['arch'].iloc[0]}, {part['n'].iloc[0]} test images)", "",
                  "| " + " | ".join(_lpf_label(c) for c in cols) + " |", "|" + "---|" * len(cols)]
        for r in part[cols].itertuples(index=False):
            lines.append("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in r) + " |")
        lines.append("")
    lines.append("Accuracy in %. LPF k keeps the centre k x k square of the shifted spectrum (k = image size: no "
                 "filtering)." + (" PGD-20 inputs are attacked unfiltered, then low-pass filtered." if workshop
                                 else " PGD-20: unfiltered inputs."))
    atomic_write_text(out_md, "\n".join(lines) + "\n")
    return table
