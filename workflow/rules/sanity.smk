# Sanity checks per evaluated model at the eps of the evaluations they guard (gradient masking, attack
# convergence, an independent PGD), and their table.


rule sanity:
    input:
        model=f"{jobs.MODEL}/model.pt",
        data=jobs.DATA,
        evaluated=lambda w: [
            jobs.eval_file((w.dataset, w.arch, w.method, w.seed), w.threat, c, "npz")
            for c in config["sanity"]["compare"]
        ],
    output:
        f"{jobs.SANITY}.csv",
    log:
        f"{jobs.SANITY}.log",
    benchmark:
        f"{jobs.SANITY}_benchmark.tsv"
    group:
        lambda w: jobs.group_name(model_of(w), w.threat)
    conda:
        ENV
    threads: RES.threads("evaluate")
    resources:
        gpu=RES.gpus("evaluate"),
        runtime=lambda w, attempt: RES.sanity_runtime(
            jobs.sanity(config, w.dataset, w.arch, w.method, w.seed, w.threat), attempt
        ),
        mem_mb=lambda w: RES.mem_mb(w.arch, w.dataset),
        eval_slot=1,
    params:
        job=lambda w: jobs.sanity(config, w.dataset, w.arch, w.method, w.seed, w.threat),
    script:
        "../scripts/sanity.py"


rule sanity_table:
    input:
        [jobs.sanity_file(m, th) for m, th in jobs.sanity_models(config)],
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
