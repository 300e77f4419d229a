"""Reported evaluation: fp32, TF32 off, ``model.eval()``, per-example results and a 95% interval."""
from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path

import numpy as np
import torch

from . import attacks, minimal_attacks
from .io import ConfigError, atomic_savez, atomic_torch_save, atomic_write_json, load_checkpoint
from .models import build_model
from .registry import ATTACK_TYPES, MINIMAL_ATTACKS

@contextlib.contextmanager
def fp32_eval(model):
    """Eval mode, full fp32 matmuls and convolutions (no TF32); restores the previous settings afterwards."""
    prev = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, model.training)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    model.eval()
    try:
        yield model
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = prev[:2]
        model.train(prev[2])


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion, in percent."""
    if n == 0:
        return (0.0, 100.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (100 * max(0.0, centre - half), 100 * min(1.0, centre + half))


def make_attack(rec: dict, sink: list | None = None):
    """A function (model, x, y) -> x_adv from one attack record (:func:`specrobust.jobs.preset`): its type, the
    threat model's eps (None: unbounded) and absolute step. A minimal-perturbation search runs unbounded once and
    counts as fooling only within eps (always, when unbounded); its per-example l0/l2/linf distances go to ``sink``
    (smooth-kernel paper, Appendix B: accuracy at any bound)."""
    kind, eps = rec["type"], rec.get("eps")
    if kind not in ATTACK_TYPES:
        raise ConfigError(f"evaluation.attacks.{rec['attack']}.type must be one of {ATTACK_TYPES}, not {kind!r}")
    if kind in MINIMAL_ATTACKS:
        def run(model, x, y):
            x_bounded, dist = minimal_attacks.run_minimal(kind, model, x, y, eps, **rec.get("options", {}))
            if sink is not None:
                sink.append(dist)
            return x_bounded
        return run
    if kind == "clean":
        return lambda model, x, y: x
    if kind == "fgsm":
        return lambda model, x, y: attacks.fgsm(model, x, y, eps)
    kw = dict(restarts=rec["restarts"], random_start=rec["random_start"])
    if kind == "pgd":
        return lambda model, x, y: attacks.pgd(model, x, y, eps, rec["step_size"], rec["steps"], **kw)
    if kind == "cw":
        return lambda model, x, y: attacks.cw_inf(model, x, y, eps, rec["step_size"], rec["steps"], **kw)
    raise ConfigError(f"evaluation.attacks.{rec['attack']}: autoattack is run through evaluate_attack")


def correct_under(model, x, y, attack, batch_size: int, log=None, interval: float = 60.0) -> torch.Tensor:
    """Per-example correctness (bool, on CPU) of ``model`` on ``attack(model, x, y)``, batch by batch; with ``log``,
    a progress line at most every ``interval`` seconds."""
    out, t0, last = [], time.time(), time.time()
    for i in range(0, len(x), batch_size):
        if log and i and time.time() - last >= interval:
            last, done = time.time(), sum(len(o) for o in out)
            log(f"{done}/{len(x)} images, accuracy so far {100 * torch.cat(out).float().mean().item():.2f}%, "
                f"ETA {(time.time() - t0) / done * (len(x) - done):.0f}s")
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        x_adv = attack(model, xb, yb)
        with torch.no_grad():
            out.append((model(x_adv).argmax(1) == yb).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.bool)


def accuracy(model, x, y, attack, batch_size: int) -> float:
    """Accuracy (%) of ``model`` on ``attack(model, x, y)``."""
    return 100 * correct_under(model, x, y, attack, batch_size).float().mean().item()


def load_model(path, device="cpu"):
    """Rebuild a model from a ``model.pt`` written by training (state_dict + meta), weights_only."""
    ckpt = load_checkpoint(path)
    meta = ckpt["meta"]
    model = build_model(meta["arch"], meta["num_classes"], meta["in_channels"], meta["image_size"], meta["mean"],
                        meta["std"], **meta.get("arch_options", {}))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), meta


def evaluate_attack(model, x, y, rec: dict, batch_size: int, seed: int, state_path: Path | None = None,
                    log=None) -> tuple[torch.Tensor, dict]:
    """Per-example correctness under one attack record; AutoAttack also gives its per-attack breakdown."""
    torch.manual_seed(seed)
    with fp32_eval(model):
        if rec["type"] != "autoattack":
            sink = [] if rec["type"] in MINIMAL_ATTACKS else None
            flags = correct_under(model, x, y, make_attack(rec, sink), batch_size, log)
            if not sink:
                return flags, {}
            return flags, {"distances": {k: np.concatenate([d[k] for d in sink]) for k in ("l0", "l2", "linf")}}
        flags, todo, done = None, _aa_attacks(rec), {}
        if state_path is not None and state_path.exists():
            st = load_checkpoint(state_path)
            flags, todo, done = st["flags"].to(x.device), list(st["todo"]), dict(st["breakdown"])

        def save(step, f):  # after each attack: robust flags so far, what is left, breakdown so far
            if step in todo:
                todo.remove(step)
            done[step] = f.float().mean().item()
            if state_path is not None:
                atomic_torch_save({"flags": f.cpu(), "todo": list(todo), "breakdown": done}, state_path)

        flags, _ = attacks.autoattack(model, x, y, rec["eps"], version=rec.get("version", "standard"), seed=seed,
                                      batch_size=batch_size, attacks=list(todo), flags=flags, on_step=save, log=log)
        return flags.cpu(), {"breakdown": {k: 100 * v for k, v in done.items()}}


def _aa_attacks(rec) -> list[str]:
    from pyautoattack import AutoAttack
    return list(AutoAttack(torch.nn.Identity(), version=rec.get("version", "standard")).attacks_to_run)


def load_test_set(model_path, data_path, n_test=None, device="cpu"):
    """A checkpoint and the first ``n_test`` test images (all if None) of its prepared data set, on ``device``:
    what every reported evaluation, sanity check and analysis starts from. Returns model, meta, data, x, y."""
    from .data import load_prepared, to_tensor

    model, meta = load_model(model_path, device)
    data = load_prepared(data_path)
    n = len(data.x_test) if n_test is None else min(int(n_test), len(data.x_test))
    return model, meta, data, to_tensor(data.x_test[:n], device), torch.as_tensor(data.y_test[:n], device=device)


def run_evaluation(model_path, data_path, job: dict, out_json, out_npz, device="cpu", log=print) -> dict:
    """Rule evaluate: one selected checkpoint under one attack record (:func:`specrobust.jobs.evaluate`) on the
    first ``n_test`` test images; the result JSON states the threat model, eps and step it used, and the record."""
    model, meta, data, x, y = load_test_set(model_path, data_path, job["n_test"], device)
    n, t0 = len(x), time.time()
    state = Path(str(out_json) + ".aa_state.pt") if job["type"] == "autoattack" else None
    log(f"{job['attack']} ({job['type']}, {job['threat']}) on {n} test images of {model_path}, {device}")
    flags, extra = evaluate_attack(model, x, y, job, job["batch_size"], job["attack_seed"], state, log)
    dist = extra.pop("distances", None)
    k = int(flags.sum())
    result = {
        "attack": job["attack"], "type": job["type"], "threat": job["threat"], "norm": job["norm"],
        "eps": job["eps"], "step_size": job.get("step_size"), "n": n, "correct": k, "accuracy": 100 * k / max(n, 1),
        "ci95": list(wilson_interval(k, n)), "seconds": round(time.time() - t0, 2), "device": str(device),
        "precision": "fp32", "model": str(model_path), "dataset": meta["dataset"], "arch": meta["arch"],
        "method": job["method"], "seed": meta["seed"], "selected_epoch": meta["epoch"], "job": job, **extra,
    }
    atomic_savez(out_npz, test_index=data.test_index[:n], correct=flags.numpy(),
                 **({f"dist_{k}": v for k, v in dist.items()} if dist else {}))
    atomic_write_json(out_json, result)
    if state is not None:
        state.unlink(missing_ok=True)
    bound = "unbounded" if job["eps"] is None else f"eps {job['eps']:.4g}"
    log(f"{job['dataset']}/{job['arch']}/{job['method']}/seed{job['seed']} {job['attack']} ({bound}): "
        f"{result['accuracy']:.2f}% [{result['ci95'][0]:.2f}, {result['ci95'][1]:.2f}] on {n} images "
        f"in {result['seconds']:.1f}s")
    return result


def import_external(path, arch: str, data_path, out, name: str, mean=None, std=None,
                    arch_options: dict | None = None):
    """Wrap a checkpoint from elsewhere (RobustBench's model zoo, TRADES, MART, AWP, a state_dict of a bare network or
    of ours, with or without DataParallel prefixes; :func:`specrobust.models.load_external`) as a ``model.pt`` that
    every evaluation and sanity rule reads. RobustBench's convention: the network takes [0, 1] inputs and carries
    any normalization itself, so ``mean``/``std`` default to none."""
    from .data import load_prepared
    from .models import load_external

    data = load_prepared(data_path)
    model, options = load_external(arch, load_checkpoint(path), data.num_classes, data.channels, data.size, mean, std,
                                   source=str(path), **(arch_options or {}))
    meta = {"arch": arch, "arch_options": options, "num_classes": data.num_classes, "in_channels": data.channels,
            "image_size": data.size, "mean": [float(v) for v in model[0].mean.flatten()],
            "std": [float(v) for v in model[0].std.flatten()], "dataset": data.name, "method": f"external_{name}",
            "seed": 0, "epoch": -1, "val_pgd": float("nan"), "source": str(path)}
    atomic_torch_save({"model": model.state_dict(), "meta": meta}, out)
    return meta
