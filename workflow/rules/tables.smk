rule table2:
    input:
        results=table_results("table2"),
        sanity=sanity_of(table_models("table2")),
    output:
        csv="results/table2.csv",
        md="results/table2.md",
    log:
        "results/logs/table2.log",
    params:
        columns=config["table2"]["columns"],
        rows=table_rows("table2"),
        title="FR paper, Table 2: clean and robust accuracy (%) under L-inf attacks",
    conda:
        ENV
    script:
        "../scripts/table.py"
