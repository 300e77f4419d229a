"""Tables in the papers' shape from evaluation results (mean over seeds, spread, Markdown) and the sanity
summary. Needs pandas only, so table rules run in the light analysis environment."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .io import atomic_write_text


LABELS = {"clean": "Clean", "fgsm": "FGSM", "pgd20": "PGD-20", "pgd50": "PGD-50", "cw": "C&W", "aa": "AA",
          "deepfool_l2": "DF (L2)", "deepfool_linf": "DF (L-inf)", "adef": "ADef", "salt_pepper": "S&P",
          "fgsm_min": "FGSM", "pgd_min": "PGD", "cw_l2": "C&W (L2)"}


def read_results(paths) -> pd.DataFrame:
    rows = []
    for p in paths:
        r = json.loads(Path(p).read_text())
        rows.append({k: r.get(k) for k in ("dataset", "arch", "method", "seed", "attack", "accuracy", "n", "eps",
                                           "threat")})
    return pd.DataFrame(rows)


def threat_eps(threat: str) -> float:
    """The L-inf eps of a threat label (``linf-8_255`` -> 8/255), NaN when unbounded."""
    from .config import label_eps

    eps = label_eps(threat)
    return float("nan") if eps is None else eps


def build_table(results: pd.DataFrame, columns: list[str], row_order: list[tuple]) -> pd.DataFrame:
    """One row per (dataset, arch, method) in ``row_order``; each attack column is the mean over seeds (%). Each row
    states its threat model (``threat``, ``eps``: NaN when the searches are unbounded)."""
    g = results.groupby(["dataset", "arch", "method", "attack"])["accuracy"]
    mean, std, count = g.mean().unstack("attack"), g.std(ddof=1).unstack("attack"), g.count().unstack("attack")
    n = results.groupby("attack")["n"].max()
    threat = results.groupby(["dataset", "arch", "method"])["threat"].first()
    out = []
    for key in row_order:
        row = dict(zip(("dataset", "arch", "method"), key))
        for c in columns:
            row[c] = round(float(mean.loc[key, c]), 2)
        row["seeds"] = int(count.loc[key, columns[0]])
        row["threat"] = threat.loc[key]
        row["eps"] = threat_eps(row["threat"])
        for c in columns:
            s = std.loc[key, c]
            row[f"{c}_std"] = round(float(s), 2) if pd.notna(s) else None
        out.append(row)
    table = pd.DataFrame(out)
    table.attrs["n"] = n.to_dict()
    return table


def paired(results: pd.DataFrame, per_example: dict, baselines: dict, columns: list[str]) -> pd.DataFrame:
    """For every row with a baseline (FR and FR/WA against their base), per column: the accuracy difference in
    points with a paired 95% bootstrap interval over the same test images, and McNemar's exact p-value."""
    from .stats import paired_difference

    rows = []
    for row_key, base in baselines.items():
        d, a, m = row_key.split("/", 2)
        for c in columns:
            pairs = []
            for seed in sorted(results.query("dataset == @d and arch == @a and method == @m")["seed"].unique()):
                mine, theirs = per_example.get((d, a, m, seed, c)), per_example.get((d, a, base, seed, c))
                if mine is not None and theirs is not None:
                    pairs.append((mine, theirs))
            if not pairs:
                continue
            correct = [np.concatenate([np.asarray(p[i]["correct"]) for p in pairs]) for i in (0, 1)]
            index = [np.concatenate([np.asarray(p[i]["test_index"]) + k * 10 ** 9 for k, p in enumerate(pairs)])
                     for i in (0, 1)]
            r = paired_difference(correct[0], correct[1], index[0], index[1])
            rows.append({"dataset": d, "arch": a, "method": m, "baseline": base, "column": c, **r})
    return pd.DataFrame(rows)


def _paired_markdown(pairs: pd.DataFrame, labels: dict) -> str:
    if pairs.empty:
        return ""
    lines = ["## Paired differences against the base method", "",
             "Accuracy difference in points on the same test images, paired 95% bootstrap interval and McNemar's "
             "exact p-value; *n.s.*: not significant at 5%.", "",
             "| Dataset | Arch | Method | vs | Column | Difference | 95% interval | p |",
             "|---|---|---|---|---|---|---|---|"]
    for r in pairs.itertuples(index=False):
        mark = "" if r.significant else " *n.s.*"
        lines.append(f"| {r.dataset} | {r.arch} | {r.method} | {r.baseline} | {labels.get(r.column, r.column)} | "
                     f"{r.diff:+.2f}{mark} | [{r.ci95[0]:+.2f}, {r.ci95[1]:+.2f}] | {r.p_mcnemar:.3g} |")
    return "\n".join(lines) + "\n"


