"""Rules plan and table_plan: every job's settings and GPU-hours (computed from the config by the rule) -> CSV + .md."""
from specrobust.plan import write_plan
from specrobust.script import run


def main(sm, log):
    job = sm.params.job
    table = write_plan(job["rows"], job["saved"], sm.output.csv, sm.output.md, job["title"])
    log(f"{len(table)} jobs, {table['gpu_hours'].sum():,.0f} GPU-hours; the shared prefix saves "
        f"{job['saved']:,.0f}")


run(snakemake, main)  # noqa: F821
