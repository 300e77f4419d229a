"""``specrobust``: score one checkpoint, export a model, or print the study plan, outside Snakemake, through the same
code the rules run (the same records from :mod:`specrobust.jobs`, the same data preparation, import and evaluation).

    specrobust evaluate --checkpoint ckpt.pt --arch wrn34_10 --dataset cifar10 --data cifar10.npz --attack clean aa
    specrobust export results/models/cifar10/resnet18/pgd_at/seed0/model.pt --out results/export/mine
    specrobust plan [--table table2] [--config my.yaml]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import yaml

from .errors import SpecRobustError

ROOT = Path(__file__).resolve().parents[2]


def load_config(extra: list[str]) -> dict:
    """config/config.yaml of this checkout with the given config files on top, checked as the workflow checks it."""
    from .config import deep_merge, load

    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    for path in extra:
        config = deep_merge(config, yaml.safe_load(Path(path).read_text()) or {})
    return load(config, ROOT / "workflow/schemas/config.schema.yaml")


def evaluate(a) -> list[dict]:
    """Prepare the data (rule prepare_dataset), wrap the checkpoint (rule import_external), run each attack
    (rule evaluate) at the threat model of ``--table`` on ``--dataset``; print and return the result JSONs."""
    from . import jobs
    from .data import prepare
    from .evaluate import import_external, run_evaluation
    from .train import resolve_device

    config = load_config(a.config)
    if a.n_test is not None:
        config["evaluation"]["n_test"] = a.n_test
        for attack in config["evaluation"]["attacks"].values():
            attack.pop("n_test", None)
    threat = jobs.eps_label(a.eps) if a.eps is not None else jobs.table_threat(config, a.table, a.dataset)
    rec = jobs.prepare(config, a.dataset)
    device = str(resolve_device(a.device))
    out = Path(a.workdir or tempfile.mkdtemp(prefix="specrobust-"))
    data = out / f"{a.dataset}.npz"
    prepare(a.dataset, data, root=rec.get("root"), path=a.data, val_fraction=rec["val_fraction"],
            split_seed=rec["split_seed"], test_limit=a.n_test)
    model = out / "model.pt"
    import_external(a.checkpoint, a.arch, data, model, "cli", a.mean, a.std,
                    dict((config.get("archs") or {}).get(a.arch) or {}))
    results = []
    for attack in a.attack:
        jobs_rec = jobs.evaluate(config, a.dataset, a.arch, "external_cli", 0, threat, attack)
        results.append(run_evaluation(model, data, jobs_rec, out / f"{attack}.json", out / f"{attack}.npz",
                                      device=device, log=lambda m: print(m, file=sys.stderr)))
    print(json.dumps(results if len(results) > 1 else results[0], indent=2, sort_keys=True, default=str))
    return results


def export(a) -> dict:
    """model.pt + its clean and AutoAttack result JSONs (found beside it under results/eval, or given) -> export."""
    from .export import export_model

    model = Path(a.model)
    if a.results:
        results = {Path(p).stem: p for p in a.results}
    else:  # results/models/<d>/<a>/<m>/seed<s>/model.pt -> results/eval/<d>/<a>/<m>/seed<s>/<threat>/*.json
        evals = Path(str(model.parent).replace("results/models", "results/eval", 1))
        found = sorted(evals.glob(f"{a.threat or '*'}/*.json"))
        results = {f"{p.parent.name}/{p.stem}": p for p in found}
        results = {k: v for k, v in results.items() if json.loads(Path(v).read_text())["type"] in
                   ("clean", "autoattack")}
    out = Path(a.out)
    info = export_model(model, results, out / "model_info.json", out / ("weights" + a.format))
    print(json.dumps(info, indent=2, sort_keys=True))
    return info


def plan(a):
    from .plan import plan_rows, write_plan

    config = load_config(a.config)
    tables = a.table or None
    rows, saved = plan_rows(config, tables, analyses=tables is None, ablations=tables is None)
    stem = Path(a.out)
    table = write_plan(rows, saved, stem.with_suffix(".csv"), stem.with_suffix(".md"),
                       ", ".join(tables) if tables else "rule all")
    print(f"{len(table)} jobs, {table['gpu_hours'].sum():,.1f} estimated GPU-hours; the shared prefix saves "
          f"{saved:,.1f}; written to {stem.with_suffix('.md')}")
    return table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="specrobust", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("evaluate", help="score one checkpoint under the workflow's attacks")
    e.add_argument("--checkpoint", required=True, help="a state_dict file (ours, RobustBench's, TRADES', ...)")
    e.add_argument("--arch", required=True)
    e.add_argument("--dataset", required=True)
    e.add_argument("--data", help="what data.paths.<dataset> takes: an .npz, a torchvision folder, an IDX folder")
    e.add_argument("--attack", nargs="+", default=["clean"], help="evaluation.attacks entries")
    e.add_argument("--n-test", type=int, help="first N test images (default: evaluation.n_test)")
    e.add_argument("--table", default="table2", help="whose threat model (eps) to attack at")
    e.add_argument("--eps", help="attack at this L-inf eps instead (e.g. 8/255)")
    e.add_argument("--mean", type=float, nargs="+", help="normalization the network expects (default: none, "
                                                          "RobustBench's convention)")
    e.add_argument("--std", type=float, nargs="+")
    e.add_argument("--device", default="auto")
    e.add_argument("--config", nargs="*", default=[], help="config files on top of config/config.yaml")
    e.add_argument("--workdir", help="keep the prepared data, model.pt and per-example results here")
    x = sub.add_parser("export", help="RobustBench model_info JSON + weights of one trained model")
    x.add_argument("model", help="a model.pt written by the workflow")
    x.add_argument("--results", nargs="*", help="its clean and AutoAttack result JSONs (default: found in results/)")
    x.add_argument("--threat", help="which threat model's results to take (e.g. linf-8_255)")
    x.add_argument("--out", required=True, help="output folder")
    x.add_argument("--format", default=".pt", choices=[".pt", ".safetensors"])
    pl = sub.add_parser("plan", help="every job of the study with its settings and GPU-hours, before any training")
    pl.add_argument("--table", nargs="*", help="only these tables (default: what rule all builds)")
    pl.add_argument("--config", nargs="*", default=[])
    pl.add_argument("--out", default="results/plan")
    a = p.parse_args(argv)
    try:
        {"evaluate": evaluate, "export": export, "plan": plan}[a.command](a)
    except SpecRobustError as err:
        print(f"specrobust: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
