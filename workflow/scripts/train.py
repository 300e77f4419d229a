"""Rules train_prefix, train and train_ablation: one run spec from config + wildcards, then specrobust.train."""
from specrobust.config import with_point
from specrobust.data import load_prepared
from specrobust.script import run
from specrobust.spec import run_spec
from specrobust.train import train


def main(sm, log):
    w = sm.wildcards
    prefix_rule = sm.rule == "train_prefix"
    config = with_point(sm.config, w.method, w.point) if sm.rule == "train_ablation" else sm.config
    spec = run_spec(config, w.dataset, w.arch, w.prefix if prefix_rule else w.method, int(w.seed))
    train(spec, load_prepared(sm.input.data, w.dataset), sm.output.model, sm.output.metrics, sm.params.workdir,
          prefix=None if prefix_rule else sm.input.get("prefix"), stop_at_first_decay=prefix_rule, log=log,
          init_path=sm.input.get("init"), workers=max(0, sm.threads - 1))


run(snakemake, main)  # noqa: F821
