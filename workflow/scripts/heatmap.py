"""Rule heatmap: one checkpoint -> Fourier heat map (error rate per frequency, Yin et al. 2019) as .npz."""
from specrobust.analysis import run_heatmap
from specrobust.script import device, run


def main(sm, log):
    run_heatmap(sm.input.model, sm.input.data, sm.output[0], sm.params.job, device=device(sm), log=log)


run(snakemake, main)  # noqa: F821
