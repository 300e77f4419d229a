import gzip

import numpy as np
import pytest
import torch

from specrobust import data
from specrobust.errors import DataError


def test_split_is_deterministic_disjoint_and_nine_to_one():
    tr, va = data.split_indices(1000, 0.1, seed=3)
    tr2, va2 = data.split_indices(1000, 0.1, seed=3)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    assert len(va) == 100 and len(tr) == 900
    assert not set(tr) & set(va) and set(tr) | set(va) == set(range(1000))
    _, va3 = data.split_indices(1000, 0.1, seed=4)
    assert not np.array_equal(va, va3)


def test_prepare_from_local_npz(synthetic_npz, tmp_path):
    out = tmp_path / "prep.npz"
    sizes = data.prepare("mnist", out, path=str(synthetic_npz), train_limit=100, test_limit=50)
    assert sizes == {"train": 100, "val": 40, "test": 50}
    p = data.load_prepared(out)
    assert p.x_train.shape[1:] == (28, 28, 1) and p.num_classes == 10
    # same arguments -> byte-identical split
    data.prepare("mnist", tmp_path / "again.npz", path=str(synthetic_npz), train_limit=100, test_limit=50)
    q = data.load_prepared(tmp_path / "again.npz")
    assert np.array_equal(p.x_train, q.x_train) and np.array_equal(p.y_val, q.y_val)


def test_idx_reader(tmp_path):
    imgs = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4)
    header = bytes([0, 0, 8, 3]) + b"".join(int(d).to_bytes(4, "big") for d in imgs.shape)
    with gzip.open(tmp_path / "x.gz", "wb") as f:
        f.write(header + imgs.tobytes())
    assert np.array_equal(data._read_idx(tmp_path / "x.gz"), imgs)


def test_missing_data_offline_fails_fast_naming_the_key(tmp_path):
    with pytest.raises(DataError, match=r"data.paths.cifar10"):
        data.load_raw("cifar10", tmp_path / "nothing", download=False)
    with pytest.raises(DataError, match="does not exist"):
        data.load_raw("mnist", tmp_path, path=str(tmp_path / "missing.npz"))


def test_corrupted_prepared_file_is_named(tmp_path):
    bad = tmp_path / "cifar10.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match=str(bad)):
        data.load_prepared(bad)


def test_device_batches_deterministic_augmented_and_complete():
    x = np.random.default_rng(0).integers(0, 255, (50, 8, 8, 3), dtype=np.uint8)
    y = np.arange(50)
    b = data.DeviceBatches(x, y, 16, "crop_flip", "cpu", seed=1)
    e1 = list(b.epoch(0))
    e1_again = list(b.epoch(0))
    assert len(e1) == 3  # drop_last
    assert all(torch.equal(a[0], c[0]) for a, c in zip(e1, e1_again))
    assert not torch.equal(e1[0][1], list(b.epoch(1))[0][1])  # a new order each epoch
    xb, yb = e1[0]
    assert xb.shape == (16, 3, 8, 8) and xb.dtype == torch.float32 and 0 <= xb.min() and xb.max() <= 1
    # every crop is a shifted window of the zero-padded original (possibly flipped)
    for img, label in zip(xb, yb):
        orig = torch.nn.functional.pad(torch.as_tensor(x[label]).permute(2, 0, 1).float() / 255, (4, 4, 4, 4))
        found = any(torch.equal(orig[:, i:i + 8, j:j + 8], cand)
                    for i in range(9) for j in range(9) for cand in (img, img.flip(2)))
        assert found
    plain = data.DeviceBatches(x, y, 16, "none", "cpu", seed=1)
    xb, yb = next(iter(plain.epoch(0)))
    assert torch.equal(xb, data.to_tensor(x[yb.numpy()]))


def test_tinyimagenet_official_layout_val_restructured(tmp_path):
    from PIL import Image
    root = tmp_path / "tiny-imagenet-200"
    wnids = ["n02", "n01"]  # sorted -> n01 is class 0
    (root / "val/images").mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    ann = []
    for k, w in enumerate(sorted(wnids)):
        (root / "train" / w / "images").mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (64, 64), (40 * k, i, 0)).save(root / "train" / w / "images" / f"{w}_{i}.JPEG")
        Image.new("RGB", (64, 64), (200 * k, 0, 0)).save(root / "val/images" / f"val_{k}.JPEG")
        ann.append(f"val_{k}.JPEG\t{w}\t0\t0\t64\t64")
    (root / "val/val_annotations.txt").write_text("\n".join(ann) + "\n")
    x_tr, y_tr, x_te, y_te = data.load_raw("tinyimagenet", tmp_path, download=False)
    assert x_tr.shape == (6, 64, 64, 3) and y_tr.tolist() == [0, 0, 0, 1, 1, 1]
    assert x_te.shape == (2, 64, 64, 3) and y_te.tolist() == [0, 1]
    assert x_te[1, 0, 0, 0] > 150 and x_te[0, 0, 0, 0] < 50  # val image labelled by val_annotations.txt
    with pytest.raises(DataError, match="data.paths.tinyimagenet"):
        data.load_raw("tinyimagenet", tmp_path / "empty", download=False)
