rule table:
    input:
        results=lambda w: table_results(w.table),
        sanity=lambda w: sanity_of(table_models(w.table)),
    output:
        csv=report("results/{table}.csv", category="3. Tables", labels={"table": "{table}"},
                   caption="../report/table.rst"),
        md="results/{table}.md",
    log:
        "results/logs/{table}.log",
    params:
        columns=lambda w: config["tables"][w.table]["columns"],
        rows=lambda w: table_rows(w.table),
        title=lambda w: config["tables"][w.table]["title"],
    conda:
        ANALYSIS_ENV
    script:
        "../scripts/table.py"
