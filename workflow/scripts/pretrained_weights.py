"""Rule pretrained_weights: torchvision's ImageNet weights of one arch -> a local state_dict (train.init)."""
from specrobust.models import download_torchvision_weights
from specrobust.script import run


def main(sm, log):
    download_torchvision_weights(sm.params.job["arch"], sm.output[0])
    log(f"saved torchvision weights of {sm.params.job['arch']} to {sm.output[0]}")


run(snakemake, main)  # noqa: F821
