"""Side-by-side speed and precision checks, same run and device, printed as ratios; ``suite`` writes them all.

- ``train``: PGD-10 adversarial training, our path against a plain reference loop written the way the official
  repositories do it (a DataLoader with per-step host transforms, fp32, NCHW, an optimizer without foreach/fused
  kernels and ``.item()`` after every step). Ours is :class:`specrobust.train.Trainer` (GPU-resident data, one sync
  per epoch, fused SGD, channels_last on GPU) in fp32, as the paper config trains, and in bf16 autocast.
- ``autoattack``: AutoAttack standard, pyautoattack's own loop against ours (attack by attack, for the breakdown
  and resumable state); also whether both leave the same images robust.
- ``precision``: a short PGD-AT run of ResNet-18 on real CIFAR-10 (a local npz) in fp32 and in bf16 from the same
  start, each scored by the same fp32 PGD-20: whether bf16 training changes robustness.
- ``suite``: every GPU row of BENCHMARKS.md in one command (``python -m specrobust.bench suite --device cuda
  --data cifar10.npz``), a Markdown table written to ``--out``.

Synthetic images of the data set's shape are used where only speed is measured (the work per image is the same).
"""
from __future__ import annotations

import argparse
import datetime
import time

import numpy as np
import torch
import torch.nn.functional as F

from .attacks import pgd
from .data import Prepared
from .models import build_model
from .objectives import training_inputs
from .registry import dataset_info
from .spec import RunSpec
from .train import Trainer, resolve_device

TRAIN_IMAGES_PER_EPOCH = 45_000   # CIFAR-10's training split after the 9:1 validation cut


def _spec(arch, dataset, precision="fp32", batch_size=128, epochs=1, lr=0.1) -> RunSpec:
    return RunSpec(dataset=dataset, arch=arch, method="pgd_at", base="pgd_at", seed=0, epochs=epochs, lr=lr,
                   milestones=(), momentum=0.9, weight_decay=5e-4, batch_size=batch_size,
                   augment=dataset_info(dataset).augment, eps=8 / 255, val_steps=20, val_step_size=2 / 255,
                   precision=precision, adversarial=True, steps=10, step_size=2 / 255, val_limit=1,
                   arch_options={"c1": 16, "c2": 32, "hidden": 256} if arch == "small_cnn" else {})


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _synthetic(dataset: str, n: int) -> Prepared:
    info = dataset_info(dataset)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, info.size, info.size, info.channels), dtype=np.uint8)
    y = rng.integers(0, info.num_classes, n)
    return Prepared(dataset, x, y, x[:1], y[:1], x[:1], y[:1], np.arange(1), (0.5,) * info.channels,
                    (0.25,) * info.channels, info.num_classes)


