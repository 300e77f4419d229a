"""One resolved record per job, and the study's jobs and paths, from config and wildcards (pure Python, no torch).

A rule passes its job's record as ``params: job=...``; the script reads it and nothing of the config. A record holds
exactly what the job uses, so Snakemake's params trigger reruns a job when one of those values changes and only
then. Every record is also written beside the job's output (the checkpoint's ``spec``, the result JSON's ``job``,
the first line of the log). The enumerations here (a table's models, the sanity jobs, the analyses, the
ablation points) are what the rules' input functions, the study plan and the command line all use.
"""
from __future__ import annotations

from .config import (UNBOUNDED, bandwidth_step, eps_label, evaluation_eps, label_eps, number, point_name, resolve,
                     split_run, step_size)
from .errors import ConfigError
from .methods import is_natural, parse_method
from .registry import TORCHVISION_WEIGHTS, dataset_info
from .spec import RunSpec

# Paths of the study's files: the rules' patterns and every enumeration below.
DATA = "results/data/{dataset}.npz"
MODEL = "results/models/{dataset}/{arch}/{method}/seed{seed}"
EVAL = "results/eval/{dataset}/{arch}/{method}/seed{seed}/{threat}/{attack}"
SANITY = "results/sanity/{dataset}/{arch}/{method}/seed{seed}/{threat}"
ANALYSIS = "results/analysis/{dataset}/{arch}/{method}/seed{seed}"


def model_dir(d, a, m, s) -> str:
    return MODEL.format(dataset=d, arch=a, method=m, seed=s)


def eval_file(model: tuple, threat: str, attack: str, ext: str = "json") -> str:
    d, a, m, s = model
    return f"{EVAL.format(dataset=d, arch=a, method=m, seed=s, threat=threat, attack=attack)}.{ext}"


def sanity_file(model: tuple, threat: str) -> str:
    d, a, m, s = model
    return f"{SANITY.format(dataset=d, arch=a, method=m, seed=s, threat=threat)}.csv"


def analysis_file(model: tuple, name: str) -> str:
    d, a, m, s = model
    return f"{ANALYSIS.format(dataset=d, arch=a, method=m, seed=s)}/{name}"


def identity(dataset, arch, method, seed) -> dict:
    return {"dataset": dataset, "arch": arch, "method": method, "seed": int(seed)}


# ------------------------------------------------------------------------------------------------- data
def prepare(config: dict, dataset: str) -> dict:
    """Rule prepare_dataset: where the raw data comes from and how it is split (only this data set's path)."""
    d = config["data"]
    rec = {"dataset": dataset, "val_fraction": d["val_fraction"], "split_seed": d["split_seed"],
           **{k: d.get(k) for k in ("train_limit", "val_limit", "test_limit")}}
    path = (d.get("paths") or {}).get(dataset)
    if d.get("synthetic"):
        rec["synthetic"] = dict(d["synthetic"])
    elif dataset == "shapes":
        rec["shapes"] = dict(d.get("shapes") or {})
    elif path:
        rec["path"] = path
    else:
        rec["root"] = d["root"]
    return rec


def downloads(config: dict, dataset: str) -> bool:
    """Whether the local rule download_dataset fetches this data set into data.root (on the login node)."""
    d = config["data"]
    return bool(d.get("download", True)) and not d.get("synthetic") and not (d.get("paths") or {}).get(dataset) \
        and dataset not in ("restricted_imagenet", "shapes")


