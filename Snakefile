# Spectral adversarial robustness: raw data -> training -> attack evaluation -> tables, analyses, figures, report.
# `snakemake --cores all results/table2.csv` rebuilds the FR paper's Table 2 (config/config.yaml); add
# `--configfile config/quick.yaml` for the CPU-sized version. See README.md.
import os
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.27.1")  # = the snakemake pin of pyproject.toml (tests/test_envs.py)
# The core, from this workflow's own src/, in this process and in every rule script (also in conda envs and on
# cluster nodes, where the package is not installed).
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
os.environ["PYTHONPATH"] = os.pathsep.join([SRC] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])


envvars:
    "PYTHONPATH",


configfile: "config/config.yaml"


# On a cluster, the evaluations of one model share one submission (rule evaluations' group); eval_slot=1 per group
# (profiles/slurm) runs them one after the other on its one GPU.
resource_scopes:
    eval_slot="local",


# Sites that prefer Apptainer: build workflow/containers/specrobust.def and pass its image as config key container.
container: config.get("container") or None


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    dataset="|".join(DATASETS),
    arch=ARCH_PATTERN,
    method=rf"{METHOD_PATTERN}(/{POINT_PATTERN})?",  # a method slug, or an ablation point of one
    prefix="|".join(FAMILIES),
    seed=r"\d+",
    threat=THREAT_PATTERN,
    attack="|".join(config["evaluation"]["attacks"]),
    table="|".join(config["tables"]),
    ablation="|".join(config.get("ablations") or {}) or "none",


include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/sanity.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/external.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/ablations.smk"
include: "workflow/rules/smooth_kernels.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        expand("results/{table}.csv", table=config["tables"]),
        "results/sanity.csv",
        "results/paper_comparison.csv",
        "results/summary.html",
        expand("results/ablations/{ablation}.csv", ablation=ABL),
        jobs.sk_targets(config),
        jobs.export_targets(config),
