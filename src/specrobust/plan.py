"""The study plan: every training and evaluation job a target needs, its resolved settings and its GPU-hours, read
before any GPU is spent (``snakemake results/plan.md`` trains nothing). Pure Python, no torch.

The jobs are the ones the rules build (the enumerations of :mod:`specrobust.jobs`), the settings their records, the
hours the runtime model the SLURM requests come from (:class:`specrobust.resources.Requests`, without its safety
factor). The plan also says what the shared first-decay prefix saves against training every method from scratch.
"""
from __future__ import annotations

import pandas as pd

from . import jobs
from .io import atomic_write_text
from .resources import Requests

TRAIN_COLUMNS = ["epochs", "epoch_range", "milestones", "lr", "weight_decay", "batch_size", "train_eps",
                 "train_step", "train_steps", "precision", "fr_lambda", "fr_start", "processes"]
EVAL_COLUMNS = ["attack", "threat", "eps", "step", "steps", "restarts", "n_test"]


def study(config: dict, tables=None, analyses: bool = True, ablations: bool = True) -> dict:
    """The models, evaluations, sanity checks and analyses of ``tables`` (default: every table), the analysis
    section and the ablations: what rule ``all`` builds."""
    tables = list(config["tables"]) if tables is None else list(tables)
    evals = [x for t in tables for x in jobs.table_results(config, t)]
    sanity = [x for t in tables for x in jobs.table_sanity(config, t)]
    if set(config["sanity"]["tables"]) & set(tables):
        sanity += jobs.sanity_models(config)
    spectral, heatmap, eps_curve = [], [], []
    if analyses:
        an = config["analysis"]
        spectral = [m for d in an["datasets"] for m in jobs.analysis_models(config, d, an["methods"])]
        spectral += [m for d in an["aaai_datasets"] for m in jobs.analysis_models(config, d, an["aaai_methods"])]
        heatmap = [m for d in an["datasets"] for m in jobs.analysis_models(config, d, an["methods"])]
        eps_curve = [m for t in an["curves"] if t in tables for m in jobs.first_seed_models(config, t)]
    if ablations:
        for name, a in (config.get("ablations") or {}).items():
            threat = jobs.ablation(config, name)["threat"]
            base = (a["dataset"], a["arch"], a["baseline"], a["seed"])
            evals += [(m, threat, c) for m in [base] + jobs.ablation_points(config, name) for c in a["columns"]]
    figures = {}   # the smooth-kernel paper's per-model jobs (minimal FGSM, class images, targeted grids)
    if analyses:
        for figure, kind in (("figure2", "sk_fgsm"), ("class_images", "sk_class_images"), ("targeted", "sk_targeted")):
            if figure in (config.get("smooth_kernels") or {}):
                figures[kind] = [(figure, m) for d in jobs.sk_datasets(config, figure)
                                 for m in jobs.sk_models(config, figure, d)]
    sanity = list(dict.fromkeys(sanity))
    evals += [(m, th, c) for m, th in sanity for c in config["sanity"]["compare"]]
    evals = list(dict.fromkeys(evals))
    models = list(dict.fromkeys([m for m, _, _ in evals] + [m for m, _ in sanity] + spectral + heatmap + eps_curve
                                + [m for jobs_ in figures.values() for _, m in jobs_]))
    return {"models": [m for m in models if not m[2].startswith("external_")], "evaluations": evals,
            "sanity": sanity, "spectral": list(dict.fromkeys(spectral)), "heatmap": list(dict.fromkeys(heatmap)),
            "eps_curve": list(dict.fromkeys(eps_curve)), "figures": figures}


def _train_row(config, req, kind, model, spec, epochs, start) -> dict:
    d, a, m, s = model
    return {"kind": kind, "dataset": d, "arch": a, "method": m, "seed": s, "epochs": epochs,
            "epoch_range": f"{start}..{start + epochs - 1}", "milestones": " ".join(map(str, spec.milestones)),
            "lr": spec.lr, "weight_decay": spec.weight_decay, "batch_size": spec.batch_size,
            "train_eps": round(spec.eps, 6), "train_step": round(spec.step_size, 6) if spec.adversarial else "",
            "train_steps": spec.steps if spec.adversarial else "", "precision": spec.precision,
            "fr_lambda": spec.fr_lambda if spec.fr != "none" else "", "fr_start": spec.first_decay
            if spec.fr != "none" else "", "processes": spec.processes,
            "gpu_hours": req.train_passes(spec, epochs) * req.ms_per_pass(a, d) / 3.6e6}