# ------------------------------------------------------------------------------------------------- training
def run_spec(config: dict, dataset: str, arch: str, method: str, seed) -> RunSpec:
    """The training record of one run; ``method`` may carry an ablation point (``pgd_at_fr/lam~0.05``)."""
    slug, point = split_run(method)
    m = parse_method(slug, "method")
    tr, fr = resolve(config, "train", dataset, method), resolve(config, "fr", dataset, method)
    eps = number(tr["eps"], "train.eps")
    hyper = {k: tr[k] for k in ("trades_beta", "mart_beta", "sk_gamma", "sk_lambda", "sk_scope", "sk_clip",
                                "sk_max_exponent", "grad_clip", "lpf_bandwidth", "awp_gamma", "awp_warmup",
                                "sync_bn") if k in tr}
    return RunSpec(
        dataset=dataset, arch=arch, method=slug, base=m.base, seed=int(seed), epochs=int(tr["epochs"]),
        lr=float(tr["lr"]), milestones=tuple(int(e) for e in tr["milestones"]), momentum=float(tr["momentum"]),
        weight_decay=float(tr["weight_decay"]), batch_size=int(tr["batch_size"]),
        augment=tr.get("augment") or dataset_info(dataset).augment, eps=eps, val_steps=int(tr["val_steps"]),
        val_step_size=step_size(tr["val_step_size"], eps, "train.val_step_size"), precision=tr["precision"],
        point=point, fr=m.fr, swa=m.swa, awp=m.awp, sk=m.sk, adversarial=m.adversarial, steps=int(tr["steps"]),
        step_size=step_size(tr["step_size"], eps, "train.step_size"), bn_mode=tr["bn_mode"],
        val_limit=tr.get("val_limit"), train_limit=tr.get("train_limit"),
        channels_last=str(tr["channels_last"]).lower(), compile=bool(tr["compile"]),
        test_curve_limit=int(tr.get("test_curve_limit", 0)), init=tr.get("init"),
        arch_options=dict((config.get("archs") or {}).get(arch) or {}), processes=int(tr.get("processes", 1)),
        fr_lambda=float(fr["lam"]), fr_distance=fr["distance"], fr_fft=fr["fft"], wa_bn=fr["wa_bn"], **hyper)


def train(config: dict, dataset: str, arch: str, method: str, seed) -> dict:
    return run_spec(config, dataset, arch, method, seed).record()


def prefix_of(config: dict, dataset: str, arch: str, method: str, seed=0) -> str | None:
    """The family whose shared first-decay run (rule train_prefix) ``method`` continues, or None when it trains from
    scratch: branching switched off, no decay, or settings before the decay that differ from the family's."""
    slug, _ = split_run(method)
    family = parse_method(slug).prefix
    if not resolve(config, "train", dataset, method).get("branch_from_prefix", True):
        return None
    spec, base = run_spec(config, dataset, arch, method, seed), run_spec(config, dataset, arch, family, seed)
    return family if spec.milestones and spec.prefix_key() == base.prefix_key() else None


def epochs_of(config: dict, dataset: str, arch: str, method: str, prefix: bool = False) -> int:
    """Epochs one job runs: the prefix up to the first decay, the rest after it, or the whole schedule."""
    spec = run_spec(config, dataset, arch, method, 0)
    if prefix:
        return spec.first_decay
    return spec.epochs - spec.first_decay if prefix_of(config, dataset, arch, method) else spec.epochs


def init_file(config: dict, dataset: str, arch: str, method: str) -> str | None:
    """The local file a run starts from (``train.init``): None, the torchvision weights that rule
    ``pretrained_weights`` downloads into ``data.root``, or the configured checkpoint path."""
    init = resolve(config, "train", dataset, method).get("init")
    if init != "torchvision":
        return init
    if arch not in TORCHVISION_WEIGHTS:
        raise ConfigError(f"train.init = torchvision for {dataset}/{arch}/{method}: torchvision has pretrained "
                          f"weights only for {', '.join(TORCHVISION_WEIGHTS)} here; give a checkpoint path instead")
    return f"{config['data']['root']}/pretrained/{arch}_{TORCHVISION_WEIGHTS[arch].lower()}.pt"


# ------------------------------------------------------------------------------------------------- evaluation
def _evaluation(config: dict, dataset: str) -> dict:
    ev = resolve(config, "evaluation", dataset)
    return {"batch_size": int(ev["batch_size"]), "attack_seed": int(ev["seed"])}