def reference_epoch(spec: RunSpec, data: Prepared, device, max_steps: int) -> float:
    """The official repositories' loop: DataLoader + host-side augmentation, fp32, per-step ``.item()``."""
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    model = build_model(spec.arch, data.num_classes, data.channels, data.size, data.mean, data.std,
                        **spec.arch_options).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay,
                          foreach=False)
    x = torch.as_tensor(data.x_train).permute(0, 3, 1, 2).contiguous()
    loader = DataLoader(TensorDataset(x, torch.as_tensor(data.y_train)), batch_size=spec.batch_size, shuffle=True,
                        drop_last=True)
    n, t0 = 0, None
    for step, (xb, yb) in enumerate(loader):
        if step == 2:  # skip warm-up steps
            _sync(device)
            t0, n = time.perf_counter(), 0
        if step >= max_steps + 2:
            break
        xb = xb.float() / 255
        if spec.augment == "crop_flip":  # per-step host transforms, as torchvision transforms do per image
            xb = F.pad(xb, (4, 4, 4, 4))
            i, j = np.random.randint(0, 9, 2)
            xb = xb[:, :, i:i + data.size, j:j + data.size]
        xb, yb = xb.to(device), yb.to(device)
        model.eval()
        x_adv = pgd(model, xb, yb, spec.eps, spec.step_size, spec.steps)
        model.train()
        loss = F.cross_entropy(model(x_adv), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
        n += len(yb)
    _sync(device)
    return n / (time.perf_counter() - t0)


def ours_epoch(spec: RunSpec, data: Prepared, device, max_steps: int) -> float:
    trainer = Trainer(spec, data, device)
    for step, (xb, yb) in enumerate(trainer.batches.epoch(0)):
        if step == 2:
            _sync(device)
            t0, n = time.perf_counter(), 0
        if step >= max_steps + 2:
            break
        with trainer.autocast():
            x_adv = training_inputs(spec.base, trainer.forward_model, xb, yb, spec)
            loss, _, _ = trainer.loss_fn(trainer.forward_model, xb, yb, x_adv, spec)
        trainer.opt.zero_grad(set_to_none=True)
        loss.backward()
        trainer.opt.step()
        if step >= 2:
            n += len(yb)
    _sync(device)
    return n / (time.perf_counter() - t0)


def train_rows(arch: str, dataset: str, device, steps: int, batch_size: int) -> list[dict]:
    """Images/s of the reference loop, ours in fp32 and ours in bf16; the epoch time each implies."""
    data = _synthetic(dataset, batch_size * (steps + 3))
    ref = reference_epoch(_spec(arch, dataset, "fp32", batch_size), data, device, steps)
    rows = [{"what": f"PGD-10 AT epoch, {arch}", "path": "reference loop (fp32)", "images_per_s": ref}]
    for precision in ("fp32", "bf16"):
        ours = ours_epoch(_spec(arch, dataset, precision, batch_size), data, device, steps)
        rows.append({"what": f"PGD-10 AT epoch, {arch}", "path": f"specrobust ({precision})", "images_per_s": ours,
                     "ratio": ours / ref})
    for r in rows:
        r["epoch_minutes"] = TRAIN_IMAGES_PER_EPOCH / r["images_per_s"] / 60
    return rows


def autoattack_throughput(model, x, y, eps, batch_size) -> tuple[float, float, bool]:
    """Images/s of AutoAttack standard: pyautoattack's own loop against ours, fp32 eval mode; and whether both leave
    the same images robust."""
    import logging

    from pyautoattack import AutoAttack

    from .attacks import autoattack
    from .evaluate import fp32_eval

    logging.getLogger("auto-attack").setLevel(logging.WARNING)
    with fp32_eval(model):
        t0 = time.perf_counter()
        aa = AutoAttack(model, eps=eps, norm="Linf", version="standard", seed=0, device=x.device)
        _, y_adv = aa.run_standard_evaluation(x, y, batch_size=batch_size)
        ref = len(x) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        flags, _ = autoattack(model, x, y, eps, seed=0, batch_size=batch_size)
        ours = len(x) / (time.perf_counter() - t0)
    return ref, ours, bool(torch.equal(flags.cpu(), (y_adv == y).cpu()))


def autoattack_rows(arch: str, dataset: str, device, images: int, model=None) -> list[dict]:
    info = dataset_info(dataset)
    if model is None:  # an untrained model: AA's cost per image hardly depends on training, its robust set does
        torch.manual_seed(0)
        model = build_model(arch, info.num_classes, info.channels, info.size, (0.5,) * info.channels,
                            (0.25,) * info.channels).to(device).eval()
    xs = torch.rand(images, info.channels, info.size, info.size, generator=torch.Generator().manual_seed(0))
    ys = torch.randint(0, info.num_classes, (images,), generator=torch.Generator().manual_seed(1))
    ref, ours, same = autoattack_throughput(model, xs.to(device), ys.to(device), 8 / 255, 500)
    what = f"AutoAttack standard, {arch}, {images} images"
    return [{"what": what, "path": "pyautoattack loop", "images_per_s": ref},
            {"what": what, "path": "specrobust", "images_per_s": ours, "ratio": ours / ref,
             "note": f"same robust set: {same}"}]


def precision_rows(data_path: str, device, epochs: int, n_train: int, n_test: int, arch: str = "resnet18",
                   batch_size: int = 128) -> list[dict]:
    """Train the same PGD-AT run in fp32 and in bf16 autocast on real CIFAR-10, score both by fp32 PGD-20 on the same
    test images, and compare them with a paired test: does bf16 training change robustness?"""
    from .data import load_raw, synthetic_images, to_tensor
    from .evaluate import correct_under
    from .stats import paired_difference

    if data_path == "synthetic":
        x, y, xt, yt = synthetic_images("cifar10", n_train, n_test)
    else:
        x, y, xt, yt = load_raw("cifar10", ".", path=data_path)
    x, y, xt, yt = x[:n_train], y[:n_train], xt[:n_test], yt[:n_test]
    mean = tuple((x.reshape(-1, 3) / 255).mean(0).tolist())
    std = tuple((x.reshape(-1, 3) / 255).std(0).tolist())
    data = Prepared("cifar10", x, y, xt[:1], yt[:1], xt, yt, np.arange(len(xt)), mean, std, 10)
    x_test, y_test = to_tensor(xt, device), torch.as_tensor(yt, device=device)
    flags, rows = {}, []
    for precision in ("fp32", "bf16"):
        spec = _spec(arch, "cifar10", precision, batch_size, epochs=epochs, lr=0.1)
        trainer = Trainer(spec, data, device)
        t0 = time.perf_counter()
        for _ in range(epochs):
            trainer.train_epoch()
        _sync(device)
        seconds = time.perf_counter() - t0
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            clean = correct_under(trainer.model.eval(), x_test, y_test, lambda m, xb, yb: xb, 500)
        flags[precision] = correct_under(
            trainer.model.eval(), x_test, y_test,
            lambda m, xb, yb: pgd(m, xb, yb, 8 / 255, 2 / 255, 20, generator=g), 500).numpy()
        rows.append({"what": f"{arch} PGD-AT, {epochs} epochs on {len(x)} CIFAR-10 images", "path": precision,
                     "clean": 100 * clean.float().mean().item(), "pgd20": 100 * flags[precision].mean(),
                     "train_seconds": seconds})
    d = paired_difference(flags["bf16"], flags["fp32"])
    rows[-1]["note"] = (f"bf16 - fp32 PGD-20: {d['diff']:+.2f} points [{d['ci95'][0]:+.2f}, {d['ci95'][1]:+.2f}], "
                        f"McNemar p = {d['p_mcnemar']:.3g}, {len(flags['fp32'])} test images")
    return rows


def markdown(rows: list[dict], device_name: str, command: str) -> str:
    today = datetime.date.today().isoformat()
    lines = [f"Measured {today} on {device_name}: `{command}`", "",
             "| measurement | path | images/s | ratio | epoch (min, 45k images) | clean % | PGD-20 % | note |",
             "|---|---|---|---|---|---|---|---|"]
    fmt = lambda r, k, f: format(r[k], f) if k in r else ""  # noqa: E731
    for r in rows:
        lines.append(f"| {r['what']} | {r['path']} | {fmt(r, 'images_per_s', '.1f')} | {fmt(r, 'ratio', '.2f')}"
                     f"{'x' if 'ratio' in r else ''} | {fmt(r, 'epoch_minutes', '.2f')} | {fmt(r, 'clean', '.2f')} | "
                     f"{fmt(r, 'pgd20', '.2f')} | {r.get('note', '')} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m specrobust.bench", description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["train", "autoattack", "precision", "suite"])
    p.add_argument("--arch", default="small_cnn")
    p.add_argument("--dataset", default="fashionmnist")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=["bf16", "fp32"])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=20, help="timed optimizer steps per path")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--images", type=int, default=1000, help="autoattack: test images attacked")
    p.add_argument("--data", default="synthetic", help="precision/suite: a CIFAR-10 .npz (x_train, y_train, x_test, "
                                                       "y_test, or the JPEG form) or 'synthetic'")
    p.add_argument("--epochs", type=int, default=3, help="precision: epochs of the short run")
    p.add_argument("--train-images", type=int, default=10_000)
    p.add_argument("--test-images", type=int, default=1000)
    p.add_argument("--out", default="bench_results.md", help="suite: the Markdown table written")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    device = resolve_device(a.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{torch.get_num_threads()} threads"
    if a.what == "suite":
        cpu = device.type == "cpu"   # a CPU run of the suite only checks that it works: tiny sizes
        rows = []
        for arch in ("resnet18", "wrn34_10"):
            rows += train_rows(arch, "cifar10", device, 1 if cpu else a.steps, 2 if cpu else a.batch_size)
            print(markdown(rows[-3:], name, "suite"), flush=True)
        rows += precision_rows(a.data, device, 1 if cpu else a.epochs, 64 if cpu else a.train_images,
                               32 if cpu else a.test_images, "small_cnn" if cpu else "resnet18",
                               16 if cpu else a.batch_size)
        rows += autoattack_rows("small_cnn" if cpu else "resnet18", "cifar10", device, 8 if cpu else a.images)
        text = markdown(rows, name, "python -m specrobust.bench " + " ".join(argv or []))
        with open(a.out, "w") as f:
            f.write(text)
        print(text)
        return rows
    if a.what == "precision":
        rows = precision_rows(a.data, device, a.epochs, a.train_images, a.test_images, a.arch, a.batch_size)
        print(markdown(rows, name, "precision"))
        return rows
    if a.what == "autoattack":
        rows = autoattack_rows(a.arch, a.dataset, device, a.images)
        print(f"AutoAttack standard, {a.arch}, {a.images} images, {name}; {rows[1]['note']}")
        print(f"pyautoattack loop : {rows[0]['images_per_s']:9.2f} images/s")
        print(f"specrobust        : {rows[1]['images_per_s']:9.2f} images/s")
        print(f"ratio             : {rows[1]['ratio']:9.2f}x")
        return rows[1]["ratio"]
    data = _synthetic(a.dataset, a.batch_size * (a.steps + 3))
    ref = reference_epoch(_spec(a.arch, a.dataset, "fp32", a.batch_size), data, device, a.steps)
    ours = ours_epoch(_spec(a.arch, a.dataset, a.precision, a.batch_size), data, device, a.steps)
    print(f"PGD-10 AT, {a.arch} on {a.dataset}-shaped data, batch {a.batch_size}, {a.steps} timed steps, {name}")
    print(f"reference loop : {ref:9.1f} images/s")
    print(f"specrobust     : {ours:9.1f} images/s ({a.precision})")
    print(f"ratio          : {ours / ref:9.2f}x")
    return ours / ref


if __name__ == "__main__":
    main()
