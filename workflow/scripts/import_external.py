"""Rule import_external: a user's state_dict + arch name -> results/models/.../external_{name}/seed0/model.pt."""
from specrobust.config import number, train_section
from specrobust.evaluate import import_external
from specrobust.script import run


def main(sm, log):
    ext, w = sm.params.external, sm.wildcards
    tr = train_section(sm.config, w.dataset)
    meta = import_external(sm.input.checkpoint, w.arch, sm.input.data, sm.output[0], w.name,
                           number(ext.get("eps", tr["eps"])), number(tr["step_size"]), ext.get("mean"), ext.get("std"),
                           (sm.config.get("archs") or {}).get(w.arch))
    log(f"imported {sm.input.checkpoint} as {meta['dataset']}/{meta['arch']}/{meta['method']}")


run(snakemake, main)  # noqa: F821