def preset(config: dict, name: str, eps: float | None) -> dict:
    """One ``evaluation.attacks`` preset at a threat model's eps: its type, bound and absolute step."""
    a = config["evaluation"]["attacks"][name]
    kind = a["type"]
    if "eps" in a:                                  # a preset that states its own bound keeps it
        eps = number(a["eps"], f"evaluation.attacks.{name}.eps")
    out = {"attack": name, "type": kind, "norm": "linf", "eps": None if kind == "clean" else eps}
    if kind in ("pgd", "cw"):
        out |= {"steps": int(a.get("steps", 20 if kind == "pgd" else 30)), "restarts": int(a.get("restarts", 1)),
                "random_start": bool(a.get("random_start", True)),
                "step_size": step_size(a.get("step_size", "eps/4"), eps, f"evaluation.attacks.{name}.step_size")}
    elif kind == "fgsm":
        out["step_size"] = eps
    elif kind == "autoattack":
        out["version"] = a.get("version", "standard")
    elif kind != "clean":                           # minimal-perturbation searches: their own options
        out["options"] = {k: v for k, v in a.items() if k not in ("type", "eps", "n_test")}
    return out


def evaluate(config: dict, dataset: str, arch: str, method: str, seed, threat: str, attack: str) -> dict:
    """Rule evaluate: one model under one attack preset at the threat model named in its path."""
    a = config["evaluation"]["attacks"][attack]
    n_test = a.get("n_test", resolve(config, "evaluation", dataset).get("n_test"))
    return {**identity(dataset, arch, method, seed), "threat": threat, **preset(config, attack, label_eps(threat)),
            "n_test": n_test, **_evaluation(config, dataset)}


def sanity(config: dict, dataset: str, arch: str, method: str, seed, threat: str) -> dict:
    """Rule sanity: every check at the eps of the evaluation it guards (``threat``), each PGD's step eps/4."""
    s = config["sanity"]
    keys = ("n_test", "tolerance", "noise_tolerance", "eps_grid", "steps", "restarts", "square_queries",
            "crosscheck_tolerance", "natural_max_pgd", "max_class_share", "compare")
    aa = [c for c in s["compare"] if config["evaluation"]["attacks"][c]["type"] == "autoattack"]
    return {**identity(dataset, arch, method, seed), "threat": threat, "eps": label_eps(threat),
            "step_fraction": 0.25, **{k: s[k] for k in keys}, "autoattack": aa[0] if aa else None,
            "natural": is_natural(split_run(method)[0]), **_evaluation(config, dataset)}


# ------------------------------------------------------------------------------------------------- tables
def table_models(config: dict, table: str) -> list[tuple]:
    """(dataset, arch, method, seed) of every model a table reports, in row order."""
    t = config["tables"][table]
    by_ds, methods = t.get("arch_by_dataset") or {}, t.get("methods_by_dataset") or {}
    return [(d, a, m, s) for d in t["datasets"] for a in ([by_ds[d]] if d in by_ds else t["archs"])
            for m in methods.get(d, t["methods"]) for s in t["seeds"]]


def table_threat(config: dict, table: str, dataset: str) -> str:
    return eps_label(evaluation_eps(config, dataset, table))


def sanity_threat(config: dict, dataset: str, table: str | None = None) -> str:
    """The eps the sanity checks of a table's model run at: the table's, or the data set's when the table's threat
    model is unbounded (a fixed-eps check needs an eps)."""
    eps = evaluation_eps(config, dataset, table)
    if eps is None:
        eps = evaluation_eps(config, dataset)
    if eps is None:
        raise ConfigError(f"evaluation.eps.{dataset} is {UNBOUNDED}; the sanity checks of {dataset} need an eps")
    return eps_label(eps)


def table_results(config: dict, table: str) -> list[tuple]:
    """(model, threat, attack) of every evaluation a table reads: its models x its columns."""
    return [((d, a, m, s), table_threat(config, table, d), c) for d, a, m, s in table_models(config, table)
            for c in config["tables"][table]["columns"]]


def table_sanity(config: dict, table: str) -> list[tuple]:
    return [((d, a, m, s), sanity_threat(config, d, table)) for d, a, m, s in table_models(config, table)]


def table(config: dict, name: str) -> dict:
    """Rule table: its title, columns, rows and the baseline each FR row is paired with."""
    t = config["tables"][name]
    rows = list(dict.fromkeys((d, a, m) for d, a, m, _ in table_models(config, name)))
    return {"table": name, "title": t["title"], "columns": list(t["columns"]), "rows": [list(r) for r in rows],
            "kernels": bool(t.get("kernels")),
            "baselines": {f"{d}/{a}/{m}": baseline for d, a, m in rows
                          if (baseline := baseline_of(m)) and (d, a, baseline) in rows}}


