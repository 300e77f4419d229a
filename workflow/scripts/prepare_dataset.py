"""Rule prepare_dataset: raw data (downloaded into data.root, a local copy, or generated) -> fixed 9:1 split -> .npz."""
from specrobust.data import prepare
from specrobust.script import run


def main(sm, log):
    job = sm.params.job
    sizes = prepare(job["dataset"], sm.output[0], root=job.get("root"), path=job.get("path"),
                    synthetic=job.get("synthetic"), val_fraction=job["val_fraction"], split_seed=job["split_seed"],
                    train_limit=job["train_limit"], val_limit=job["val_limit"], test_limit=job["test_limit"],
                    shapes=job.get("shapes"))
    log(f"prepared {job['dataset']}: {sizes}")


run(snakemake, main)  # noqa: F821
