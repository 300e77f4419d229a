"""Datasets: real loaders, one seeded 9:1 train/validation split, and a GPU-resident batch iterator.

Raw data comes through torchvision's download and checksum where torchvision has the data set (CIFAR-10/100,
SVHN, MNIST, Fashion-MNIST), the official zip for Tiny ImageNet, or a local copy named in config
(``data.paths.<dataset>``). Preparation turns any of them into one ``.npz`` of uint8 NHWC arrays with a fixed
split, so every method of a study sees exactly the same images.
"""
from __future__ import annotations

import gzip
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .io import atomic_savez, DataError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
TINY_IMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
TINY_IMAGENET_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"


@dataclass(frozen=True)
class DatasetInfo:
    num_classes: int
    channels: int
    size: int
    augment: str  # default augmentation of the papers: "crop_flip", "flip" or "none"


DATASETS = {
    "cifar10": DatasetInfo(10, 3, 32, "crop_flip"),
    "cifar100": DatasetInfo(100, 3, 32, "crop_flip"),
    "svhn": DatasetInfo(10, 3, 32, "none"),
    "tinyimagenet": DatasetInfo(200, 3, 64, "flip"),
    "mnist": DatasetInfo(10, 1, 28, "none"),
    "fashionmnist": DatasetInfo(10, 1, 28, "none"),
}


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


# ----------------------------------------------------------------------------------------------- raw loaders
def _offline_hint(name: str, root: Path) -> str:
    return (f"data set {name!r} is not on disk under {root} and could not be downloaded; "
            f"download it there, or set config key data.paths.{name} to a local copy")


def _torchvision(name: str, root: Path, download: bool):
    """Load through torchvision (download + md5 check); returns NHWC uint8 arrays."""
    import torchvision.datasets as tvd

    def get(split_train: bool):
        if name in ("cifar10", "cifar100"):
            cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
            ds = cls(str(root), train=split_train, download=download)
            return np.asarray(ds.data, dtype=np.uint8), np.asarray(ds.targets, dtype=np.int64)
        if name == "svhn":
            ds = tvd.SVHN(str(root), split="train" if split_train else "test", download=download)
            return np.ascontiguousarray(ds.data.transpose(0, 2, 3, 1)), np.asarray(ds.labels, dtype=np.int64)
        cls = tvd.MNIST if name == "mnist" else tvd.FashionMNIST
        ds = cls(str(root), train=split_train, download=download)
        return ds.data.numpy()[..., None], ds.targets.numpy().astype(np.int64)

    try:
        return (*get(True), *get(False))
    except (RuntimeError, OSError) as err:  # torchvision: "Dataset not found", URLError is an OSError
        raise DataError(f"{_offline_hint(name, root)} ({type(err).__name__}: {err})") from None


