"""Malformed configs and inputs: each is refused with one line that names the offending key, file or value."""
import gzip

import numpy as np
import pytest
import torch

from conftest import SCHEMA
from specrobust import data
from specrobust.config import check_config, deep_merge, number
from specrobust.errors import SpecRobustError
from specrobust.io import load_checkpoint
from specrobust.models import build_model
from specrobust.jobs import run_spec
from specrobust.train import resolve_device

CONFIGS = [
    ({"train": {"epoch": 10}}, "train.epoch"),
    ({"train": {"eps": -0.1}}, "train.eps"),
    ({"train": {"eps": "8/0"}}, "train.eps"),
    ({"train": {"eps": 2.0}}, "train.eps"),
    ({"train": {"lr": 0}}, "train.lr"),
    ({"train": {"batch_size": 0}}, "train.batch_size"),
    ({"train": {"bn_mode": "half"}}, "train.bn_mode"),
    ({"train": {"milestones": [90, 75]}}, "train.milestones"),
    ({"fr": {"fft": "rows"}}, "fr.fft"),
    ({"data": {"val_fraction": 1.5}}, "data.val_fraction"),
    ({"data": {"paths": {"imagenet": "/x"}}}, "data.paths"),
    ({"evaluation": {"attacks": {"pgd20": {"type": "pgd", "steps": 0}}}}, "evaluation.attacks.pgd20.steps"),
    ({"evaluation": {"attacks": {"x": {"type": "deepfool"}}}}, "evaluation.attacks.x.type"),
    ({"evaluation": {"attacks": {"x": {"type": "adef", "unbounded": True}}}}, "evaluation.attacks.x.unbounded"),
    ({"evaluation": {"eps": {"cifar11": 0.1}}}, "evaluation.eps"),
    ({"evaluation": {"eps": {"mnist": "none"}}}, "evaluation.eps.mnist"),
    ({"evaluation": {"attacks": {"pgd20": {"type": "pgd", "step_size": "eps*4"}}}},
     "evaluation.attacks.pgd20.step_size"),
    ({"tables": {"table2": {"eps": {"svhn": -1}}}}, "tables.table2.eps.svhn"),
    ({"data": {"synthetic": {"train": 10}}}, "data.synthetic"),
    ({"tables": {"table2": {"archs": ["vgg16"]}}}, "tables.table2.archs"),
    ({"tables": {"table2": {"methods": ["pgd_at_fr_fr"]}}}, "tables.table2.methods"),
    ({"sanity": {"tables": ["table99"]}}, "sanity.tables"),
    ({"methods": {"trades": {"train": {"weight_decay": -1}}}}, "methods.trades.train.weight_decay"),
    ({"external": {"mine": {"path": "x.pt", "arch": "resnet18"}}}, "external.mine"),
    ({"analysis": {"attack": "pgd7"}}, "analysis.attack"),
    ({"analysis": {"curves": ["table9"]}}, "analysis.curves"),
    ({"analysis": {"datasets": ["fashionmnist"], "bandwidth_step": {"fashionmnist": 8}}}, "analysis.bandwidth_step"),
    ({"analysis": {"heatmap": {"v": 0}}}, "analysis.heatmap.v"),
    ({"ablations": {"fr_lambda": {"method": "pgd_at"}}}, "ablations.fr_lambda.method"),
    ({"ablations": {"fr_lambda": {"values": [-0.1]}}}, "ablations.fr_lambda.values[0]"),
    ({"tables": {"table2": {"paper": {"source": "1", "table": "Table 2"}}}}, "tables.table2.paper.source"),
    ({"scale": "huge"}, "scale"),
]


@pytest.mark.parametrize("change,key", CONFIGS)
def test_malformed_configs(config, change, key):
    with pytest.raises(SpecRobustError) as err:
        check_config(deep_merge(config, change), SCHEMA)
    msg = str(err.value)
    assert key in msg and "\n" not in msg, msg


def one_line(fn, token):
    with pytest.raises(SpecRobustError) as err:
        fn()
    msg = str(err.value)
    assert token in msg and "\n" not in msg, msg


def test_malformed_files_and_values(tmp_path, config):
    (tmp_path / "trunc.pt").write_bytes(b"PK\x03\x04" + b"\x00" * 20)
    one_line(lambda: load_checkpoint(tmp_path / "trunc.pt"), "trunc.pt")
    one_line(lambda: load_checkpoint(tmp_path / "missing.pt"), "missing.pt")
    (tmp_path / "bad.npz").write_bytes(b"not an archive")
    one_line(lambda: data.load_prepared(tmp_path / "bad.npz"), "bad.npz")
    np.savez(tmp_path / "wrongkeys.npz", images=np.zeros(3))
    one_line(lambda: data.load_raw("mnist", tmp_path, path=str(tmp_path / "wrongkeys.npz")), "x_train")
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x03\x00")  # header cut short
    one_line(lambda: data._read_idx(tmp_path / "train-images-idx3-ubyte.gz"), "train-images-idx3-ubyte.gz")
    np.savez(tmp_path / "rgb.npz", x_train=np.zeros((4, 32, 32, 3), np.uint8), y_train=np.zeros(4),
             x_test=np.zeros((2, 32, 32, 3), np.uint8), y_test=np.zeros(2))
    one_line(lambda: data.prepare("mnist", tmp_path / "o.npz", path=str(tmp_path / "rgb.npz")), "expected images")
    one_line(lambda: data.load_raw("cifar10", tmp_path / "none", download=False), "data.paths.cifar10")
    one_line(lambda: data.dataset_info("imagenet"), "imagenet")
    one_line(lambda: number("eight", "train.eps"), "train.eps")
    one_line(lambda: build_model("vgg16", 10, 3, 32, [0] * 3, [1] * 3), "vgg16")
    one_line(lambda: run_spec(config, "cifar10", "resnet18", "pgd_att", 0), "pgd_att")
    if not torch.cuda.is_available():
        one_line(lambda: resolve_device("cuda"), "CUDA")
