import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
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
    torch.set_num_threads(2)
