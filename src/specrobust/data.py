"""Datasets: real loaders, one seeded 9:1 train/validation split, and a GPU-resident batch iterator.

Raw data comes through torchvision's download and checksum where torchvision has the data set (CIFAR-10/100,
SVHN, MNIST, Fashion-MNIST), the official zip for Tiny ImageNet, or a local copy named in config
(``data.paths.<dataset>``). Preparation turns any of them into one ``.npz`` of uint8 NHWC arrays with a fixed
split, so every method of a study sees exactly the same images.

Restricted ImageNet (Tsipras et al. 2019; smooth-kernel paper, Table 1) is too large to hold in memory: it needs a
local ImageNet in ImageFolder layout, its ``.npz`` is an index (file names, labels, the same kind of fixed split),
and images are decoded on demand (``ImageFiles``) or streamed by worker processes while training (``StreamBatches``).
"""
from __future__ import annotations

import gzip
import io
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .io import DataError, atomic_savez
from .registry import AUGMENTATIONS, CLASS_NAMES, dataset_info

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
TINY_IMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
TINY_IMAGENET_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"



# Restricted ImageNet: 9 super-classes, each a range of ImageNet class indices (inclusive; an index is the position of
# the WNID in the sorted list of the 1,000 WNIDs, as torchvision's ImageFolder numbers them). Tsipras et al. 2019,
# the robustness library (MadryLab) that the smooth-kernel paper used.
RESTRICTED_IMAGENET_RANGES = ((151, 268), (281, 285), (30, 32), (33, 37), (80, 100), (365, 382), (389, 397),
                              (118, 121), (300, 319))
RESTRICTED_IMAGENET_CLASSES = CLASS_NAMES["restricted_imagenet"]
# The robustness library's normalization for Restricted ImageNet (0.2575 is the "standard deviation" that the
# smooth-kernel paper's Appendix A divides by); also the statistics its pretrained robust ResNet-50 expects.
RESTRICTED_IMAGENET_MEAN = (0.4717, 0.4499, 0.3837)
RESTRICTED_IMAGENET_STD = (0.2600, 0.2516, 0.2575)
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


# ----------------------------------------------------------------------------------------------- raw loaders
def _offline_hint(name: str, root: Path) -> str:
    return (f"data set {name!r} is not on disk under {root}; let rule download_dataset fetch it (config "
            f"data.download: true, on a machine with internet), or set config key data.paths.{name} to a local copy")


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


def download(name: str, root: str | Path) -> Path:
    """Fetch a data set into ``root`` (torchvision's download and checksum, Tiny ImageNet's official zip), on the
    machine with the internet (rule download_dataset); the compute jobs then read it with ``download=False``."""
    if name == "restricted_imagenet":
        raise DataError("restricted_imagenet cannot be downloaded; set config key data.paths.restricted_imagenet")
    load_raw(name, root, download=True)
    return DEBIAN_FASHION_MNIST if name == "fashionmnist" and DEBIAN_FASHION_MNIST.is_dir() else Path(root)


