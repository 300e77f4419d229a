rule prepare_dataset:
    output:
        "results/data/{dataset}.npz",
    log:
        "results/logs/prepare_dataset/{dataset}.log",
    params:
        data=config["data"],
    conda:
        ENV
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
    script:
        "../scripts/pretrained_weights.py"
