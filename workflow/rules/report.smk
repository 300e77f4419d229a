# The study in one place: published numbers against ours, and a papermill-executed summary notebook (+ HTML).
# `snakemake --report results/report.html` (after a build) links every table and figure with its caption.


rule paper_comparison:
    input:
        tables=[f"results/{t}.csv" for t in compared_tables()],
        reference=str(Path(workflow.basedir) / "reference/paper_numbers.csv"),
    output:
        csv=report("results/paper_comparison.csv", category="0. Overview", caption="../report/comparison.rst"),
        md="results/paper_comparison.md",
    log:
        "results/logs/paper_comparison.log",
    localrule: True
    conda:
        ANALYSIS_ENV
    params:
        job={
            "names": list(compared_tables()),
            "papers": list(compared_tables().values()),
            "scale": config.get("scale", "paper"),
        },
    script:
        "../scripts/paper_comparison.py"


rule summary:
    input:
        tables=expand(
            "results/{table}.md",
            table=list(config["tables"]) + ["table1", "aaai_table1", "sanity", "paper_comparison"],
        ),
        kernels="results/kernels.csv",
        figures=figure_targets() + [f"results/figures/figure6_{a}.png" for a in ABL],
        ablations=expand("results/ablations/{ablation}.md", ablation=ABL),
        notebook=str(Path(workflow.basedir) / "workflow/notebooks/summary.ipynb"),
    output:
        notebook="results/summary.ipynb",
        html=report("results/summary.html", category="0. Overview", caption="../report/summary.rst"),
    log:
        "results/logs/summary.log",
    localrule: True
    conda:
        ANALYSIS_ENV
    params:
        job={"scale": config.get("scale", "paper")},
    script:
        "../scripts/summary.py"


rule plan:
    # Every training and evaluation job of plan.tables (default: what rule all builds) with its settings and
    # GPU-hours; needs no input, so it trains nothing. results/plan_<table>.md: one table's jobs.
    output:
        csv="results/plan.csv",
        md="results/plan.md",
    log:
        "results/logs/plan.log",
    localrule: True
    conda:
        ANALYSIS_ENV
    params:
        job=lambda w: plan_job("rule all", None),
    script:
        "../scripts/plan.py"


rule table_plan:
    output:
        csv="results/plan_{table}.csv",
        md="results/plan_{table}.md",
    log:
        "results/logs/plan_{table}.log",
    localrule: True
    conda:
        ANALYSIS_ENV
    params:
        job=lambda w: plan_job(w.table, [w.table]),
    script:
        "../scripts/plan.py"
