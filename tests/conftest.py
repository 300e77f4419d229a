import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]

from slurm_cluster import slurm_cluster  # noqa: E402,F401  (the real single-node SLURM cluster fixture)
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


@pytest.fixture
def config():
    return copy.deepcopy(yaml.safe_load((ROOT / "config/config.yaml").read_text()))


def synthetic_images(n: int, size: int = 28, channels: int = 1, classes: int = 10, seed: int = 0):
    """Learnable images: each class lights up its own horizontal band, plus noise (uint8 NHWC)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.integers(0, 60, (n, size, size, channels)).astype(np.uint8)
    band = size // classes or 1
    for i, c in enumerate(y):
        x[i, (c * band) % size:(c * band) % size + band, :, :] = 230
    return x, y.astype(np.int64)


@pytest.fixture
def synthetic_npz(tmp_path):
    x_tr, y_tr = synthetic_images(400, seed=1)
    x_te, y_te = synthetic_images(100, seed=2)
    path = tmp_path / "mnist_like.npz"
    np.savez(path, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    return path


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    torch.set_num_threads(min(2, torch.get_num_threads()))  # OMP_NUM_THREADS=1 beside a busy build


def saved_tiny_run(tmp_path, method: str, n: int, test_index=None):
    """A random 12 px small-CNN checkpoint (``model.pt``) and a prepared data set (``d.npz``) of n random images,
    as the evaluation rules read them. Returns (model_path, data_path)."""
    from specrobust.io import atomic_savez, atomic_torch_save
    from specrobust.models import build_model

    model = build_model("small_cnn", 10, 1, 12, [0.5], [0.25], c1=2, c2=2, hidden=8)
    meta = {"arch": "small_cnn", "arch_options": {"c1": 2, "c2": 2, "hidden": 8}, "num_classes": 10,
            "in_channels": 1, "image_size": 12, "mean": [0.5], "std": [0.25], "dataset": "mnist",
            "method": method, "seed": 0, "eps": 0.1, "step_size": 0.05, "epoch": 3, "val_pgd": 1.0}
    atomic_torch_save({"model": model.state_dict(), "meta": meta}, tmp_path / "model.pt")
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 255, (n, 12, 12, 1), dtype=np.uint8), rng.integers(0, 10, n)
    atomic_savez(tmp_path / "d.npz", x_train=x, y_train=y, x_val=x, y_val=y, x_test=x, y_test=y,
                 train_index=np.arange(n), val_index=np.arange(n),
                 test_index=np.arange(n) if test_index is None else np.asarray(test_index),
                 mean=np.array([0.5], np.float32), std=np.array([0.25], np.float32), num_classes=np.int64(10),
                 split_seed=np.int64(0))
    return tmp_path / "model.pt", tmp_path / "d.npz"

