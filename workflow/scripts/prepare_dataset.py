"""Rule prepare_dataset: raw data (download or local copy) -> fixed 9:1 split -> results/data/{dataset}.npz."""
from specrobust.data import prepare
from specrobust.script import run


def main(sm, log):
    d, name = sm.params.data, sm.wildcards.dataset
    sizes = prepare(name, sm.output[0], root=d["root"], download=d.get("download", True),
                    path=(d.get("paths") or {}).get(name), val_fraction=d.get("val_fraction", 0.1),
                    split_seed=d.get("split_seed", 0), train_limit=d.get("train_limit"),
                    val_limit=d.get("val_limit"), test_limit=d.get("test_limit"))
    log(f"prepared {name}: {sizes}")


run(snakemake, main)  # noqa: F821
