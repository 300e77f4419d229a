# Sanity checks per evaluated model (gradient masking, attack convergence, an independent PGD), and their table.


rule sanity:
    input:
        model="results/models/{dataset}/{arch}/{method}/seed{seed}/model.pt",
        data="results/data/{dataset}.npz",
        evaluated=lambda w: expand(
            "results/eval/{{dataset}}/{{arch}}/{{method}}/seed{{seed}}/{attack}.npz",
            attack=config["sanity"]["compare"],
        ),
    output:
        "results/sanity/{dataset}/{arch}/{method}/seed{seed}.csv",
    log:
        "results/sanity/{dataset}/{arch}/{method}/seed{seed}.log",
    params:
        sanity=config["sanity"],
    threads: threads_for("evaluate")
    resources:
        gpu=gpus("evaluate"),
        runtime=eval_runtime,
        mem_mb=eval_mem,
    conda:
        ENV
    script:
        "../scripts/sanity.py"


rule sanity_table:
    input:
        sanity_inputs(),
    output:
        csv=report("results/sanity.csv", category="0. Overview", caption="../report/sanity.rst"),
        md="results/sanity.md",
    log:
        "results/logs/sanity_table.log",
    conda:
        ANALYSIS_ENV
    script:
        "../scripts/sanity_table.py"