def plan_rows(config: dict, tables=None, analyses: bool = True, ablations: bool = True) -> tuple[list, float]:
    """One row per job with its settings and estimated GPU-hours; and the GPU-hours the shared prefix saves."""
    req, s = Requests(config), study(config, tables, analyses, ablations)
    rows, saved, prefixes = [], 0.0, {}
    for model in s["models"]:
        d, a, m, seed = model
        spec = jobs.run_spec(config, d, a, m, seed)
        family = jobs.prefix_of(config, d, a, m, seed)
        if family:
            key = (d, a, family, seed)
            prefix = jobs.run_spec(config, d, a, family, seed)
            if key not in prefixes:
                prefixes[key] = _train_row(config, req, "train_prefix", key, prefix, prefix.first_decay, 0)
                rows.append(prefixes[key])
            else:  # without sharing, this run would train the prefix epochs again
                saved += prefixes[key]["gpu_hours"]
            rows.append(_train_row(config, req, "train", model, spec, spec.epochs - spec.first_decay,
                                   spec.first_decay))
        else:
            rows.append(_train_row(config, req, "train", model, spec, spec.epochs, 0))
    for model, threat, attack in s["evaluations"]:
        rec = jobs.evaluate(config, *model, threat, attack)
        rows.append(_eval_row(req, "evaluate", rec))
    for model, threat in s["sanity"]:
        rec = jobs.sanity(config, *model, threat)
        row = _eval_row(req, "sanity", rec, req.sanity_passes(rec))
        row.update(attack="sanity checks", step=round(rec["eps"] * rec["step_fraction"], 6), steps=rec["steps"])
        rows.append(row)
    for kind in ("spectral", "heatmap", "eps_curve"):
        for model in s[kind]:
            rec = getattr(jobs, kind)(config, *model)
            row = _eval_row(req, kind, {**rec, "type": rec.get("type", kind)})
            rows.append(row)
    for kind, figure_jobs in s["figures"].items():
        for figure, model in figure_jobs:
            rec = jobs.sk_model_job(config, figure, *model)
            rows.append(_eval_row(req, kind, {**rec, "attack": figure}, req.figure_passes(kind, rec)))
    return rows, saved


def _eval_row(req, kind, rec, passes: float | None = None) -> dict:
    return {"kind": kind, "dataset": rec["dataset"], "arch": rec["arch"], "method": rec["method"],
            "seed": rec["seed"], "attack": rec.get("attack", kind), "threat": rec.get("threat", ""),
            "eps": "" if rec.get("eps") is None else round(rec["eps"], 6),
            "step": "" if rec.get("step_size") is None else round(rec["step_size"], 6), "steps": rec.get("steps", ""),
            "restarts": rec.get("restarts", ""), "n_test": rec.get("n_test") or "all",
            "gpu_hours": (req.eval_passes(rec) if passes is None else passes)
            * req.ms_per_pass(rec["arch"], rec["dataset"]) / 3.6e6}


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return ""
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def write_plan(rows: list[dict], saved: float, out_csv, out_md, title: str) -> pd.DataFrame:
    table = pd.DataFrame(rows)
    cols = ["kind", "dataset", "arch", "method", "seed"] + TRAIN_COLUMNS + EVAL_COLUMNS + ["gpu_hours"]
    table = table.reindex(columns=cols)
    table["gpu_hours"] = table["gpu_hours"].round(3)
    atomic_write_text(out_csv, table.to_csv(index=False))
    total = table["gpu_hours"].sum()
    by_kind = table.groupby("kind")["gpu_hours"].agg(["count", "sum"])
    by_arch = table.groupby("arch")["gpu_hours"].sum().sort_values(ascending=False)
    lines = [f"# Study plan: {title}", "",
             f"**{len(table)} jobs, {total:,.0f} estimated GPU-hours** on H100-class GPUs (fp32, the runtime model "
             f"of the cluster requests without its safety factor). Sharing each family's first-decay prefix saves "
             f"**{saved:,.0f} GPU-hours** against training every method from scratch "
             f"({saved / max(total + saved, 1e-9):.0%}).", "",
             "| job kind | jobs | GPU-hours |", "|---|---|---|"]
    lines += [f"| {k} | {int(r['count'])} | {r['sum']:,.1f} |" for k, r in by_kind.iterrows()]
    lines += ["", "| arch | GPU-hours |", "|---|---|"] + [f"| {a} | {h:,.1f} |" for a, h in by_arch.items()]
    train = table[table["kind"].isin(["train", "train_prefix"])]
    lines += ["", "## Training jobs", "", "| " + " | ".join(["kind", "dataset", "arch", "method"] + TRAIN_COLUMNS
                                                              + ["gpu_hours"]) + " |",
              "|" + "---|" * (5 + len(TRAIN_COLUMNS))]
    for r in train.itertuples(index=False):
        d = r._asdict()
        lines.append("| " + " | ".join(_cell(d[c]) for c in ["kind", "dataset", "arch", "method"] + TRAIN_COLUMNS)
                     + f" | {d['gpu_hours']:.2f} |")
    ev = table[~table["kind"].isin(["train", "train_prefix"])]
    summary = ev.groupby(["kind", "attack", "threat", "eps", "step", "steps", "restarts", "n_test"], dropna=False)
    lines += ["", "## Evaluation jobs (grouped by settings)", "",
              "| kind | attack | threat | eps | step | steps | restarts | n_test | jobs | GPU-hours |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for key, part in summary:
        lines.append("| " + " | ".join(_cell(v) for v in key) +
                     f" | {len(part)} | {part['gpu_hours'].sum():.1f} |")
    atomic_write_text(out_md, "\n".join(lines) + "\n")
    return table
