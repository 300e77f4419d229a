# Config checks, wildcard constraints, path helpers and input functions shared by every rule.
from snakemake.utils import validate

from specrobust.config import (DATASETS, bandwidth_step, check_config, evaluation_section, init_file, number,
                               point_name, section, train_section, with_point)
from specrobust.errors import ConfigError
from specrobust.methods import ALIASES, BASES, parse_method

SCHEMA = str(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
ENV = "../../envs/torch.yaml"  # data, training, attacks, sanity checks
ANALYSIS_ENV = "../../envs/analysis.yaml"  # tables and reports

try:  # one clear line naming the offending key, before any job starts
    check_config(config, SCHEMA)
except ConfigError as err:
    sys.exit(f"Config error: {err}")
validate(config, SCHEMA)


wildcard_constraints:
    dataset="|".join(DATASETS),
    arch=r"resnet18|preact_resnet18|resnet50|resnet152|small_cnn|wrn\d+_\d+",
    method=r"[a-z][a-z0-9]*(_[a-z0-9]+)*",
    prefix="|".join(BASES + tuple(ALIASES)),
    seed=r"\d+",
    attack="|".join(config["evaluation"]["attacks"]),
    table="|".join(config["tables"]),
    point=r"lam~[0-9]+(\.[0-9]+)?|distance~(l1|l2|cosine)|fft~(batch2d|per_sample)",  # an ablation point
    ablation="|".join(config.get("ablations") or {}) or "none",


RES = config.get("resources") or {}


def threads_for(rule):
    return RES.get(rule, {}).get("threads", 4)


def per_arch(rule, key, arch, fallback):
    table = RES.get(rule, {}).get(key, {})
    return table.get(arch, table.get("default", fallback))


def scale(dataset):
    return (RES.get("dataset_scale") or {}).get(dataset, 1.0) * RES.get("safety", 1.5)


def gpus(rule):
    """GPUs per job: none when training runs on the CPU (config train.device)."""
    return 0 if config["train"]["device"] == "cpu" else RES.get(rule, {}).get("gpu", 1)


def prefix_of(dataset, method):
    """The prefix slug a `train` job continues, or None when it trains from scratch (branching switched off, no
    decay, or a method whose own train.* overrides differ from its prefix's)."""
    tr = train_section(config, dataset, method)
    prefix = parse_method(method, "method wildcard").prefix
    if tr.get("branch_from_prefix", True) and tr["milestones"] and tr == train_section(config, dataset, prefix):
        return prefix
    return None


def train_epochs(wildcards, prefix):
    """Epochs one job runs: the prefix up to the first decay, the rest of the schedule after it, or all of it."""
    tr = train_section(config, wildcards.dataset, wildcards.prefix if prefix else wildcards.method)
    first = tr["milestones"][0] if tr["milestones"] else tr["epochs"]
    if prefix:
        return first
    return tr["epochs"] - first if prefix_of(wildcards.dataset, wildcards.method) else tr["epochs"]


def train_runtime(prefix):
    return lambda w: max(5, int(train_epochs(w, prefix) * per_arch("train", "minutes_per_epoch", w.arch, 8.0)
                                * scale(w.dataset)))


def train_mem(w):
    return int(per_arch("train", "mem_mb", w.arch, 32000) * max(1.0, (RES.get("dataset_scale") or {}).get(w.dataset, 1)))


def eval_runtime(w):
    return max(5, int(per_arch("evaluate", "minutes", w.arch, 240) * scale(w.dataset)))


def eval_mem(w):
    return int(per_arch("evaluate", "mem_mb", w.arch, 32000))


def attack_n_test(w):
    """Test images an attack runs on: its own n_test, else evaluation.n_test (data set / method overrides first)."""
    n_test = evaluation_section(config, w.dataset, w.method).get("n_test")
    return config["evaluation"]["attacks"][w.attack].get("n_test", n_test)


def attack_config(w, name=None):
    """The entry of attack ``name`` (default: the job's); when it sets no eps (and is bounded), evaluation.eps of
    the data set / method, so an attack has one eps in every table and analysis of a model."""
    attack = config["evaluation"]["attacks"][name or w.attack]
    eps = evaluation_section(config, w.dataset, w.method).get("eps")
    if eps is None or "eps" in attack or attack.get("unbounded"):
        return attack
    return {**attack, "eps": eps}


def start_inputs(wildcards, method):
    """What a run that starts from scratch reads: the prepared data and its pretrained weights (train.init), if any."""
    inputs = {"data": f"results/data/{wildcards.dataset}.npz"}
    init = init_file(config, wildcards.dataset, wildcards.arch, method)
    if init:
        inputs["init"] = init
    return inputs


def train_inputs(wildcards):
    """A start from scratch, or, for runs that branch at the first LR decay, the data and the base objective's
    prefix."""
    prefix = prefix_of(wildcards.dataset, wildcards.method)
    if not prefix:
        return start_inputs(wildcards, wildcards.method)
    return {"data": f"results/data/{wildcards.dataset}.npz", "prefix": prefix_file(wildcards, prefix)}


def prefix_file(wildcards, prefix):
    """The shared first-decay checkpoint (rule train_prefix) that runs of ``prefix`` branch from."""
    return f"results/models/{wildcards.dataset}/{wildcards.arch}/{prefix}/seed{wildcards.seed}/prefix.pt"


def table_models(table):
    """(dataset, arch, method, seed) of every model a table reports."""
    t = config["tables"][table]
    by_ds, methods = t.get("arch_by_dataset") or {}, t.get("methods_by_dataset") or {}
    return [(d, a, m, s) for d in t["datasets"] for a in ([by_ds[d]] if d in by_ds else t["archs"])
            for m in methods.get(d, t["methods"]) for s in t["seeds"]]


def eval_results(models, attacks):
    return [f"results/eval/{d}/{a}/{m}/seed{s}/{attack}.json" for d, a, m, s in models for attack in attacks]


def table_results(table):
    """Every evaluation result a table needs: its models x its columns."""
    return eval_results(table_models(table), config["tables"][table]["columns"])


def table_rows(table):
    return list(dict.fromkeys((d, a, m) for d, a, m, _ in table_models(table)))


def sanity_of(models):
    return [f"results/sanity/{d}/{a}/{m}/seed{s}.csv" for d, a, m, s in models]


def sanity_inputs():
    """The models of the tables in sanity.tables and, as the reference that attacks work at all, a naturally
    trained model per data set and arch (first seed)."""
    models = list(dict.fromkeys(m for t in config["sanity"]["tables"] for m in table_models(t)))
    if config["sanity"]["include_natural"]:
        first = {(d, a): s for d, a, _, s in reversed(models)}
        models += [(d, a, "natural", s) for (d, a), s in first.items()]
    return sanity_of(list(dict.fromkeys(models)))


def external_models():
    return [(e["dataset"], e["arch"], f"external_{name}", 0) for name, e in (config.get("external") or {}).items()]


def external_results():
    return eval_results(external_models(), config["tables"]["table2"]["columns"])


# ---- analysis.smk: paths and inputs of the frequency analyses
AN = config["analysis"]
MODEL_DIR = "results/models/{dataset}/{arch}/{method}/seed{seed}"
ANALYSIS_DIR = "results/analysis/{dataset}/{arch}/{method}/seed{seed}"
FIGURE_KINDS = "figure1|figure2|figure3|figure4|kernels"


def analysis_file(dataset, method, name):
    return f"results/analysis/{dataset}/{AN['arch']}/{method}/seed{AN['seed']}/{name}"


def figure(stem):
    return multiext(f"results/figures/{stem}", ".png", ".pdf")


def figure_targets():
    """Every figure the analysis section asks for (the report links them all)."""
    per_dataset = [f"results/figures/{k}_{d}.png" for d in AN["datasets"] for k in FIGURE_KINDS.split("|")]
    per_table = [f"results/figures/{k}_{t}.png" for t in AN["curves"] for k in ("training_curves", "eps_curves")]
    return per_dataset + per_table


def first_seed_models(table):
    return list(dict.fromkeys((d, a, m, config["tables"][table]["seeds"][0]) for d, a, m, _ in table_models(table)))


# ---- ablations.smk: the points of each ablation
ABL = config.get("ablations") or {}
POINT_DIR = "results/ablations/{dataset}/{arch}/{method}/{point}/seed{seed}"


def ablation_points(name):
    a = ABL[name]
    return [f"results/ablations/{a['dataset']}/{a['arch']}/{a['method']}/{point_name(a['param'], v)}/seed{a['seed']}"
            for v in a["values"]]


def ablation_baseline(name):
    a = ABL[name]
    return f"results/models/{a['dataset']}/{a['arch']}/{a['baseline']}/seed{a['seed']}"


def ablation_inputs(name):
    a, base = ABL[name], ablation_baseline(name)
    evals = [f"{base.replace('results/models', 'results/eval')}/{c}.json" for c in a["columns"]]
    return {"baseline": evals, "baseline_metrics": f"{base}/metrics.csv",
            "points": [f"{p}/eval/{c}.json" for p in ablation_points(name) for c in a["columns"]],
            "metrics": [f"{p}/metrics.csv" for p in ablation_points(name)]}


# ---- report.smk: what the paper comparison joins
def compared_tables():
    """Our tables that name a published table, plus the two low-pass tables."""
    named = {t: c["paper"] for t, c in config["tables"].items() if c.get("paper")}
    return named | {"table1": {"source": "001", "table": "Table 1"},
                    "aaai_table1": {"source": "000", "table": "Table 1"}}


def lpf_table_eps():
    """Data set -> eps of the LPF tables' PGD-20, which have no eps column (every other table states its rows')."""
    datasets = set(AN["datasets"]) | set(AN["aaai_datasets"])
    return {d: number(evaluation_section(config, d).get("eps") or train_section(config, d)["eps"])
            for d in sorted(datasets)}
