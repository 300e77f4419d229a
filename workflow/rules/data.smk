# Raw data -> one prepared .npz per data set (fixed 9:1 split). Downloads happen in a local rule, on the machine
# that runs Snakemake (a cluster's login node has the internet; compute nodes may not).


rule download_dataset:
    output:
        f"{config['data']['root']}/downloads/{{dataset}}.done",
    log:
        "results/logs/download_dataset/{dataset}.log",
    localrule: True
    conda:
        ENV
    params:
        job=lambda w: {"dataset": w.dataset, "root": config["data"]["root"]},
    script:
        "../scripts/download_dataset.py"


rule prepare_dataset:
    input:
        lambda w: (
            [rules.download_dataset.output[0].format(dataset=w.dataset)] if jobs.downloads(config, w.dataset) else []
        ),
    output:
        jobs.DATA,
    log:
        "results/logs/prepare_dataset/{dataset}.log",
    conda:
        ENV
    threads: RES.threads("prepare")
    resources:
        mem_mb=lambda w: RES.mem_mb(None, w.dataset),
        runtime=60,
    params:
        job=lambda w: jobs.prepare(config, w.dataset),
    script:
        "../scripts/prepare_dataset.py"


rule pretrained_weights:
    # ImageNet weights for train.init: torchvision (smooth-kernel paper: Restricted ImageNet V/VR start from an
    # ImageNet-pretrained ResNet-50). Local, so cluster nodes without internet never download.
    output:
        f"{config['data']['root']}/pretrained/{{arch}}_imagenet1k_v1.pt",
    log:
        "results/logs/pretrained_weights/{arch}.log",
    localrule: True
    conda:
        ENV
    params:
        job=lambda w: {"arch": w.arch},
    script:
        "../scripts/pretrained_weights.py"
