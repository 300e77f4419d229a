"""Rule heatmap: one checkpoint -> Fourier heat map (error rate per frequency, Yin et al. 2019) as .npz."""
from specrobust.analysis import run_heatmap
from specrobust.script import evaluation, run
from specrobust.train import resolve_device


def main(sm, log):
    hm, ev = sm.params.heatmap, evaluation(sm)
    run_heatmap(sm.input.model, sm.input.data, sm.output[0], hm["v"], n_test=hm["n_test"], stride=hm["stride"],
                batch_size=ev["batch_size"], seed=ev["seed"], device=resolve_device(sm.config["train"]["device"]),
                log=log)


run(snakemake, main)  # noqa: F821