def baseline_of(method: str) -> str | None:
    """The run a method's paired comparison is against: FR and FR/WA against their base (the prefix family)."""
    m = parse_method(method)
    return m.prefix if m.fr != "none" else None


def sanity_models(config: dict) -> list[tuple]:
    """(model, threat) of results/sanity.csv: the models of ``sanity.tables`` and, as the reference that attacks work
    at all, a naturally trained model per data set and arch (first seed)."""
    out = [x for t in config["sanity"]["tables"] for x in table_sanity(config, t)]
    if config["sanity"]["include_natural"]:
        first = {(d, a): (s, th) for (d, a, _, s), th in reversed(out)}
        out += [((d, a, "natural", s), th) for (d, a), (s, th) in first.items()]
    return list(dict.fromkeys(out))


# ------------------------------------------------------------------------------------------------- analyses
def spectral(config: dict, dataset: str, arch: str, method: str, seed) -> dict:
    """Rule spectral: Table 1 / Figures 1-3 of one model; its PGD-20 is the tables' preset at the data set's eps."""
    an = config["analysis"]
    return {**identity(dataset, arch, method, seed), **preset(config, an["attack"], evaluation_eps(config, dataset)),
            "n_test": an["n_test"], "spectrum_n_test": an["spectrum_n_test"],
            "bandwidth_step": bandwidth_step(config, dataset), "figure1_bandwidth": an["figure1_bandwidth"],
            **_evaluation(config, dataset)}


def heatmap(config: dict, dataset: str, arch: str, method: str, seed) -> dict:
    hm = config["analysis"]["heatmap"]
    return {**identity(dataset, arch, method, seed), **{k: hm[k] for k in ("v", "n_test", "stride")},
            **_evaluation(config, dataset)}


def eps_curve(config: dict, dataset: str, arch: str, method: str, seed) -> dict:
    """Rule eps_curve: PGD-20 (step eps/4) at multiples of the data set's evaluation eps."""
    an = config["analysis"]
    eps = evaluation_eps(config, dataset)
    if eps is None:
        raise ConfigError(f"analysis.curves: the accuracy-against-eps curve of {dataset} needs a bounded "
                          f"evaluation.eps.{dataset}")
    return {**identity(dataset, arch, method, seed), "eps": eps, "multiples": list(an["eps_multiples"]),
            "steps": 20, "step_fraction": 0.25, "n_test": an["eps_n_test"], **_evaluation(config, dataset)}


LPF_TABLES = {
    "table1": ("datasets", "methods", "FR paper, Table 1: accuracy (%) on low-pass filtered inputs, and under PGD-20"),
    "aaai_table1": ("aaai_datasets", "aaai_methods",
                    "Workshop paper, Table 1: clean and PGD-20 accuracy (%) after low-pass filtering"),
}


def lpf_models(config: dict, name: str) -> list[tuple]:
    """The models of FR Table 1 or the workshop's Table 1: the analysis section's data sets x methods."""
    datasets, methods, _ = LPF_TABLES[name]
    an = config["analysis"]
    return [m for d in an[datasets] for m in analysis_models(config, d, an[methods])]


def analysis_models(config: dict, dataset: str, methods) -> list[tuple]:
    an = config["analysis"]
    return [(dataset, an["arch"], m, an["seed"]) for m in methods]


def first_seed_models(config: dict, table: str) -> list[tuple]:
    seed = config["tables"][table]["seeds"][0]
    return list(dict.fromkeys((d, a, m, seed) for d, a, m, _ in table_models(config, table)))


# ------------------------------------------------------------------------------------------------- ablations
def ablation_points(config: dict, name: str) -> list[tuple]:
    """FR paper Figure 6: one run per value, ``<method>/<param>~<value>``, branching from the shared prefix."""
    a = config["ablations"][name]
    return [(a["dataset"], a["arch"], f"{a['method']}/{point_name(a['param'], v)}", a["seed"]) for v in a["values"]]


