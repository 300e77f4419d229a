# The study in one place: published numbers against ours, and a papermill-executed summary notebook (+ HTML).
# `snakemake --report results/report.html` (after a build) links every table and figure with its caption.


rule paper_comparison:
    input:
        tables=[f"results/{t}.csv" for t in compared_tables()],
        reference="reference/paper_numbers.csv",
    output:
        csv=report("results/paper_comparison.csv", category="0. Overview", caption="../report/comparison.rst"),
        md="results/paper_comparison.md",
    log:
        "results/logs/paper_comparison.log",
    params:
        papers=list(compared_tables().values()),
        names=list(compared_tables()),
        scale=config.get("scale", "paper"),
        eps=lpf_table_eps(),
    conda:
        ANALYSIS_ENV
    script:
        "../scripts/paper_comparison.py"


rule summary:
    input:
        tables=expand("results/{table}.md", table=list(config["tables"]) + ["table1", "aaai_table1", "sanity",
                                                                          "paper_comparison"]),
        kernels="results/kernels.csv",
        figures=figure_targets() + [f"results/figures/figure6_{a}.png" for a in ABL],
        ablations=expand("results/ablations/{ablation}.md", ablation=ABL),
        notebook="workflow/notebooks/summary.ipynb",
    output:
        notebook="results/summary.ipynb",
        html=report("results/summary.html", category="0. Overview", caption="../report/summary.rst"),
    log:
        "results/logs/summary.log",
    params:
        scale=config.get("scale", "paper"),
    conda:
        ANALYSIS_ENV
    script:
        "../scripts/summary.py"
