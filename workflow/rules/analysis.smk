# Frequency analyses (FR paper Section 3 and Appendix A, workshop Figures 1 and 3, smooth-kernel Figure 1 and
# Appendix B): per-model arrays, then Table 1, the workshop's Table 1, figures and the kernel smoothness CSV.


rule spectral:
    input:
        model=f"{jobs.MODEL}/model.pt",
        data=jobs.DATA,
    output:
        f"{jobs.ANALYSIS}/spectral.npz",
    log:
        f"{jobs.ANALYSIS}/spectral.log",
    benchmark:
        f"{jobs.ANALYSIS}/spectral_benchmark.tsv"
    conda:
        ENV
    threads: RES.threads("evaluate")
    resources:
        gpu=RES.gpus("evaluate"),
        runtime=lambda w, attempt: RES.eval_runtime(jobs.spectral(config, w.dataset, w.arch, w.method, w.seed), attempt),
        mem_mb=lambda w: RES.mem_mb(w.arch, w.dataset),
    params:
        job=lambda w: jobs.spectral(config, w.dataset, w.arch, w.method, w.seed),
    script:
        "../scripts/spectral.py"


rule heatmap:
    input:
        model=f"{jobs.MODEL}/model.pt",
        data=jobs.DATA,
    output:
        f"{jobs.ANALYSIS}/heatmap.npz",
    log:
        f"{jobs.ANALYSIS}/heatmap.log",
    benchmark:
        f"{jobs.ANALYSIS}/heatmap_benchmark.tsv"
    conda:
        ENV
    threads: RES.threads("evaluate")
    resources:
        gpu=RES.gpus("evaluate"),
        runtime=lambda w, attempt: RES.eval_runtime(
            {**jobs.heatmap(config, w.dataset, w.arch, w.method, w.seed), "type": "heatmap"}, attempt
        ),
        mem_mb=lambda w: RES.mem_mb(w.arch, w.dataset),
    params:
        job=lambda w: jobs.heatmap(config, w.dataset, w.arch, w.method, w.seed),
    script:
        "../scripts/heatmap.py"


rule eps_curve:
    input:
        model=f"{jobs.MODEL}/model.pt",
        data=jobs.DATA,
    output:
        f"{jobs.ANALYSIS}/eps_curve.csv",
    log:
        f"{jobs.ANALYSIS}/eps_curve.log",
    conda:
        ENV
    threads: RES.threads("evaluate")
    resources:
        gpu=RES.gpus("evaluate"),
        runtime=lambda w, attempt: RES.eval_runtime(
            {**jobs.eps_curve(config, w.dataset, w.arch, w.method, w.seed), "type": "eps_curve"}, attempt
        ),
        mem_mb=lambda w: RES.mem_mb(w.arch, w.dataset),
    params:
        job=lambda w: jobs.eps_curve(config, w.dataset, w.arch, w.method, w.seed),
    script:
        "../scripts/eps_curve.py"


rule lpf_table:
    input:
        lambda w: [jobs.analysis_file(m, "spectral.npz") for m in jobs.lpf_models(config, w.lpf_table)],
    output:
        csv=report("results/{lpf_table}.csv", category="1. Frequency analysis", caption="../report/lpf_table.rst"),
        md="results/{lpf_table}.md",
    log:
        "results/logs/{lpf_table}.log",
    wildcard_constraints:
        lpf_table="table1|aaai_table1",
    localrule: True
    conda:
        ANALYSIS_ENV
    params:
        job=lambda w: {
            "table": w.lpf_table,
            "title": jobs.LPF_TABLES[w.lpf_table][2],
            "workshop": w.lpf_table != "table1",
        },
    script:
        "../scripts/lpf_table.py"


rule spectral_figure:
    input:
        lambda w: [
            jobs.analysis_file(m, "spectral.npz")
            for m in jobs.analysis_models(config, w.dataset, AN["methods"] if w.kind != "figure1" else [AN["robust"]])
        ],
    output:
        report(
            figure("{kind}_{dataset}"),
            category="1. Frequency analysis",
            subcategory="{dataset}",
            caption="../report/spectral_figure.rst",
            labels={"figure": "{kind}", "dataset": "{dataset}"},
        ),
    log:
        "results/logs/{kind}_{dataset}.log",
    wildcard_constraints:
        kind="figure1|figure2|figure3",
    localrule: True
    conda:
        ANALYSIS_ENV
    params:
        job=lambda w: {"kind": w.kind, "dataset": w.dataset},
    script:
        "../scripts/figure.py"


rule heatmap_figure:
    input:
        lambda w: [jobs.analysis_file(m, "heatmap.npz") for m in jobs.analysis_models(config, w.dataset, AN["methods"])],
    output:
        report(
            figure("figure4_{dataset}"),
            category="1. Frequency analysis",
            subcategory="{dataset}",
            caption="../report/figure4.rst",
            labels={"figure": "figure4", "dataset": "{dataset}"},
        ),
    log:
        "results/logs/figure4_{dataset}.log",
    localrule: True
    conda:
        ANALYSIS_ENV
    params:
        job=lambda w: {"kind": "figure4", "dataset": w.dataset},
    script:
        "../scripts/figure.py"


rule kernels:
    input:
        lambda w: [
            f"{jobs.model_dir(*m)}/model.pt"
            for m in jobs.analysis_models(config, w.dataset, ["natural", AN["robust"]])
        ],
    output:
        figure=report(
            figure("kernels_{dataset}"),
            category="1. Frequency analysis",
            subcategory="{dataset}",
            caption="../report/kernels.rst",
            labels={"figure": "kernels", "dataset": "{dataset}"},
        ),
        csv="results/analysis/{dataset}/kernels.csv",
    log:
        "results/logs/kernels_{dataset}.log",
    localrule: True
    conda:
        ENV
    params:
        job=lambda w: {"dataset": w.dataset, "arch": AN["arch"], "methods": ["natural", AN["robust"]]},
    script:
        "../scripts/kernels.py"


rule kernel_table:
    input:
        expand("results/analysis/{dataset}/kernels.csv", dataset=AN["datasets"]),
    output:
        report("results/kernels.csv", category="1. Frequency analysis", caption="../report/kernel_table.rst"),
    log:
        "results/logs/kernel_table.log",
    localrule: True
    conda:
        ANALYSIS_ENV
    script:
        "../scripts/concat_csv.py"


rule curves_figure:
    input:
        lambda w: [
            (
                f"{jobs.model_dir(*m)}/metrics.csv"
                if w.kind == "training_curves"
                else jobs.analysis_file(m, "eps_curve.csv")
            )
            for m in jobs.first_seed_models(config, w.table)
        ],
    output:
        report(
            figure("{kind}_{table}"),
            category="2. Training and robustness curves",
            subcategory="{table}",
            caption="../report/curves.rst",
            labels={"figure": "{kind}", "table": "{table}"},
        ),
    log:
        "results/logs/{kind}_{table}.log",
    wildcard_constraints:
        kind="training_curves|eps_curves",
    localrule: True
    conda:
        ANALYSIS_ENV
    params:
        job=lambda w: {
            "kind": w.kind,
            "title": config["tables"][w.table]["title"],
            "models": [list(m) for m in jobs.first_seed_models(config, w.table)],
        },
    script:
        "../scripts/curves_figure.py"
