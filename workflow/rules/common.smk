# Config checks, wildcard constraints, path helpers and input functions shared by every rule.
from snakemake.utils import validate

from specrobust.config import DATASETS, check_config, section, train_section
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
    arch=r"resnet18|preact_resnet18|resnet152|small_cnn|wrn\d+_\d+",
    method=r"[a-z][a-z0-9]*(_[a-z0-9]+)*",
    prefix="|".join(BASES + tuple(ALIASES)),
    seed=r"\d+",
    attack="|".join(config["evaluation"]["attacks"]),
    table="|".join(config["tables"]),


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


def train_inputs(wildcards):
    """The prepared data and, for runs that branch at the first LR decay, the base objective's prefix."""
    inputs = {"data": f"results/data/{wildcards.dataset}.npz"}
    prefix = prefix_of(wildcards.dataset, wildcards.method)
    if prefix:
        inputs["prefix"] = f"results/models/{wildcards.dataset}/{wildcards.arch}/{prefix}/seed{wildcards.seed}/prefix.pt"
    return inputs


def table_models(table):
    """(dataset, arch, method, seed) of every model a table reports."""
    t = config["tables"][table]
    by_ds = t.get("arch_by_dataset") or {}
    return [(d, a, m, s) for d in t["datasets"] for a in ([by_ds[d]] if d in by_ds else t["archs"])
            for m in t["methods"] for s in t["seeds"]]


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
