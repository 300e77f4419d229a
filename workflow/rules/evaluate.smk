# One selected checkpoint x one attack preset at one threat model (the path's {threat}: linf-8_255, unbounded).


rule evaluate:
    input:
        model=f"{jobs.MODEL}/model.pt",
        data=jobs.DATA,
    output:
        json=f"{jobs.EVAL}.json",
        per_example=f"{jobs.EVAL}.npz",
    log:
        f"{jobs.EVAL}.log",
    benchmark:
        f"{jobs.EVAL}_benchmark.tsv"
    group:
        lambda w: jobs.group_name(model_of(w), w.threat)
    conda:
        ENV
    threads: RES.threads("evaluate")
    resources:
        gpu=RES.gpus("evaluate"),
        runtime=lambda w, attempt: RES.eval_runtime(
            jobs.evaluate(config, w.dataset, w.arch, w.method, w.seed, w.threat, w.attack), attempt
        ),
        mem_mb=lambda w: RES.mem_mb(w.arch, w.dataset),
        eval_slot=1,
    params:
        job=lambda w: jobs.evaluate(config, w.dataset, w.arch, w.method, w.seed, w.threat, w.attack),
    script:
        "../scripts/evaluate.py"


rule evaluations:
    # Ties every evaluation and the sanity checks of one model at one threat model into one group, which a cluster
    # runs as one submission (one GPU allocation; resource eval_slot keeps its jobs one after the other); the file
    # lists the accuracies.
    input:
        results=lambda w: [
            jobs.eval_file(model_of(w), w.threat, a) for a in jobs.model_evaluations(config, model_of(w), w.threat)[0]
        ],
        sanity=lambda w: (
            [jobs.sanity_file(model_of(w), w.threat)]
            if jobs.model_evaluations(config, model_of(w), w.threat)[1]
            else []
        ),
    output:
        f"{EVAL_DIR}/evaluations.tsv",
    log:
        f"{EVAL_DIR}/evaluations.log",
    group:
        lambda w: jobs.group_name(model_of(w), w.threat)
    conda:
        ANALYSIS_ENV
    script:
        "../scripts/evaluations.py"
