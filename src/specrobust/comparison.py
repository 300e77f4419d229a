"""Paper against reproduction: every number we produced that has a published counterpart, side by side.

The published numbers are ``reference/paper_numbers.csv`` (one row per cell: source paper, table, dataset, arch,
method, metric, setting, value). A table of ours names its published table in config (``tables.<name>.paper``);
cells match on dataset, arch, method and metric, and for low-pass filtered metrics also on the bandwidth. The
eps of the two sides is reported next to each other rather than matched, so that a quick run at Fashion-MNIST's
eps 0.1 still lines up with the smooth-kernel paper's unbounded Fashion-MNIST column, visibly so.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .io import atomic_write_text

ARCH_ALIASES = {"smallcnn": "small_cnn"}  # the paper numbers' spelling -> ours
KEY = ["dataset", "arch", "method", "metric"]
COLUMNS = ["table", "paper_table", "source", *KEY, "paper_setting", "our_eps", "paper", "ours", "diff", "scale"]


def reference(path) -> pd.DataFrame:
    ref = pd.read_csv(path, dtype={"setting": str})
    ref["arch"] = ref["arch"].replace(ARCH_ALIASES)
    return ref


def ours_from_table(csv, paper: dict, table: str) -> pd.DataFrame:
    """Our table in long form: one row per (dataset, arch, method, column), named as the paper names metrics, with
    the row's eps (every table states it; NaN: unbounded)."""
    t = pd.read_csv(csv)
    metrics = paper.get("metrics") or {}
    cols = [c for c in t.columns if c not in ("dataset", "arch", "method", "seed", "seeds", "n", "eps", "threat")
            and not c.endswith(("_std", "_diff", "_p"))]
    long = t.melt(id_vars=["dataset", "arch", "method", "eps"], value_vars=cols, var_name="column",
                  value_name="ours")
    lpf = long["column"].str.extract(r"^(clean_|pgd20_)?lpf(\d+)$")  # Table 1's lpfK is clean accuracy
    long["metric"] = (lpf[0].fillna("clean_") + "lpf").where(lpf[1].notna(),
                                                            long["column"].map(lambda c: metrics.get(c, c)))
    long["lpf"] = pd.to_numeric(lpf[1])
    long["table"], long["paper_table"], long["source"] = table, paper["table"], str(paper["source"])
    long["unit"] = paper.get("unit", "percent")
    return long.drop(columns="column")


def compare(ours: pd.DataFrame, ref: pd.DataFrame, scale: str) -> pd.DataFrame:
    """Inner join on the cell; the published value in percent, our value, their difference and the scale."""
    rows = []
    for (source, paper_table, unit), part in ours.groupby(["source", "paper_table", "unit"], sort=False):
        cand = ref[ref["source"].str.startswith(source) & (ref["table"] == paper_table)].copy()
        cand["lpf"] = pd.to_numeric(cand["setting"].str.extract(r"^lpf=(\d+)$")[0])
        cand["paper"] = cand["value"] * (100.0 if unit == "fraction" else 1.0)
        m = part.merge(cand[KEY + ["lpf", "setting", "paper"]], on=KEY, how="inner")
        m = m[(m["lpf_x"].isna() & m["lpf_y"].isna()) | (m["lpf_x"] == m["lpf_y"])]
        rows.append(m)
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=KEY)
    if out.empty:
        return pd.DataFrame(columns=COLUMNS)
    out["diff"] = (out["ours"] - out["paper"]).round(2)
    out["paper"], out["ours"], out["scale"] = out["paper"].round(2), out["ours"].round(2), scale
    out = out.rename(columns={"setting": "paper_setting", "eps": "our_eps"})
    return out[COLUMNS]


def write_comparison(tables: dict[str, tuple[str, dict]], reference_csv, out_csv, out_md, scale: str) -> pd.DataFrame:
    """``tables``: our table name -> (its CSV, its ``paper`` mapping)."""
    ref = reference(reference_csv)
    ours = pd.concat([ours_from_table(csv, paper, name) for name, (csv, paper) in tables.items()],
                     ignore_index=True)
    out = compare(ours, ref, scale)
    out["our_eps"] = out["our_eps"].map(lambda e: f"{e:.4g}" if pd.notna(e) else "none")
    atomic_write_text(out_csv, out.to_csv(index=False))
    lines = ["# Published numbers against this reproduction", "",
             f"Scale: **{scale}**" + (" (CPU-sized: small CNN, few epochs, a subset of the data; differences are "
                                      "expected, the comparison shows which cells the run speaks to)"
                                      if scale != "paper" else " (the papers' settings)") + ".",
             f"{len(out)} cells matched a published number; accuracy in %.", ""]
    for (table, paper_table, source), part in out.groupby(["table", "paper_table", "source"], sort=False):
        lines += [f"## {table} vs {_paper_name(source)} {paper_table}", "",
                  f"Mean |difference| {part['diff'].abs().mean():.2f} points over {len(part)} cells; "
                  f"within 1 point: {int((part['diff'].abs() <= 1).sum())}.", "",
                  "| dataset | arch | method | metric | paper setting | our eps | paper | ours | diff |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in part.itertuples(index=False):
            lines.append(f"| {r.dataset} | {r.arch} | {r.method} | {r.metric} | {r.paper_setting} | {r.our_eps} | "
                         f"{r.paper:.2f} | {r.ours:.2f} | {r.diff:+.2f} |")
        lines.append("")
    if out.empty:
        lines.append("No cell of this run has a published counterpart (different data sets or architectures).")
    atomic_write_text(out_md, "\n".join(lines) + "\n")
    return out


def _paper_name(source: str) -> str:
    return {"000": "workshop paper", "001": "FR paper", "002": "SAR paper", "003": "smooth-kernel paper"}.get(
        re.match(r"\d+", Path(source).name).group(0), source)