def to_markdown(table: pd.DataFrame, columns: list[str], title: str, labels: dict[str, str],
                extra: tuple = ()) -> str:
    """Paper-style Markdown: mean ± std when several seeds ran, best value per dataset in bold, each row's threat
    model in its own column, then ``extra`` columns as they are."""
    head = ["Dataset", "Arch", "Method"] + [labels.get(c, c) for c in columns] + ["Threat model"] + \
        [labels.get(c, c) for c in extra]
    lines = [f"# {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    best = table.groupby("dataset")[columns].transform("max")
    for i, r in table.iterrows():
        cells = [r["dataset"], r["arch"], r["method"]]
        for c in columns:
            v = f"{r[c]:.2f}" + (f" ± {r[c + '_std']:.2f}" if r["seeds"] > 1 and pd.notna(r[c + "_std"]) else "")
            cells.append(f"**{v}**" if r[c] == best.loc[i, c] else v)
        cells.append("unbounded" if pd.isna(r["eps"]) else f"L-inf {r['eps']:.4g}")
        cells += [f"{r[c]:.3f}" for c in extra]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    n = table.attrs.get("n", {})
    lines += ["", "Accuracy in %. Test images per column: "
              + ", ".join(f"{labels.get(c, c)} {n.get(c, '?')}" for c in columns)
              + f"; seeds per row: {sorted(set(table['seeds']))}."]
    return "\n".join(lines) + "\n"


def write_table(result_paths, job: dict, out_csv, out_md, per_example=(), sanity=(), kernels=()) -> pd.DataFrame:
    """CSV in the paper's shape (extra columns after it) and Markdown, with the paired comparisons of each row
    against its baseline (``job["baselines"]``), the first-layer kernel smoothness of each row's model (``kernels``:
    rule kernel_stats' JSONs, for tables with ``kernels: true``) and the models' sanity-check summary."""
    columns = job["columns"]
    results = read_results(result_paths)
    table = build_table(results, columns, [tuple(k) for k in job["rows"]])
    if kernels:
        stats = pd.DataFrame([json.loads(Path(p).read_text()) for p in kernels])
        stats = stats[["dataset", "arch", "method", "roughness", "high_freq_energy"]].round(4)
        n = table.attrs["n"]
        table = table.merge(stats, on=["dataset", "arch", "method"], how="left")
        table.attrs["n"] = n
    pairs = pd.DataFrame()
    if per_example and job.get("baselines"):
        flags = {}
        for p, r in zip(per_example, results.itertuples(index=False)):
            with np.load(p) as z:
                flags[(r.dataset, r.arch, r.method, r.seed, r.attack)] = {k: z[k] for k in ("correct", "test_index")}
        pairs = paired(results, flags, job["baselines"], columns)
        for r in pairs.itertuples(index=False):
            at = (table["dataset"] == r.dataset) & (table["arch"] == r.arch) & (table["method"] == r.method)
            table.loc[at, f"{r.column}_diff"] = round(r.diff, 2)
            table.loc[at, f"{r.column}_p"] = r.p_mcnemar
    paper_cols = ["dataset", "arch", "method"] + columns
    extra = [c for c in table.columns if c not in paper_cols]
    atomic_write_text(out_csv, table[paper_cols + extra].to_csv(index=False))
    md = to_markdown(table, columns, job["title"], LABELS | {"roughness": "Kernel roughness",
                                                              "high_freq_energy": "Kernel HF energy"},
                     extra=("roughness", "high_freq_energy") if kernels else ())
    md += ("\n" + _paired_markdown(pairs, LABELS)) if not pairs.empty else ""
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
        row["eps"] = float(z["eps"])
        rows.append(row)
    table = pd.DataFrame(rows)
    atomic_write_text(out_csv, table.to_csv(index=False))
    lines = [f"# {title}", ""]
    for ds, part in table.groupby("dataset", sort=False):
        cols = [c for c in part.columns if c not in ("dataset", "arch", "seed", "n", "eps") and part[c].notna().any()]
        lines += [f"## {ds} ({part['arch'].iloc[0]}, {part['n'].iloc[0]} test images, PGD-20 at L-inf "
                  f"{part['eps'].iloc[0]:.4g})", "",
                  "| " + " | ".join(_lpf_label(c) for c in cols) + " |", "|" + "---|" * len(cols)]
        for r in part[cols].itertuples(index=False):
            lines.append("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in r) + " |")
        lines.append("")
    lines.append("Accuracy in %. LPF k keeps the centre k x k square of the shifted spectrum (k = image size: no "
                 "filtering)." + (" PGD-20 inputs are attacked unfiltered, then low-pass filtered." if workshop
                                 else " PGD-20: unfiltered inputs."))
    atomic_write_text(out_md, "\n".join(lines) + "\n")
    return table
