# One selected checkpoint x one attack preset at one threat model (the path's {threat}: linf-8_255, unbounded).


rule evaluate:
    input:
        model=jobs.MODEL + "/model.pt",
        data=jobs.DATA,
    output:
        json=jobs.EVAL + ".json",
        per_example=jobs.EVAL + ".npz",
    log:
        jobs.EVAL + ".log",
    params:
        job=lambda w: jobs.evaluate(config, w.dataset, w.arch, w.method, w.seed, w.threat, w.attack),
    benchmark:
        jobs.EVAL + "_benchmark.tsv"
    threads: RES.threads("evaluate")
    resources:
        gpu=RES.gpus("evaluate"),
        runtime=lambda w, attempt: RES.eval_runtime(
            jobs.evaluate(config, w.dataset, w.arch, w.method, w.seed, w.threat, w.attack), attempt
        ),
        mem_mb=lambda w: RES.mem_mb(w.arch, w.dataset),
    conda:
        ENV
    script:
        "../scripts/evaluate.py"
