"""Side-by-side speed, same run and device: PGD-10 adversarial training (our path against a plain reference loop),
and AutoAttack throughput (``python -m specrobust.bench autoattack``: pyautoattack's loop against ours).

``python -m specrobust.bench train --arch resnet18 --device cuda`` (or ``--arch small_cnn --device cpu``). The
reference is written the way the official repositories do it: a DataLoader with per-step host transforms, fp32,
NCHW, an optimizer without foreach/fused kernels and ``.item()`` after every step. Ours is :class:`Trainer`
(GPU-resident data, bf16 autocast and channels_last on GPU, fused SGD, one sync per epoch). Synthetic images of the
data set's shape are used so the benchmark needs no download; the work per image is the same.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from .attacks import pgd
from .data import Prepared, dataset_info
from .models import build_model
from .objectives import training_inputs
from .spec import RunSpec
from .train import Trainer, resolve_device


def _spec(arch, dataset, device, precision, batch_size) -> RunSpec:
    return RunSpec(dataset=dataset, arch=arch, method="pgd_at", base="pgd_at", fr="none", seed=0, swa=False,
                   awp=False, sk=False, epochs=1, lr=0.1, milestones=(), momentum=0.9, weight_decay=5e-4,
                   batch_size=batch_size, augment=dataset_info(dataset).augment, eps=8 / 255, step_size=2 / 255,
                   steps=10, bn_mode="eval", fr_lambda=0.1, fr_distance="l1", fr_fft="batch2d", val_steps=20,
                   val_limit=1, train_limit=None, precision=precision,
                   channels_last="auto", compile=False, device=device,
                   arch_options={"c1": 16, "c2": 32, "hidden": 256} if arch == "small_cnn" else {})


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


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
    batches = trainer.batches
    for step, (xb, yb) in enumerate(batches.epoch(0)):
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


def autoattack_throughput(model, x, y, eps, batch_size) -> tuple[float, float, bool]:
    """Images/s of AutoAttack standard: pyautoattack's own loop against ours (attack by attack, for the breakdown
    and resumable state), fp32 eval mode; also whether both leave the same images robust."""
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


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m specrobust.bench", description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["train", "autoattack"])
    p.add_argument("--arch", default="small_cnn")
    p.add_argument("--dataset", default="fashionmnist")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=20, help="timed optimizer steps per path")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--images", type=int, default=1000, help="autoattack: test images attacked")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    device = resolve_device(a.device)
    info = dataset_info(a.dataset)
    n = a.batch_size * (a.steps + 3)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, info.size, info.size, info.channels), dtype=np.uint8)
    y = rng.integers(0, info.num_classes, n)
    data = Prepared(a.dataset, x, y, x[:1], y[:1], x[:1], y[:1], np.arange(1), (0.5,) * info.channels,
                    (0.25,) * info.channels, info.num_classes)
    spec = _spec(a.arch, a.dataset, a.device, a.precision, a.batch_size)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{torch.get_num_threads()} threads"
    if a.what == "autoattack":  # an untrained model of the arch: AA's cost per image hardly depends on training
        torch.manual_seed(0)
        model = build_model(a.arch, info.num_classes, info.channels, info.size, data.mean, data.std,
                            **spec.arch_options).to(device).eval()
        xs = torch.rand(a.images, info.channels, info.size, info.size, generator=torch.Generator().manual_seed(0))
        ys = torch.randint(0, info.num_classes, (a.images,), generator=torch.Generator().manual_seed(1))
        ref, ours, same = autoattack_throughput(model, xs.to(device), ys.to(device), 8 / 255, 500)
        print(f"AutoAttack standard, {a.arch}, {a.images} images, {name}; same robust set: {same}")
        print(f"pyautoattack loop : {ref:9.2f} images/s")
        print(f"specrobust        : {ours:9.2f} images/s")
        print(f"ratio             : {ours / ref:9.2f}x")
        return ours / ref
    ref = reference_epoch(spec, data, device, a.steps)
    ours = ours_epoch(spec, data, device, a.steps)
    print(f"PGD-10 AT, {a.arch} on {a.dataset}-shaped data, batch {a.batch_size}, {a.steps} timed steps, {name}")
    print(f"reference loop : {ref:9.1f} images/s")
    print(f"specrobust     : {ours:9.1f} images/s")
    print(f"ratio          : {ours / ref:9.2f}x")
    return ours / ref


if __name__ == "__main__":
    main()
