rule evaluate:
    input:
        model=RUN + "/model.pt",
        data="results/data/{dataset}.npz",
    output:
        json=EVAL + "/{attack}.json",
        per_example=EVAL + "/{attack}.npz",
    log:
        EVAL + "/{attack}.log",
    params:
        attack=lambda w: config["evaluation"]["attacks"][w.attack],
        n_test=lambda w: config["evaluation"]["attacks"][w.attack].get("n_test", config["evaluation"].get("n_test")),
    threads: threads_for("evaluate")
    conda:
        ENV
    script:
        "../scripts/evaluate.py"
