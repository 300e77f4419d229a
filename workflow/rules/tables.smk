# A table: its models x its columns at each data set's threat model, with sanity checks and paired comparisons.


rule table:
    input:
        results=lambda w: [jobs.eval_file(m, th, c) for m, th, c in jobs.table_results(config, w.table)],
        per_example=lambda w: [jobs.eval_file(m, th, c, "npz") for m, th, c in jobs.table_results(config, w.table)],
        sanity=lambda w: [jobs.sanity_file(m, th) for m, th in jobs.table_sanity(config, w.table)],
        evaluations=lambda w: list(
            dict.fromkeys(
                jobs.eval_file(m, th, "evaluations", "tsv") for m, th, _ in jobs.table_results(config, w.table)
            )
        ),
        kernels=lambda w: (
            [jobs.analysis_file(m, "kernels.json") for m in jobs.first_seed_models(config, w.table)]
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
    localrule: True
    conda:
        ANALYSIS_ENV
    params:
        job=lambda w: jobs.table(config, w.table),
    script:
        "../scripts/table.py"


rule kernel_stats:
    # the smoothness of a model's first-layer kernels (smooth-kernel paper): adjacent-difference roughness and
    # high-frequency energy share, for the tables with `kernels: true`
    input:
        f"{jobs.MODEL}/model.pt",
    output:
        f"{jobs.ANALYSIS}/kernels.json",
    log:
        f"{jobs.ANALYSIS}/kernels.log",
    localrule: True
    conda:
        ENV
    params:
        job=lambda w: {"dataset": w.dataset, "arch": w.arch, "method": w.method, "seed": int(w.seed)},
    script:
        "../scripts/kernel_stats.py"


rule export_model:
    # RobustBench's model_info JSON (clean and AutoAttack accuracy, eps, architecture, ...) and the network's
    # weights under RobustBench's names (docs/results.md, "Export")
    input:
        model=f"{jobs.MODEL}/model.pt",
        results=lambda w: [
            jobs.eval_file((w.dataset, w.arch, w.method, w.seed), w.threat, a)
            for a in jobs.export_attacks(config, config["evaluation"]["attacks"])
        ],
        clean=lambda w: jobs.eval_file(
            (w.dataset, w.arch, w.method, w.seed),
            w.threat,
            jobs.export_attacks(config, config["evaluation"]["attacks"])[0],
            "npz",
        ),
    output:
        json=f"{jobs.EXPORT}/model_info.json",
        weights=f"{jobs.EXPORT}/weights.pt",
    log:
        f"{jobs.EXPORT}/export.log",
    localrule: True
    conda:
        ENV
    params:
        job=lambda w: jobs.export(config, w.dataset, w.arch, w.method, w.seed, w.threat),
    script:
        "../scripts/export_model.py"
