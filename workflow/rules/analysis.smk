# Frequency analyses (FR paper Section 3 and Appendix A, workshop Figures 1 and 3, smooth-kernel Figure 1 and
# Appendix B): per-model arrays, then Table 1, the workshop's Table 1, figures and the kernel smoothness CSV.


rule spectral:
    input:
        model=f"{MODEL_DIR}/model.pt",
        data="results/data/{dataset}.npz",
    output:
        f"{ANALYSIS_DIR}/spectral.npz",
    log:
        f"{ANALYSIS_DIR}/spectral.log",
    params:
        attack=lambda w: attack_config(w, AN["attack"]),
        step=lambda w: bandwidth_step(config, w.dataset),
    threads: threads_for("evaluate")
    resources:
        gpu=gpus("evaluate"),
        runtime=eval_runtime,
        mem_mb=eval_mem,
    conda:
        ENV
    script:
        "../scripts/spectral.py"


rule heatmap:
    input:
        model=f"{MODEL_DIR}/model.pt",
        data="results/data/{dataset}.npz",
    output:
        f"{ANALYSIS_DIR}/heatmap.npz",
    log:
        f"{ANALYSIS_DIR}/heatmap.log",
    params:
        heatmap=AN["heatmap"],
    threads: threads_for("evaluate")
    resources:
        gpu=gpus("evaluate"),
        runtime=eval_runtime,
        mem_mb=eval_mem,
    conda:
        ENV
    script:
        "../scripts/heatmap.py"


rule eps_curve:
    input:
        model=f"{MODEL_DIR}/model.pt",
        data="results/data/{dataset}.npz",
    output:
        f"{ANALYSIS_DIR}/eps_curve.csv",
    log:
        f"{ANALYSIS_DIR}/eps_curve.log",
    params:
        multiples=AN["eps_multiples"],
        n_test=AN["eps_n_test"],
    threads: threads_for("evaluate")
    resources:
        gpu=gpus("evaluate"),
        runtime=eval_runtime,
        mem_mb=eval_mem,
    conda:
        ENV
    script:
        "../scripts/eps_curve.py"


rule lpf_table:
    wildcard_constraints:
        lpf_table="table1|aaai_table1",
    input:
        lambda w: [analysis_file(d, m, "spectral.npz") for d, ms in (
            [(d, AN["methods"]) for d in AN["datasets"]] if w.lpf_table == "table1"
            else [(d, AN["aaai_methods"]) for d in AN["aaai_datasets"]]) for m in ms],
    output:
        csv=report("results/{lpf_table}.csv", category="1. Frequency analysis", caption="../report/lpf_table.rst"),
        md="results/{lpf_table}.md",
    log:
        "results/logs/{lpf_table}.log",
    params:
        title=lambda w: {
            "table1": "FR paper, Table 1: accuracy (%) on low-pass filtered inputs, and under PGD-20",
            "aaai_table1": "Workshop paper, Table 1: clean and PGD-20 accuracy (%) after low-pass filtering",
        }[w.lpf_table],
    conda:
        ANALYSIS_ENV
    script:
        "../scripts/lpf_table.py"


rule spectral_figure:
    wildcard_constraints:
        kind="figure1|figure2|figure3",
    input:
        lambda w: [analysis_file(w.dataset, m, "spectral.npz")
                   for m in (AN["methods"] if w.kind != "figure1" else [AN["robust"]])],
    output:
        report(figure("{kind}_{dataset}"), category="1. Frequency analysis", subcategory="{dataset}",
               caption="../report/spectral_figure.rst", labels={"figure": "{kind}", "dataset": "{dataset}"}),
    log:
        "results/logs/{kind}_{dataset}.log",
    conda:
        ANALYSIS_ENV
    script:
        "../scripts/figure.py"


rule heatmap_figure:
    input:
        lambda w: [analysis_file(w.dataset, m, "heatmap.npz") for m in AN["methods"]],
    output:
        report(figure("figure4_{dataset}"), category="1. Frequency analysis", subcategory="{dataset}",
               caption="../report/figure4.rst", labels={"figure": "figure4", "dataset": "{dataset}"}),
    log:
        "results/logs/figure4_{dataset}.log",
    conda:
        ANALYSIS_ENV
    script:
        "../scripts/figure.py"


rule kernels:
    input:
        lambda w: [f"results/models/{w.dataset}/{AN['arch']}/{m}/seed{AN['seed']}/model.pt"
                   for m in ("natural", AN["robust"])],
    output:
        figure=report(figure("kernels_{dataset}"), category="1. Frequency analysis", subcategory="{dataset}",
                      caption="../report/kernels.rst", labels={"figure": "kernels", "dataset": "{dataset}"}),
        csv="results/analysis/{dataset}/kernels.csv",
    log:
        "results/logs/kernels_{dataset}.log",
    params:
        methods=["natural", AN["robust"]],
    conda:
        ENV
    script:
        "../scripts/kernels.py"


rule kernel_table:
    input:
        expand("results/analysis/{dataset}/kernels.csv", dataset=AN["datasets"]),
    output:
        report("results/kernels.csv", category="1. Frequency analysis", caption="../report/kernel_table.rst"),
    log:
        "results/logs/kernel_table.log",
    conda:
        ANALYSIS_ENV
    script:
        "../scripts/concat_csv.py"


rule curves_figure:
    wildcard_constraints:
        kind="training_curves|eps_curves",
    input:
        lambda w: [f"results/models/{d}/{a}/{m}/seed{s}/metrics.csv" if w.kind == "training_curves"
                   else f"results/analysis/{d}/{a}/{m}/seed{s}/eps_curve.csv"
                   for d, a, m, s in first_seed_models(w.table)],
    output:
        report(figure("{kind}_{table}"), category="2. Training and robustness curves", subcategory="{table}",
               caption="../report/curves.rst", labels={"figure": "{kind}", "table": "{table}"}),
    log:
        "results/logs/{kind}_{table}.log",
    params:
        models=lambda w: first_seed_models(w.table),
        title=lambda w: config["tables"][w.table]["title"],
    conda:
        ANALYSIS_ENV
    script:
        "../scripts/curves_figure.py"
