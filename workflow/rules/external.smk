# Score users' own checkpoints next to ours: import them as model.pt, then the usual evaluate and sanity rules.


def external_models():
    return [(e["dataset"], e["arch"], f"external_{name}", 0) for name, e in (config.get("external") or {}).items()]


def external_results():
    """Each external checkpoint under the columns of its table (external.<name>.table, default table2), at that
    table's threat model of its data set."""
    out = []
    for name, e in (config.get("external") or {}).items():
        t = e.get("table", "table2")
        model = (e["dataset"], e["arch"], f"external_{name}", 0)
        out += [(model, jobs.table_threat(config, t, e["dataset"]), c) for c in config["tables"][t]["columns"]]
    return out


rule import_external:
    input:
        checkpoint=lambda w: config["external"][w.name]["path"],
        data=jobs.DATA,
    output:
        "results/models/{dataset}/{arch}/external_{name}/seed0/model.pt",
    log:
        "results/models/{dataset}/{arch}/external_{name}/seed0/import.log",
    params:
        job=lambda w: jobs.external(config, w.name),
    conda:
        ENV
    script:
        "../scripts/import_external.py"


rule external_table:
    input:
        results=[eval_file(m, th, c) for m, th, c in external_results()],
        per_example=[eval_file(m, th, c, "npz") for m, th, c in external_results()],
        sanity=[sanity_file(m, jobs.sanity_threat(config, m[0])) for m in external_models()],
    output:
        csv="results/external.csv",
        md="results/external.md",
    log:
        "results/logs/external_table.log",
    params:
        job={
            "table": "external",
            "title": "External checkpoints: clean and robust accuracy (%) under each table's attacks",
            "columns": list(dict.fromkeys(c for _, _, c in external_results())),
            "rows": [list(m[:3]) for m in external_models()],
            "baselines": {},
        },
    localrule: True
    conda:
        ANALYSIS_ENV
    script:
        "../scripts/table.py"