def ablation(config: dict, name: str) -> dict:
    a = config["ablations"][name]
    return {"ablation": name, **{k: a[k] for k in ("title", "dataset", "arch", "method", "baseline", "param",
                                                   "values", "columns")},
            "threat": eps_label(evaluation_eps(config, a["dataset"]))}


def external_models(config: dict) -> list[tuple]:
    return [(e["dataset"], e["arch"], f"external_{name}", 0) for name, e in (config.get("external") or {}).items()]


def external_results(config: dict) -> list[tuple]:
    """Each external checkpoint under the columns of its table (``external.<name>.table``, default table2), at that
    table's threat model of its data set."""
    out = []
    for (d, a, m, s), e in zip(external_models(config), (config.get("external") or {}).values()):
        t = e.get("table", "table2")
        out += [((d, a, m, s), table_threat(config, t, d), c) for c in config["tables"][t]["columns"]]
    return out


def external_path(config: dict, name: str) -> str:
    """The checkpoint file of ``external.<name>``: its path, or for ``robustbench:<model>`` the file in a local
    RobustBench models folder, ``<data.root>/robustbench/<dataset>/Linf/<model>.pt`` (no hub download)."""
    e = config["external"][name]
    if e["path"].startswith("robustbench:"):
        return f"{config['data']['root']}/robustbench/{e['dataset']}/Linf/{e['path'].split(':', 1)[1]}.pt"
    return e["path"]


def external(config: dict, name: str) -> dict:
    """Rule import_external: a user's checkpoint, its arch and the normalization it expects (none by default)."""
    e = config["external"][name]
    return {"name": name, "dataset": e["dataset"], "arch": e["arch"], "mean": e.get("mean"), "std": e.get("std"),
            "arch_options": dict((config.get("archs") or {}).get(e["arch"]) or {})}


# ------------------------------------------------------------------------------------------------- smooth kernels
def sk_label(method: str) -> str:
    """The smooth-kernel paper's name of a method: sk_vr -> VR."""
    return method.removeprefix("sk_").upper() if method.startswith("sk_") else method


def sk_datasets(config: dict, figure: str) -> list[str]:
    """The data sets of one of the paper's figures (``smooth_kernels.<figure>``): its own list, else its table's."""
    f = config["smooth_kernels"][figure]
    return list(f.get("datasets") or config["tables"][f["table"]]["datasets"])


def sk_models(config: dict, figure: str, dataset: str) -> list[tuple]:
    """The models of one figure on one data set: its table's rows there (first seed)."""
    t = config["smooth_kernels"][figure]["table"]
    return [m for m in first_seed_models(config, t) if m[0] == dataset]


def sk_figure(config: dict, figure: str, dataset: str) -> dict:
    """Record of a figure rule: its settings, the data set's class names and the models' paper labels."""
    from .registry import CLASS_NAMES, MINIMAL_ATTACKS

    f = config["smooth_kernels"][figure]
    models = sk_models(config, figure, dataset)
    rec = {"figure": figure, "dataset": dataset, **{k: v for k, v in f.items() if k not in ("table", "datasets")},
           "labels": [sk_label(m) for _, _, m, _ in models], "methods": [m for _, _, m, _ in models],
           "arch": models[0][1] if models else None,
           "class_names": list(CLASS_NAMES.get(dataset, [str(c) for c in range(dataset_info(dataset).num_classes)]))}
    if figure == "distance_curves":  # the table's minimal-perturbation columns, whose evaluations store distances
        columns = config["tables"][f["table"]]["columns"]
        rec["attacks"] = [c for c in columns if config["evaluation"]["attacks"][c]["type"] in MINIMAL_ATTACKS]
        rec["threat"] = sk_distance_threat(config, dataset)
    return rec


def sk_model_job(config: dict, figure: str, dataset: str, arch: str, method: str, seed) -> dict:
    """Record of a per-model job of the paper's figures (minimal FGSM, class images, targeted grid)."""
    f = config["smooth_kernels"][figure]
    return {**identity(dataset, arch, method, seed), "figure": figure,
            **{k: v for k, v in f.items() if k not in ("table", "datasets")}, **_evaluation(config, dataset)}


