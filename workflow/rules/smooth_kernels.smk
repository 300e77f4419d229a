# The smooth-kernel paper beyond its Table 1: Section 4.1's four-shapes models (Figure 1: kernels, spectra,
# feature maps; Figure 2: most deceptive FGSM images), Section 4.3's class images (Figures 3-6), Appendix B's
# accuracy against the l0 / l2 / l-inf size of the minimal perturbations (Figures 7-9) and Appendix C's targeted
# attacks (Figures 10-17). Each figure also writes the numbers it draws (.npz / .csv beside it).
rule sk_figure1:
    input:
        models=lambda w: jobs.sk_inputs(config, "figure1", config["smooth_kernels"]["figure1"]["dataset"]),
        data=lambda w: jobs.DATA.format(dataset=config["smooth_kernels"]["figure1"]["dataset"]),
    output:
        figure=report(
            figure("sk_figure1"),
            category="5. Smooth kernels",
            caption="../report/sk_figure1.rst",
        ),
        npz="results/figures/sk_figure1.npz",
    log:
        "results/logs/sk_figure1.log",
    localrule: True
    conda:
        ENV
    params:
        job=lambda w: jobs.sk_figure(config, "figure1", config["smooth_kernels"]["figure1"]["dataset"]),
    script:
        "../scripts/sk_figure1.py"


rule sk_fgsm:
    # Figure 2, per model: the minimal FGSM (foolbox 2's search over eps) of the first test images
    input:
        model=f"{jobs.MODEL}/model.pt",
        data=jobs.DATA,
    output:
        f"{jobs.ANALYSIS}/sk_fgsm.npz",
    log:
        f"{jobs.ANALYSIS}/sk_fgsm.log",
    conda:
        ENV
    threads: RES.threads("evaluate")
    resources:
        gpu=RES.gpus("evaluate"),
        runtime=lambda w, attempt: RES.figure_runtime(
            "sk_fgsm", jobs.sk_model_job(config, "figure2", w.dataset, w.arch, w.method, w.seed), attempt
        ),
        mem_mb=lambda w: RES.mem_mb(w.arch, w.dataset),
    params:
        job=lambda w: jobs.sk_model_job(config, "figure2", w.dataset, w.arch, w.method, w.seed),
    script:
        "../scripts/sk_model.py"


rule sk_figure2:
    input:
        fgsm=lambda w: jobs.sk_inputs(config, "figure2", w.dataset, "sk_fgsm.npz"),
        data=jobs.DATA,
    output:
        figure=report(
            figure("sk_figure2_{dataset}"),
            category="5. Smooth kernels",
            subcategory="{dataset}",
            caption="../report/sk_figure2.rst",
        ),
        npz="results/figures/sk_figure2_{dataset}.npz",
    log:
        "results/logs/sk_figure2_{dataset}.log",
    localrule: True
    conda:
        ENV
    params:
        job=lambda w: jobs.sk_figure(config, "figure2", w.dataset),
    script:
        "../scripts/sk_figure2.py"


rule sk_class_images:
    # Figures 3-6, per model: activation maximisation of every class logit from Gaussian noise
    input:
        model=f"{jobs.MODEL}/model.pt",
    output:
        f"{jobs.ANALYSIS}/sk_class_images.npz",
    log:
        f"{jobs.ANALYSIS}/sk_class_images.log",
    conda:
        ENV
    threads: RES.threads("evaluate")
    resources:
        gpu=RES.gpus("evaluate"),
        runtime=lambda w, attempt: RES.figure_runtime(
            "sk_class_images", jobs.sk_model_job(config, "class_images", w.dataset, w.arch, w.method, w.seed), attempt
        ),
        mem_mb=lambda w: RES.mem_mb(w.arch, w.dataset),
    params:
        job=lambda w: jobs.sk_model_job(config, "class_images", w.dataset, w.arch, w.method, w.seed),
    script:
        "../scripts/sk_model.py"


rule sk_targeted:
    # Figures 10-17, per model: targeted attacks from one test image of each class to every other class
    input:
        model=f"{jobs.MODEL}/model.pt",
        data=jobs.DATA,
    output:
        f"{jobs.ANALYSIS}/sk_targeted.npz",
    log:
        f"{jobs.ANALYSIS}/sk_targeted.log",
    conda:
        ENV
    threads: RES.threads("evaluate")
    resources:
        gpu=RES.gpus("evaluate"),
        runtime=lambda w, attempt: RES.figure_runtime(
            "sk_targeted", jobs.sk_model_job(config, "targeted", w.dataset, w.arch, w.method, w.seed), attempt
        ),
        mem_mb=lambda w: RES.mem_mb(w.arch, w.dataset),
    params:
        job=lambda w: jobs.sk_model_job(config, "targeted", w.dataset, w.arch, w.method, w.seed),
    script:
        "../scripts/sk_model.py"


rule sk_class_figure:
    input:
        lambda w: jobs.sk_inputs(config, "class_images", w.dataset, "sk_class_images.npz"),
    output:
        figure=report(
            figure("sk_class_images_{dataset}"),
            category="5. Smooth kernels",
            subcategory="{dataset}",
            caption="../report/sk_class_images.rst",
        ),
        npz="results/figures/sk_class_images_{dataset}.npz",
    log:
        "results/logs/sk_class_images_{dataset}.log",
    localrule: True
    conda:
        ANALYSIS_ENV
    params:
        job=lambda w: jobs.sk_figure(config, "class_images", w.dataset),
    script:
        "../scripts/sk_figure.py"


rule sk_targeted_figure:
    input:
        lambda w: [
            jobs.analysis_file(m, "sk_targeted.npz")
            for m in jobs.sk_models(config, "targeted", w.dataset)
            if m[2] == w.method
        ],
    output:
        report(
            figure("sk_targeted_{dataset}_{method}"),
            category="5. Smooth kernels",
            subcategory="{dataset}",
            caption="../report/sk_targeted.rst",
        ),
    log:
        "results/logs/sk_targeted_{dataset}_{method}.log",
    localrule: True
    conda:
        ANALYSIS_ENV
    params:
        job=lambda w: {**jobs.sk_figure(config, "targeted", w.dataset), "method": w.method},
    script:
        "../scripts/sk_figure.py"


rule sk_distance_curves:
    input:
        lambda w: [
            jobs.eval_file(m, jobs.sk_distance_threat(config, w.dataset), c, "npz")
            for m in jobs.sk_models(config, "distance_curves", w.dataset)
            for c in jobs.sk_figure(config, "distance_curves", w.dataset)["attacks"]
        ],
    output:
        figure=report(
            figure("sk_distance_curves_{dataset}_{norm}"),
            category="5. Smooth kernels",
            subcategory="{dataset}",
            caption="../report/sk_distance_curves.rst",
        ),
        csv="results/figures/sk_distance_curves_{dataset}_{norm}.csv",
    log:
        "results/logs/sk_distance_curves_{dataset}_{norm}.log",
    wildcard_constraints:
        norm="l0|l2|linf",
    localrule: True
    conda:
        ANALYSIS_ENV
    params:
        job=lambda w: {**jobs.sk_figure(config, "distance_curves", w.dataset), "norm": w.norm},
    script:
        "../scripts/sk_distance_curves.py"