def _read_idx(path: Path) -> np.ndarray:
    """Read one (optionally gzipped) IDX file, the MNIST family's format."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
        ndim = raw[3]
        shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
        return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)
    except (OSError, EOFError, ValueError, IndexError) as err:
        raise DataError(f"cannot read IDX file {path}: {err}") from None


def _idx_dir(folder: Path):
    def find(stem):
        for cand in (folder / f"{stem}.gz", folder / stem):
            if cand.exists():
                return cand
        raise DataError(f"{folder} has no {stem}(.gz)")
    x_tr = _read_idx(find("train-images-idx3-ubyte"))[..., None]
    y_tr = _read_idx(find("train-labels-idx1-ubyte")).astype(np.int64)
    x_te = _read_idx(find("t10k-images-idx3-ubyte"))[..., None]
    y_te = _read_idx(find("t10k-labels-idx1-ubyte")).astype(np.int64)
    return x_tr, y_tr, x_te, y_te


def _decode_images(blob: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    from PIL import Image
    return np.stack([np.asarray(Image.open(io.BytesIO(blob[offsets[i]:offsets[i + 1]].tobytes())).convert("RGB"))
                     for i in range(len(offsets) - 1)])


def _npz(path: Path):
    """A local archive: plain arrays x_train/y_train/x_test/y_test, or JPEG bytes with offsets."""
    try:
        z = np.load(path)
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read data file {path}: {err}") from None
    keys = set(z.files)
    if {"x_train", "y_train", "x_test", "y_test"} <= keys:
        return z["x_train"], z["y_train"].astype(np.int64), z["x_test"], z["y_test"].astype(np.int64)
    if {"train_jpeg", "train_offsets", "train_labels", "test_jpeg", "test_offsets", "test_labels"} <= keys:
        return (_decode_images(z["train_jpeg"], z["train_offsets"]), z["train_labels"].astype(np.int64),
                _decode_images(z["test_jpeg"], z["test_offsets"]), z["test_labels"].astype(np.int64))
    raise DataError(f"{path}: expected arrays x_train, y_train, x_test, y_test (or *_jpeg/*_offsets/*_labels), "
                    f"found {sorted(keys)}")


def _tinyimagenet(root: Path, download: bool):
    """Official zip; its labelled val folder (restructured by val_annotations.txt) is the test set."""
    from PIL import Image
    folder = root / "tiny-imagenet-200"
    if not folder.exists():
        archive = root / "tiny-imagenet-200.zip"
        if not archive.exists():
            if not download:
                raise DataError(_offline_hint("tinyimagenet", root))
            from torchvision.datasets.utils import download_url
            try:
                download_url(TINY_IMAGENET_URL, str(root), md5=TINY_IMAGENET_MD5)
            except (RuntimeError, OSError) as err:
                raise DataError(f"{_offline_hint('tinyimagenet', root)} ({err})") from None
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(root)
        except zipfile.BadZipFile:
            raise DataError(f"corrupted archive {archive}; delete it and download again") from None
    wnids = sorted((folder / "wnids.txt").read_text().split())
    label = {w: i for i, w in enumerate(wnids)}
    load = lambda p: np.asarray(Image.open(p).convert("RGB"), dtype=np.uint8)  # noqa: E731
    xs, ys = [], []
    for w in wnids:
        for p in sorted((folder / "train" / w / "images").glob("*.JPEG")):
            xs.append(load(p))
            ys.append(label[w])
    xt, yt = [], []
    for line in (folder / "val" / "val_annotations.txt").read_text().splitlines():
        name, w = line.split("\t")[:2]
        xt.append(load(folder / "val" / "images" / name))
        yt.append(label[w])
    return np.stack(xs), np.array(ys, np.int64), np.stack(xt), np.array(yt, np.int64)


def load_raw(name: str, root: str | Path, download: bool = True, path: str | None = None):
    """Return (x_train, y_train, x_test, y_test) as uint8 NHWC and int64 arrays."""
    dataset_info(name)
    root = Path(root)
    if path:
        p = Path(path)
        if not p.exists():
            raise DataError(f"data.paths.{name} = {path!r} does not exist")
        if p.is_file():
            return _npz(p)
        if name in ("mnist", "fashionmnist") and any(p.glob("*idx3-ubyte*")):
            return _idx_dir(p)
        root, download = p, False
    if name == "fashionmnist" and not path and DEBIAN_FASHION_MNIST.is_dir():
        return _idx_dir(DEBIAN_FASHION_MNIST)
    if name == "tinyimagenet":
        return _tinyimagenet(root, download)
    root.mkdir(parents=True, exist_ok=True)
    return _torchvision(name, root, download)


# ---------------------------------------------------------------------------------------------- preparation
def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded permutation cut 9:1; the same (n, fraction, seed) always gives the same split."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _limit(idx: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """A seeded subset (kept in index order) so quick runs still see every class."""
    if limit is None or limit >= len(idx):
        return idx
    return np.sort(np.random.default_rng(seed).choice(idx, size=limit, replace=False))


def prepare(name: str, out: str | Path, root: str | Path = "data", download: bool = True, path: str | None = None,
            val_fraction: float = 0.1, split_seed: int = 0, train_limit: int | None = None,
            val_limit: int | None = None, test_limit: int | None = None) -> dict:
    """Write the prepared data set (fixed split, optional seeded subsets) to ``out`` and return its summary."""
    info = dataset_info(name)
    x_tr, y_tr, x_te, y_te = load_raw(name, root, download, path)
    if x_tr.ndim != 4 or x_tr.shape[1:] != (info.size, info.size, info.channels):
        raise DataError(f"{name}: expected images of shape (N, {info.size}, {info.size}, {info.channels}), "
                        f"got {x_tr.shape}")
    tr, va = split_indices(len(x_tr), val_fraction, split_seed)
    tr, va = _limit(tr, train_limit, split_seed + 1), _limit(va, val_limit, split_seed + 2)
    te = np.arange(len(x_te)) if test_limit is None else np.arange(min(test_limit, len(x_te)))
    x_fit = x_tr[tr].astype(np.float64) / 255.0
    mean, std = x_fit.mean(axis=(0, 1, 2)), x_fit.std(axis=(0, 1, 2))
    arrays = dict(x_train=x_tr[tr], y_train=y_tr[tr], x_val=x_tr[va], y_val=y_tr[va], x_test=x_te[te],
                  y_test=y_te[te], train_index=tr, val_index=va, test_index=te,
                  mean=mean.astype(np.float32), std=std.astype(np.float32),
                  num_classes=np.int64(info.num_classes), split_seed=np.int64(split_seed))
    atomic_savez(out, **arrays)
    return {k: len(arrays[f"x_{k}"]) for k in ("train", "val", "test")}


@dataclass
class Prepared:
    """A prepared data set in memory (uint8 NHWC) plus what the model needs to know about it."""
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_index: np.ndarray
    mean: tuple
    std: tuple
    num_classes: int

    @property
    def channels(self) -> int:
        return self.x_train.shape[-1]

    @property
    def size(self) -> int:
        return self.x_train.shape[1]


def load_prepared(path: str | Path, name: str | None = None) -> Prepared:
    path = Path(path)
    try:
        z = np.load(path)
        a = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"cannot read prepared data {path}: {err}; delete it and rerun prepare_dataset") from None
    return Prepared(name or path.stem, a["x_train"], a["y_train"], a["x_val"], a["y_val"], a["x_test"],
                    a["y_test"], a["test_index"], tuple(a["mean"].tolist()), tuple(a["std"].tolist()),
                    int(a["num_classes"]))


def to_tensor(x: np.ndarray | torch.Tensor, device="cpu") -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [0, 1]."""
    x = torch.as_tensor(x, device=device)
    return x.permute(0, 3, 1, 2).float().div_(255.0)


