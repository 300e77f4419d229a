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
