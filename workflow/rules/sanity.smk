# Sanity checks per evaluated model at the eps of the evaluations they guard (gradient masking, attack
# convergence, an independent PGD), and their table.


rule sanity:
    input:
        model=jobs.MODEL + "/model.pt",
        data=jobs.DATA,
        evaluated=lambda w: [
            eval_file((w.dataset, w.arch, w.method, w.seed), w.threat, c, "npz")
            for c in config["sanity"]["compare"]
        ],
    output:
        jobs.SANITY + ".csv",
    log:
        jobs.SANITY + ".log",
    params:
        job=lambda w: jobs.sanity(config, w.dataset, w.arch, w.method, w.seed, w.threat),
    benchmark:
        jobs.SANITY + "_benchmark.tsv"
    threads: RES.threads("evaluate")
    resources:
        gpu=RES.gpus("evaluate"),
        runtime=lambda w, attempt: RES.sanity_runtime(
            jobs.sanity(config, w.dataset, w.arch, w.method, w.seed, w.threat), attempt
        ),
        mem_mb=lambda w: RES.mem_mb(w.arch, w.dataset),
    conda:
        ENV
    script:
        "../scripts/sanity.py"


rule sanity_table:
    input:
        [sanity_file(m, th) for m, th in jobs.sanity_models(config)],
    output:
        csv=report("results/sanity.csv", category="0. Overview", caption="../report/sanity.rst"),
        md="results/sanity.md",
    log:
        "results/logs/sanity_table.log",
    localrule: True
    conda:
        ANALYSIS_ENV
    script:
        "../scripts/sanity_table.py"
