# A table: its models x its columns at each data set's threat model, with sanity checks and paired comparisons.


rule table:
    input:
        results=lambda w: [eval_file(m, th, c) for m, th, c in jobs.table_results(config, w.table)],
        per_example=lambda w: [eval_file(m, th, c, "npz") for m, th, c in jobs.table_results(config, w.table)],
        sanity=lambda w: [sanity_file(m, th) for m, th in jobs.table_sanity(config, w.table)],
        kernels=lambda w: (
            [analysis_file(m, "kernels.json") for m in jobs.first_seed_models(config, w.table)]
            if config["tables"][w.table].get("kernels")
            else []
        ),
    output:
        csv=report(
            "results/{table}.csv",
            category="3. Tables",
            labels={"table": "{table}"},
            caption="../report/table.rst",
        ),
        md="results/{table}.md",
    log:
        "results/logs/{table}.log",
    params:
        job=lambda w: jobs.table(config, w.table),
    localrule: True
    conda:
        ANALYSIS_ENV
    script:
        "../scripts/table.py"


rule kernel_stats:
    # the smoothness of a model's first-layer kernels (smooth-kernel paper): adjacent-difference roughness and
    # high-frequency energy share, for the tables with `kernels: true`
    input:
        jobs.MODEL + "/model.pt",
    output:
        jobs.ANALYSIS + "/kernels.json",
    log:
        jobs.ANALYSIS + "/kernels.log",
    params:
        job=lambda w: {"dataset": w.dataset, "arch": w.arch, "method": w.method, "seed": int(w.seed)},
    localrule: True
    conda:
        ENV
    script:
        "../scripts/kernel_stats.py"
