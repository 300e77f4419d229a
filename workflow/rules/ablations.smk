# FR paper Figure 6: ablations as parameter spaces. A point is the path segment `<fr key>~<value>` (Snakemake
# Paramspace's notation); it trains its method from the shared first-decay prefix with that fr.* value, so asking
# for one point by path builds only the prefix (if missing), that branch and its evaluations.


rule train_ablation:
    input:
        data="results/data/{dataset}.npz",
        prefix=lambda w: prefix_file(w, parse_method(w.method).prefix),
    output:
        model=f"{POINT_DIR}/model.pt",
        metrics=f"{POINT_DIR}/metrics.csv",
    log:
        f"{POINT_DIR}/train.log",
    params:
        train=lambda w: train_section(with_point(config, w.method, w.point), w.dataset, w.method),
        fr=lambda w: section(with_point(config, w.method, w.point), "fr", w.dataset, w.method),
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


rule evaluate_ablation:
    input:
        model=f"{POINT_DIR}/model.pt",
        data="results/data/{dataset}.npz",
    output:
        json=f"{POINT_DIR}/eval/{{attack}}.json",
        per_example=f"{POINT_DIR}/eval/{{attack}}.npz",
    log:
        f"{POINT_DIR}/eval/{{attack}}.log",
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


rule ablation:
    input:
        unpack(lambda w: ablation_inputs(w.ablation)),
    output:
        csv=report("results/ablations/{ablation}.csv", category="4. Ablations", caption="../report/ablation.rst"),
        md="results/ablations/{ablation}.md",
        figure=report(multiext("results/figures/figure6_{ablation}", ".png", ".pdf"), category="4. Ablations",
                      caption="../report/ablation.rst"),
    log:
        "results/logs/ablation_{ablation}.log",
    params:
        ablation=lambda w: ABL[w.ablation],
    conda:
        ANALYSIS_ENV
    script:
        "../scripts/ablation.py"
