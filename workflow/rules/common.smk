# Config checks, wildcard constraints, path helpers and input functions shared by every rule.
from snakemake.utils import validate

from specrobust.config import DATASETS, check_config, train_section
from specrobust.errors import ConfigError
from specrobust.methods import BASES, parse_method

SCHEMA = str(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
ENV = "../../envs/torch.yaml"

try:  # one clear line naming the offending key, before any job starts
    check_config(config, SCHEMA)
except ConfigError as err:
    sys.exit(f"Config error: {err}")
validate(config, SCHEMA)


wildcard_constraints:
    dataset="|".join(DATASETS),
    arch=r"resnet18|preact_resnet18|resnet152|small_cnn|wrn\d+_\d+",
    method=r"[a-z][a-z0-9]*(_[a-z0-9]+)*",
    base="|".join(BASES),
    seed=r"\d+",
    attack="|".join(config["evaluation"]["attacks"]),


def threads_for(rule):
    return config.get("resources", {}).get(rule, {}).get("threads", 4)


def train_inputs(wildcards):
    """The prepared data and, for runs that branch at the first LR decay, the base objective's prefix."""
    inputs = {"data": f"results/data/{wildcards.dataset}.npz"}
    method = parse_method(wildcards.method, "method wildcard")
    tr = train_section(config, wildcards.dataset)
    if tr.get("branch_from_prefix", True) and tr["milestones"]:
        inputs["prefix"] = (f"results/models/{wildcards.dataset}/{wildcards.arch}/{method.base}/"
                            f"seed{wildcards.seed}/prefix.pt")
    return inputs


def table_results(table):
    """Every evaluation result a table needs: datasets x methods x seeds x columns."""
    t = config[table]
    return expand("results/eval/{dataset}/{arch}/{method}/seed{seed}/{attack}.json", dataset=t["datasets"], arch=t["arch"], method=t["methods"],
                  seed=t["seeds"], attack=t["columns"])


def table_rows(table):
    t = config[table]
    return [[d, t["arch"], m] for d in t["datasets"] for m in t["methods"]]
