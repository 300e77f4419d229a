# Training. `train_prefix` runs a method without its FR/WA/SWA plug-ins up to the first LR decay once; `train` continues it per method
# (plain, FR, FR/WA), exactly as the FR paper's ablation branches from its epoch-74 checkpoint.


rule train_prefix:
    input:
        unpack(lambda w: start_inputs(w, w.prefix)),
    output:
        model="results/models/{dataset}/{arch}/{prefix}/seed{seed}/prefix.pt",
        metrics="results/models/{dataset}/{arch}/{prefix}/seed{seed}/prefix_metrics.csv",
    log:
        "results/models/{dataset}/{arch}/{prefix}/seed{seed}/prefix.log",
    params:
        train=lambda w: train_section(config, w.dataset, w.prefix),
        workdir=lambda w, output: str(Path(output.model).parent / "prefix_ckpt"),
    threads: threads_for("train")
    resources:
        gpu=gpus("train"),
        runtime=train_runtime(prefix=True),
        mem_mb=train_mem,
    conda:
        ENV
    script:
        "../scripts/train.py"


rule train:
    wildcard_constraints:
        method=r"(?!external_)[a-z][a-z0-9]*(_[a-z0-9]+)*",
    input:
        unpack(train_inputs),
    output:
        model="results/models/{dataset}/{arch}/{method}/seed{seed}/model.pt",
        metrics="results/models/{dataset}/{arch}/{method}/seed{seed}/metrics.csv",
    log:
        "results/models/{dataset}/{arch}/{method}/seed{seed}/train.log",
    params:
        train=lambda w: train_section(config, w.dataset, w.method),
        fr=lambda w: section(config, "fr", w.dataset, w.method),
        workdir=lambda w, output: str(Path(output.model).parent / "ckpt"),
    threads: threads_for("train")
    resources:
        gpu=gpus("train"),
        runtime=train_runtime(prefix=False),
        mem_mb=train_mem,
    conda:
        ENV
    script:
        "../scripts/train.py"
