# Spectral adversarial robustness: raw data -> training -> attack evaluation -> tables, analyses, figures, report.
# `snakemake --cores all results/table2.csv` rebuilds the FR paper's Table 2 (config/config.yaml); add
# `--configfile config/quick.yaml` for the CPU-sized version. See README.md.
import os
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")
# The core, from this workflow's own src/, in this process and in every rule script (also in conda envs and on
# cluster nodes, where the package is not installed).
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
os.environ["PYTHONPATH"] = os.pathsep.join([SRC] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
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
    input:
        expand("results/{table}.csv", table=config["tables"]),
        "results/sanity.csv",
        "results/paper_comparison.csv",
        "results/summary.html",
        expand("results/ablations/{ablation}.csv", ablation=ABL),
        jobs.sk_targets(config),
    default_target: True
