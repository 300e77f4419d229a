# FR paper Figure 6: each point of an ablation is an ordinary run, `<method>/<fr key>~<value>` (Snakemake
# Paramspace's notation), trained by rule train from the shared first-decay prefix and evaluated by rule evaluate.


rule ablation:
    input:
        baseline=lambda w: [
            jobs.eval_file(m, jobs.ablation(config, w.ablation)["threat"], c)
            for m in [ablation_baseline(w.ablation)]
            for c in ABL[w.ablation]["columns"]
        ],
        baseline_metrics=lambda w: f"{jobs.model_dir(*ablation_baseline(w.ablation))}/metrics.csv",
        points=lambda w: [
            jobs.eval_file(p, jobs.ablation(config, w.ablation)["threat"], c)
            for p in jobs.ablation_points(config, w.ablation)
            for c in ABL[w.ablation]["columns"]
        ],
        metrics=lambda w: [f"{jobs.model_dir(*p)}/metrics.csv" for p in jobs.ablation_points(config, w.ablation)],
    output:
        csv=report("results/ablations/{ablation}.csv", category="4. Ablations", caption="../report/ablation.rst"),
        md="results/ablations/{ablation}.md",
        figure=report(
            multiext("results/figures/figure6_{ablation}", ".png", ".pdf"),
            category="4. Ablations",
            caption="../report/ablation.rst",
        ),
    log:
        "results/logs/ablation_{ablation}.log",
    localrule: True
    conda:
        ANALYSIS_ENV
    params:
        job=lambda w: jobs.ablation(config, w.ablation),
    script:
        "../scripts/ablation.py"
