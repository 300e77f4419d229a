rule evaluate:
    input:
        model="results/models/{dataset}/{arch}/{method}/seed{seed}/model.pt",
        data="results/data/{dataset}.npz",
    output:
        json="results/eval/{dataset}/{arch}/{method}/seed{seed}/{attack}.json",
        per_example="results/eval/{dataset}/{arch}/{method}/seed{seed}/{attack}.npz",
    log:
        "results/eval/{dataset}/{arch}/{method}/seed{seed}/{attack}.log",
    params:
        attack=attack_config,
        n_test=attack_n_test,
    threads: threads_for("evaluate")
    resources:
        gpu=gpus("evaluate"),
        runtime=eval_runtime,
        mem_mb=eval_mem,
    conda:
        ENV
    script:
        "../scripts/evaluate.py"
