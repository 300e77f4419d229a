"""Rules train_prefix and train: the run's record (params.job) -> specrobust.train."""
from pathlib import Path

from specrobust.data import load_prepared
from specrobust.script import device, run
from specrobust.spec import spec_from_record
from specrobust.train import train


def main(sm, log):
    spec = spec_from_record(sm.params.job)
    out = Path(sm.output.model)
    train(spec, load_prepared(sm.input.data, spec.dataset), out, sm.output.metrics,
          out.parent / ("prefix_ckpt" if sm.params.stop_at_first_decay else "ckpt"), prefix=sm.input.get("prefix"),
          stop_at_first_decay=sm.params.stop_at_first_decay, log=log, init_path=sm.input.get("init"),
          workers=max(0, sm.threads - 1), device=device(sm))


run(snakemake, main)  # noqa: F821
