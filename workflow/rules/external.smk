# Score users' own checkpoints next to ours: import them as model.pt, then the usual evaluate and sanity rules.


rule import_external:
    input:
        checkpoint=lambda w: config["external"][w.name]["path"],
        data="results/data/{dataset}.npz",
    output:
        "results/models/{dataset}/{arch}/external_{name}/seed0/model.pt",
    log:
        "results/models/{dataset}/{arch}/external_{name}/seed0/import.log",
    params:
        external=lambda w: config["external"][w.name],
    conda:
        ENV
    script:
        "../scripts/import_external.py"


rule external_table:
    input:
        results=external_results(),
        sanity=sanity_of(external_models()),
    output:
        csv="results/external.csv",
        md="results/external.md",
    log:
        "results/logs/external_table.log",
    params:
        columns=config["tables"]["table2"]["columns"],
        rows=[(d, a, m) for d, a, m, _ in external_models()],
        title="External checkpoints: clean and robust accuracy (%) under L-inf attacks",
    conda:
        ANALYSIS_ENV
    script:
        "../scripts/table.py"
