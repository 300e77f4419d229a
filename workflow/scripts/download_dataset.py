"""Rule download_dataset (local): fetch one data set into data.root with its checksums, on the login node."""
from specrobust.data import download
from specrobust.io import atomic_write_text
from specrobust.script import run


def main(sm, log):
    job = sm.params.job
    where = download(job["dataset"], job["root"])
    atomic_write_text(sm.output[0], f"{where}\n")
    log(f"{job['dataset']} is in {where}")


run(snakemake, main)  # noqa: F821