def sk_inputs(config: dict, figure: str, dataset: str, name: str | None = None) -> list[str]:
    """The model files of a figure on a data set, or one per-model analysis file of each (``name``)."""
    models = sk_models(config, figure, dataset)
    return [f"{model_dir(*m)}/model.pt" if name is None else analysis_file(m, name) for m in models]


def export_targets(config: dict) -> list[str]:
    return [f"{EXPORT.format(dataset=d, arch=a, method=m, seed=s, threat=th)}/model_info.json"
            for (d, a, m, s), th in exports(config)]


def sk_distance_threat(config: dict, dataset: str) -> str:
    return table_threat(config, config["smooth_kernels"]["distance_curves"]["table"], dataset)


def sk_targets(config: dict) -> list[str]:
    """Every figure file of the smooth-kernel paper's Section 4 and appendices (rule all)."""
    sk = config.get("smooth_kernels") or {}
    out = []
    if "figure1" in sk:
        out.append("results/figures/sk_figure1.png")
    if "figure2" in sk:
        out += [f"results/figures/sk_figure2_{d}.png" for d in sk_datasets(config, "figure2")]
    if "class_images" in sk:
        out += [f"results/figures/sk_class_images_{d}.png" for d in sk_datasets(config, "class_images")]
    if "distance_curves" in sk:
        out += [f"results/figures/sk_distance_curves_{d}_{n}.png" for d in sk_datasets(config, "distance_curves")
                for n in ("l0", "l2", "linf")]
    if "targeted" in sk:
        out += [f"results/figures/sk_targeted_{d}_{m}.png" for d in sk_datasets(config, "targeted")
                for _, _, m, _ in sk_models(config, "targeted", d)]
    return out


# ------------------------------------------------------------------------------------------------- export
EXPORT = "results/export/{dataset}/{arch}/{method}/seed{seed}/{threat}"


def export_attacks(config: dict, columns) -> tuple[str, str] | None:
    """The clean and the AutoAttack column among ``columns`` (what a RobustBench model_info reports), if both."""
    kinds = {config["evaluation"]["attacks"][c]["type"]: c for c in reversed(list(columns))}
    return (kinds["clean"], kinds["autoattack"]) if {"clean", "autoattack"} <= set(kinds) else None


def exports(config: dict) -> list[tuple]:
    """(model, threat) of every table model scored by clean accuracy and AutoAttack: each gets a RobustBench-style
    model_info JSON and its weights (rule export_model)."""
    out = []
    for t, spec in config["tables"].items():
        if export_attacks(config, spec["columns"]):
            out += [(m, table_threat(config, t, m[0])) for m in table_models(config, t)]
    return list(dict.fromkeys(out))


def export(config: dict, dataset: str, arch: str, method: str, seed, threat: str) -> dict:
    clean, aa = export_attacks(config, config["evaluation"]["attacks"])
    return {**identity(dataset, arch, method, seed), "threat": threat, "clean": clean, "autoattack": aa}


# ------------------------------------------------------------------------------------------------- grouping
def model_evaluations(config: dict, model: tuple, threat: str) -> tuple[list[str], bool]:
    """The attacks the study runs on one model at one threat model, and whether its sanity checks run there: the
    jobs that rule ``evaluations`` ties into one cluster submission (one GPU allocation per model and eps)."""
    key = id(config)
    if _STUDY.get("key") != key:   # the workflow asks once per job; the config does not change during a run
        from .plan import study

        s = study(config)
        by_model = {}
        for m, th, a in s["evaluations"]:
            by_model.setdefault((m, th), []).append(a)
        _STUDY.update(key=key, config=config, by_model=by_model, sanity=set(s["sanity"]))
    return _STUDY["by_model"].get((model, threat), []), (model, threat) in _STUDY["sanity"]


_STUDY: dict = {}   # the last config's study, kept with the config so its id stays unique


def group_name(model: tuple, threat: str) -> str:
    """The cluster group of a model's evaluations at one threat model (no '/' or '~': group ids name log files)."""
    d, a, m, s = model
    return "eval-" + "-".join([d, a, m.replace("/", "-").replace("~", "_"), f"seed{s}", threat])
