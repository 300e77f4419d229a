# Score users' own checkpoints next to ours: import them as model.pt, then the usual evaluate and sanity rules.


rule import_external:
    input:
        checkpoint=lambda w: jobs.external_path(config, w.name),
        data=jobs.DATA,
    output:
        "results/models/{dataset}/{arch}/external_{name}/seed0/model.pt",
    log:
        "results/models/{dataset}/{arch}/external_{name}/seed0/import.log",
    conda:
        ENV
    params:
        job=lambda w: jobs.external(config, w.name),
    script:
        "../scripts/import_external.py"


rule external_table:
    input:
        results=[jobs.eval_file(m, th, c) for m, th, c in jobs.external_results(config)],
        per_example=[jobs.eval_file(m, th, c, "npz") for m, th, c in jobs.external_results(config)],
        sanity=[jobs.sanity_file(m, jobs.sanity_threat(config, m[0])) for m in jobs.external_models(config)],
    output:
        csv="results/external.csv",
        md="results/external.md",
    log:
        "results/logs/external_table.log",
    localrule: True
    conda:
        ANALYSIS_ENV
    params:
        job={
            "table": "external",
            "title": "External checkpoints: clean and robust accuracy (%) under each table's attacks",
            "columns": list(dict.fromkeys(c for _, _, c in jobs.external_results(config))),
            "rows": [list(m[:3]) for m in jobs.external_models(config)],
            "baselines": {},
        },
    script:
        "../scripts/table.py"
