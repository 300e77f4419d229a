"""Rule kernel_stats: one model's first-layer kernel smoothness (roughness, high-frequency energy share) as JSON."""
from specrobust import figures
from specrobust.analysis import first_conv_weight
from specrobust.io import atomic_write_json
from specrobust.script import run


def main(sm, log):
    stats = figures.kernel_smoothness(first_conv_weight(sm.input[0]))
    atomic_write_json(sm.output[0], {**sm.params.job, **stats})
    log(f"roughness {stats['roughness']:.4f}, high-frequency energy {stats['high_freq_energy']:.4f}")


run(snakemake, main)  # noqa: F821