class DeviceBatches:
    """Shuffled, augmented mini-batches from uint8 images kept on the training device.

    All randomness of an epoch (order, crop offsets, flips) is drawn at once from a CPU generator seeded by
    (seed, epoch), so there is no host work or synchronisation per step and a resumed run sees the same batches.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, augment: str, device, seed: int,
                 drop_last: bool = True, pad: int = 4, channels_last: bool = False):
        if augment not in ("crop_flip", "flip", "none"):
            raise ValueError(f"augment must be crop_flip, flip or none, not {augment!r}")
        self.x = torch.as_tensor(x, device=device)
        self.y = torch.as_tensor(y, device=device)
        self.n, self.h, self.w = self.x.shape[0], self.x.shape[1], self.x.shape[2]
        self.batch_size, self.augment, self.device, self.seed = batch_size, augment, device, seed
        self.drop_last, self.pad, self.channels_last = drop_last, pad, channels_last
        if augment == "crop_flip":
            self.x_pad = torch.nn.functional.pad(self.x, (0, 0, pad, pad, pad, pad))  # zero pad H and W (NHWC)

    def __len__(self):
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def epoch(self, epoch: int):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(self.n, generator=g).to(self.device)
        if self.augment == "crop_flip":
            off = torch.randint(0, 2 * self.pad + 1, (self.n, 2), generator=g).to(self.device)
        if self.augment != "none":
            flip = (torch.rand(self.n, generator=g) < 0.5).to(self.device)
        ar_h = torch.arange(self.h, device=self.device)
        ar_w = torch.arange(self.w, device=self.device)
        for b in range(len(self)):
            idx = perm[b * self.batch_size:(b + 1) * self.batch_size]
            if self.augment == "crop_flip":
                rows = (off[idx, 0, None] + ar_h)[:, :, None]
                cols = (off[idx, 1, None] + ar_w)[:, None, :]
                xb = self.x_pad[idx[:, None, None], rows, cols]
            else:
                xb = self.x[idx]
            if self.augment != "none":
                xb = torch.where(flip[idx, None, None, None], xb.flip(2), xb)
            xb = xb.permute(0, 3, 1, 2).float().div_(255.0)
            if self.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            yield xb, self.y[idx]