def synthetic_images(name: str, n_train: int, n_test: int, seed: int = 0):
    """Stand-in data of a data set's real shape and class count (smoke runs of the paper config): each class
    brightens its own band of rows over uniform noise, so models can learn it. Same return as :func:`load_raw`."""
    info = dataset_info(name)

    def draw(n, s):
        rng = np.random.default_rng(s)
        y = np.arange(n) % info.num_classes
        rng.shuffle(y)
        x = rng.integers(0, 90, (n, info.size, info.size, info.channels)).astype(np.uint8)
        rows = (y * info.size) // info.num_classes
        for i, r in enumerate(rows):
            x[i, r:r + max(2, info.size // 8)] = 220
        return x, y.astype(np.int64)

    return (*draw(n_train, seed), *draw(n_test, seed + 1))


def generate_imagefolder(root: Path, per_class: int, seed: int = 0, size: int = 64) -> Path:
    """A stand-in ImageNet in ImageFolder layout: all 1,000 WNID folders in train/ and val/, JPEGs in the first
    WNID of every Restricted ImageNet class and in two other classes (which the index must leave out)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    wnids = [f"n{i:08d}" for i in range(1000)]
    filled = {lo: label for label, (lo, _) in enumerate(RESTRICTED_IMAGENET_RANGES)} | {0: None, 999: None}
    for split, n in (("train", per_class), ("val", max(1, per_class // 2))):
        for i, w in enumerate(wnids):
            folder = root / split / w
            folder.mkdir(parents=True, exist_ok=True)
            if i not in filled:
                continue
            for j in range(n):
                pixels = rng.integers(0, 90, (size, size, 3)).astype(np.uint8)
                pixels[((filled[i] or 0) * size) // 9:][: size // 8] = 220
                Image.fromarray(pixels).save(folder / f"{w}_{j}.JPEG", quality=90)
    return root


def restricted_imagenet_label(class_index: int) -> int | None:
    """The Restricted ImageNet label (0..8) of an ImageNet class index, or None for the 789 other classes."""
    for label, (lo, hi) in enumerate(RESTRICTED_IMAGENET_RANGES):
        if lo <= class_index <= hi:
            return label
    return None


def _imagefolder_split(root: Path, split: str) -> tuple[list[str], np.ndarray, list[str]]:
    """(file paths relative to ``root``, Restricted ImageNet labels, all WNIDs) of ``root/split/<wnid>/*``."""
    folder = root / split
    if not folder.is_dir():
        raise DataError(f"data.paths.restricted_imagenet = {str(root)!r} has no {split}/ folder; it must be an "
                        f"ImageNet (ILSVRC2012) copy in ImageFolder layout: train/<wnid>/*.JPEG, val/<wnid>/*.JPEG")
    wnids = sorted(d.name for d in folder.iterdir() if d.is_dir())
    if len(wnids) != 1000:
        loose = sum(1 for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        hint = (f" ({loose} loose images: sort the validation images into one folder per WNID first, e.g. with "
                f"the usual valprep.sh)" if loose else "")
        raise DataError(f"{folder} has {len(wnids)} class folders, expected the 1000 ImageNet WNIDs (class indices "
                        f"are positions in their sorted list){hint}")
    files, labels = [], []
    for index, wnid in enumerate(wnids):
        label = restricted_imagenet_label(index)
        if label is None:
            continue
        for f in sorted((folder / wnid).iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                files.append(f"{split}/{wnid}/{f.name}")
                labels.append(label)
    if not files:
        raise DataError(f"{folder} holds no images in the Restricted ImageNet classes")
    return files, np.asarray(labels, np.int64), wnids


def _prepare_restricted_imagenet(out, path, val_fraction, split_seed, train_limit, val_limit, test_limit) -> dict:
    """Write the index ``.npz``: the ImageNet root, relative file names and labels per split. The test set is the
    ImageNet validation set in one seeded order, so the first N test images are a uniform sample of all classes."""
    if not path:
        raise DataError("restricted_imagenet needs a local ImageNet (ILSVRC2012) in ImageFolder layout "
                        "(train/<wnid>/*.JPEG, val/<wnid>/*.JPEG); it cannot be downloaded. Set config key "
                        "data.paths.restricted_imagenet to its folder")
    root = Path(path).resolve()
    if not root.is_dir():
        raise DataError(f"data.paths.restricted_imagenet = {path!r} is not a folder")
    train_files, y_train_all, wnids = _imagefolder_split(root, "train")
    test_files, y_test_all, val_wnids = _imagefolder_split(root, "val")
    if wnids != val_wnids:
        raise DataError(f"{root}/train and {root}/val have different class folders")
    tr, va = split_indices(len(train_files), val_fraction, split_seed)
    tr, va = _limit(tr, train_limit, split_seed + 1), _limit(va, val_limit, split_seed + 2)
    te = np.random.default_rng(split_seed + 3).permutation(len(test_files))
    te = te if test_limit is None else te[:test_limit]
    train_files, test_files = np.asarray(train_files), np.asarray(test_files)
    arrays = dict(root=np.asarray(str(root)), files_train=train_files[tr], y_train=y_train_all[tr],
                  files_val=train_files[va], y_val=y_train_all[va], files_test=test_files[te], y_test=y_test_all[te],
                  train_index=tr, val_index=va, test_index=te,
                  mean=np.asarray(RESTRICTED_IMAGENET_MEAN, np.float32),
                  std=np.asarray(RESTRICTED_IMAGENET_STD, np.float32),
                  num_classes=np.int64(len(RESTRICTED_IMAGENET_RANGES)), split_seed=np.int64(split_seed))
    atomic_savez(out, **arrays)
    return {"train": len(tr), "val": len(va), "test": len(te)}


class ImageFiles:
    """Images on disk, decoded on demand to uint8 NHWC at ``size`` (shorter side resized to ``size * 8/7``, then a
    centre crop: the ImageNet test transform, 256 -> 224). Slicing gives a lazy view; ``decode()`` reads the pixels
    with a thread pool (PIL releases the GIL while decoding)."""

    def __init__(self, root, files, size: int = 224):
        self.root, self.files, self.size = Path(root), np.asarray(files), size

    def __len__(self):
        return len(self.files)

    @property
    def shape(self) -> tuple:
        return (len(self.files), self.size, self.size, 3)

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            return self.load(int(index))
        return ImageFiles(self.root, self.files[index], self.size)

    def open(self, i: int):
        from PIL import Image
        try:
            with Image.open(self.root / str(self.files[i])) as im:
                return im.convert("RGB")
        except OSError as err:
            raise DataError(f"cannot read image {self.root / str(self.files[i])}: {err}") from None

    def load(self, i: int) -> np.ndarray:
        import torchvision.transforms as T
        return np.asarray(T.Compose(eval_crop(self.size))(self.open(i)), dtype=np.uint8)

    def decode(self) -> np.ndarray:
        if not len(self):
            return np.zeros(self.shape, np.uint8)
        with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:
            return np.stack(list(pool.map(self.load, range(len(self)))))


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


def prepare(name: str, out: str | Path, root: str | Path | None = "data", path: str | None = None,
            synthetic: dict | None = None, val_fraction: float = 0.1, split_seed: int = 0,
            train_limit: int | None = None, val_limit: int | None = None, test_limit: int | None = None,
            shapes: dict | None = None) -> dict:
    """Write the prepared data set (fixed split, optional seeded subsets) to ``out`` and return its summary. The raw
    data is a local copy (``path``), what rule download_dataset put into ``root``, generated stand-in data
    (``synthetic = {train: N, test: M}``; for Restricted ImageNet an ImageFolder beside ``out``), or for ``shapes``
    the four-shapes images drawn with the split seed (``shapes = {train: N, test: M}``). Never downloads."""
    info = dataset_info(name)
    if name == "restricted_imagenet":
        if synthetic:
            path = generate_imagefolder(Path(out).with_name(Path(out).stem + "_images"),
                                        max(2, int(synthetic["train"]) // 9), split_seed)
        return _prepare_restricted_imagenet(out, path, val_fraction, split_seed, train_limit, val_limit, test_limit)
    if synthetic:
        x_tr, y_tr, x_te, y_te = synthetic_images(name, int(synthetic["train"]), int(synthetic["test"]), split_seed)
    elif name == "shapes":
        from .shapes import shapes_raw
        n = shapes or {}
        x_tr, y_tr, x_te, y_te = shapes_raw(int(n.get("train", 8000)), int(n.get("test", 2000)), info.size,
                                            split_seed)
    else:
        x_tr, y_tr, x_te, y_te = load_raw(name, root or "data", False, path)
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
    """A prepared data set (uint8 NHWC arrays, or ``ImageFiles`` for Restricted ImageNet) plus what the model needs
    to know about it."""
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
    if "root" in a:  # an index over image files (Restricted ImageNet)
        root = str(a["root"])
        a.update({f"x_{k}": ImageFiles(root, a[f"files_{k}"]) for k in ("train", "val", "test")})
    return Prepared(name or path.stem, a["x_train"], a["y_train"], a["x_val"], a["y_val"], a["x_test"],
                    a["y_test"], a["test_index"], tuple(a["mean"].tolist()), tuple(a["std"].tolist()),
                    int(a["num_classes"]))


def to_tensor(x: np.ndarray | torch.Tensor | ImageFiles, device="cpu") -> torch.Tensor:
    """uint8 NHWC (or image files, decoded here) -> float NCHW in [0, 1]."""
    if isinstance(x, ImageFiles):
        x = x.decode()
    x = torch.as_tensor(x, device=device)
    return x.permute(0, 3, 1, 2).float().div_(255.0).contiguous()  # contiguous: AutoAttack views its inputs


class DeviceBatches:
    """Shuffled, augmented mini-batches from uint8 images kept on the training device.

    All randomness of an epoch (order, crop offsets, flips) is drawn at once from a CPU generator seeded by
    (seed, epoch), so there is no host work or synchronisation per step and a resumed run sees the same batches.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, augment: str, device, seed: int,
                 drop_last: bool = True, pad: int = 4, channels_last: bool = False):
        if augment not in ("crop_flip", "flip", "none"):
            raise ValueError(f"augment must be crop_flip, flip or none for in-memory data, not {augment!r}")
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


# The ImageNet PCA lighting noise of AlexNet (Krizhevsky et al. 2012), part of the robustness library's ImageNet
# training transform: eigenvalues and eigenvectors of the RGB covariance.
LIGHTING_EIGVAL = (0.2175, 0.0188, 0.0045)
LIGHTING_EIGVEC = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140), (-0.5836, -0.6948, 0.4203))


def eval_crop(size: int) -> list:
    """The ImageNet test transform: shorter side to ``size * 8/7`` (256 for 224), then the centre ``size`` square."""
    import torchvision.transforms as T
    return [T.Resize(round(size * 8 / 7)), T.CenterCrop(size)]


def stream_transform(augment: str, size: int):
    """PIL -> uint8 CHW tensor. ``imagenet`` is the robustness library's ImageNet training transform (random resized
    crop, flip, colour jitter 0.1; the lighting noise is added on the device, see ``StreamBatches``)."""
    import torchvision.transforms as T

    resize = eval_crop(size)
    steps = {"imagenet": [T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.ColorJitter(0.1, 0.1, 0.1)],
             "flip": resize + [T.RandomHorizontalFlip()],
             "crop_flip": resize + [T.RandomCrop(size, padding=4), T.RandomHorizontalFlip()],
             "none": resize}
    if augment not in steps:
        raise ValueError(f"augment must be one of {AUGMENTATIONS}, not {augment!r}")
    return T.Compose(steps[augment] + [T.PILToTensor()])


class _Decoded(torch.utils.data.Dataset):
    """Image i of an epoch is transformed under its own seed (epoch_seed, i): the same pixels whatever the number of
    loader processes, and the training RNG stream is never touched."""

    def __init__(self, files: ImageFiles, labels: np.ndarray, augment: str):
        self.files, self.labels, self.transform = files, labels, stream_transform(augment, files.size)
        self.epoch_seed = 0

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        image = self.files.open(i)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.epoch_seed * 10_000_019 + int(i))
            return self.transform(image), int(self.labels[i])


class StreamBatches:
    """``DeviceBatches`` for data sets that do not fit in memory: ``workers`` processes decode and augment, the main
    process moves uint8 batches to the device. The order and every random transform of an epoch are seeded by
    (seed, epoch), so a resumed run sees the same batches."""

    def __init__(self, x: ImageFiles, y: np.ndarray, batch_size: int, augment: str, device, seed: int,
                 drop_last: bool = True, channels_last: bool = False, workers: int = 0):
        self.x, self.y = x, np.asarray(y)
        self.n, self.batch_size, self.augment, self.device, self.seed = len(x), batch_size, augment, device, seed
        self.drop_last, self.channels_last, self.workers = drop_last, channels_last, workers
        self.dataset = _Decoded(x, self.y, augment)

    def __len__(self):
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def epoch(self, epoch: int):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        self.dataset.epoch_seed = self.seed * 1_000_003 + epoch
        device = torch.device(self.device)
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=self.batch_size, shuffle=True, generator=g, drop_last=self.drop_last,
            num_workers=self.workers, pin_memory=device.type == "cuda", persistent_workers=False)
        light = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) ^ 0x5EED)  # lighting noise
        eigval = torch.tensor(LIGHTING_EIGVAL, device=device)
        eigvec = torch.tensor(LIGHTING_EIGVEC, device=device)
        for xb, yb in loader:
            xb = xb.to(device, non_blocking=True).float().div_(255.0)
            if self.augment == "imagenet":  # PCA lighting noise, alpha ~ N(0, 0.05); clipped to the valid box
                alpha = torch.randn(len(xb), 3, generator=light).to(device) * 0.05
                xb = (xb + ((alpha * eigval) @ eigvec.T)[:, :, None, None]).clamp_(0, 1)
            if self.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            yield xb, yb.to(device, non_blocking=True)


def make_batches(x, y, batch_size: int, augment: str, device, seed: int, drop_last: bool = True,
                 channels_last: bool = False, workers: int = 0):
    """The batch iterator that suits the data: GPU-resident arrays, or streamed image files."""
    if isinstance(x, ImageFiles):
        return StreamBatches(x, y, batch_size, augment, device, seed, drop_last, channels_last, workers)
    return DeviceBatches(x, y, batch_size, augment, device, seed, drop_last, channels_last=channels_last)
