# Spectral adversarial robustness: raw data -> training -> attack evaluation -> tables, analyses, figures, report.
# `snakemake --cores all results/table2.csv` rebuilds the FR paper's Table 2 (config/config.yaml);
# add `--configfile config/quick.yaml` for the CPU-sized version. See README.md.
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("8.0")
sys.path.insert(0, str(Path(workflow.basedir) / "src"))  # the core, also when it is not pip-installed


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
include: "workflow/rules/report.smk"


rule all:
    input:
        expand("results/{table}.csv", table=config["tables"]),
        "results/sanity.csv",
        "results/paper_comparison.csv",
        "results/summary.html",
        expand("results/ablations/{ablation}.csv", ablation=config.get("ablations") or {}),
    default_target: True
