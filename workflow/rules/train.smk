# Training. `train_prefix` runs a method family without its FR/WA/SWA plug-ins up to the first LR decay, once;
# `train` continues it per method (plain, FR, FR/WA, SWA, an ablation point), exactly as the FR paper's ablation
# branches from its epoch-74 checkpoint. A method whose settings before the decay differ trains from scratch.


rule train_prefix:
    input:
        unpack(data_inputs),
    output:
        model=f"{PREFIX_DIR}/prefix.pt",
        metrics=f"{PREFIX_DIR}/prefix_metrics.csv",
    log:
        f"{PREFIX_DIR}/prefix.log",
    benchmark:
        f"{PREFIX_DIR}/prefix_benchmark.tsv"
    conda:
        ENV
    threads: lambda w: RES.train_threads(train_spec(w))
    resources:
        gpu=lambda w: RES.gpus("train", jobs.train(config, w.dataset, w.arch, w.prefix, w.seed)),
        runtime=lambda w, attempt: RES.train_runtime(
            train_spec(w),
            jobs.epochs_of(config, w.dataset, w.arch, w.prefix, prefix=True),
            attempt,
        ),
        mem_mb=lambda w: RES.train_mem_mb(train_spec(w)),
    params:
        job=lambda w: jobs.train(config, w.dataset, w.arch, w.prefix, w.seed),
        stop_at_first_decay=True,
    script:
        "../scripts/train.py"


rule train:
    input:
        unpack(train_inputs),
    output:
        model=f"{jobs.MODEL}/model.pt",
        metrics=f"{jobs.MODEL}/metrics.csv",
    log:
        f"{jobs.MODEL}/train.log",
    benchmark:
        f"{jobs.MODEL}/train_benchmark.tsv"
    wildcard_constraints:
        method=rf"(?!external_){METHOD_PATTERN}(/{POINT_PATTERN})?",
    conda:
        ENV
    threads: lambda w: RES.train_threads(train_spec(w))
    resources:
        gpu=lambda w: RES.gpus("train", jobs.train(config, w.dataset, w.arch, w.method, w.seed)),
        runtime=lambda w, attempt: RES.train_runtime(
            train_spec(w),
            jobs.epochs_of(config, w.dataset, w.arch, w.method),
            attempt,
        ),
        mem_mb=lambda w: RES.train_mem_mb(train_spec(w)),
    params:
        job=lambda w: jobs.train(config, w.dataset, w.arch, w.method, w.seed),
        stop_at_first_decay=False,
    script:
        "../scripts/train.py"
