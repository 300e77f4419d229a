"""Reported evaluation: fp32, TF32 off, ``model.eval()``, per-example results and a 95% interval."""
from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path

import torch

from . import attacks, minimal_attacks
from .io import ConfigError, atomic_savez, atomic_torch_save, atomic_write_json, load_checkpoint
from .models import build_model, unwrap_state
from .config import number

MINIMAL_ATTACKS = ("deepfool_l2", "deepfool_linf", "adef", "salt_pepper")  # smooth-kernel paper, Table 1
ATTACK_TYPES = ("clean", "fgsm", "pgd", "cw", "autoattack") + MINIMAL_ATTACKS


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


def make_attack(cfg: dict, default_eps: float, name: str = "attack"):
    """A function (model, x, y) -> x_adv from one entry of ``evaluation.attacks``. The minimal-perturbation attacks
    count as fooled only within the L-inf eps (the run's eps by default); ``unbounded: true`` lifts the bound."""
    kind = cfg.get("type")
    if kind not in ATTACK_TYPES:
        raise ConfigError(f"evaluation.attacks.{name}.type must be one of {ATTACK_TYPES}, not {kind!r}")
    if cfg.get("unbounded") and (kind not in MINIMAL_ATTACKS or "eps" in cfg):
        raise ConfigError(f"evaluation.attacks.{name}.unbounded applies to {', '.join(MINIMAL_ATTACKS)} "
                          f"and excludes eps (type {kind!r}, eps {cfg.get('eps')!r})")
    eps = number(cfg.get("eps", default_eps), f"evaluation.attacks.{name}.eps")
    if kind in MINIMAL_ATTACKS:
        fn, bound = getattr(minimal_attacks, kind), None if cfg.get("unbounded") else eps
        return lambda model, x, y: fn(model, x, y, bound)
    step = number(cfg.get("step_size", "2/255"), f"evaluation.attacks.{name}.step_size")
    if kind == "clean":
        return lambda model, x, y: x
    if kind == "fgsm":
        return lambda model, x, y: attacks.fgsm(model, x, y, eps)
    kw = dict(restarts=int(cfg.get("restarts", 1)), random_start=bool(cfg.get("random_start", True)))
    if kind == "pgd":
        return lambda model, x, y: attacks.pgd(model, x, y, eps, step, int(cfg.get("steps", 20)), **kw)
    if kind == "cw":
        return lambda model, x, y: attacks.cw_inf(model, x, y, eps, step, int(cfg.get("steps", 30)), **kw)
    raise ConfigError(f"evaluation.attacks.{name}: autoattack is run through evaluate_attack, not make_attack")


def correct_under(model, x, y, attack, batch_size: int) -> torch.Tensor:
    """Per-example correctness (bool, on CPU) of ``model`` on ``attack(model, x, y)``, batch by batch."""
    out = []
    for i in range(0, len(x), batch_size):
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


def evaluate_attack(model, x, y, cfg: dict, name: str, eps: float, batch_size: int, seed: int,
                    state_path: Path | None = None) -> tuple[torch.Tensor, dict]:
    """Per-example correctness under one configured attack; AutoAttack also gives its per-attack breakdown."""
    torch.manual_seed(seed)
    with fp32_eval(model):
        if cfg.get("type") != "autoattack":
            return correct_under(model, x, y, make_attack(cfg, eps, name), batch_size), {}
        flags, todo, done = None, _aa_attacks(cfg), {}
        if state_path is not None and state_path.exists():
            st = load_checkpoint(state_path)
            flags, todo, done = st["flags"].to(x.device), list(st["todo"]), dict(st["breakdown"])

        def save(step, f):  # after each attack: robust flags so far, what is left, breakdown so far
            if step in todo:
                todo.remove(step)
            done[step] = f.float().mean().item()
            if state_path is not None:
                atomic_torch_save({"flags": f.cpu(), "todo": list(todo), "breakdown": done}, state_path)

        flags, _ = attacks.autoattack(
            model, x, y, number(cfg.get("eps", eps)), version=cfg.get("version", "standard"), seed=seed,
            batch_size=batch_size, attacks=list(todo), flags=flags, on_step=save)
        return flags.cpu(), {"breakdown": {k: 100 * v for k, v in done.items()}}


def _aa_attacks(cfg) -> list[str]:
    from pyautoattack import AutoAttack
    return list(AutoAttack(torch.nn.Identity(), version=cfg.get("version", "standard")).attacks_to_run)


def load_test_set(model_path, data_path, n_test=None, device="cpu"):
    """A checkpoint and the first ``n_test`` test images (all if None) of its prepared data set, on ``device``:
    what every reported evaluation, sanity check and analysis starts from. Returns model, meta, data, x, y."""
    from .data import load_prepared, to_tensor

    model, meta = load_model(model_path, device)
    data = load_prepared(data_path)
    n = len(data.x_test) if n_test is None else min(int(n_test), len(data.x_test))
    return model, meta, data, to_tensor(data.x_test[:n], device), torch.as_tensor(data.y_test[:n], device=device)


def run_evaluation(model_path, data_path, attack_name: str, attack_cfg: dict, out_json, out_npz, n_test=None,
                   batch_size: int = 500, seed: int = 0, device: str = "cpu", log=print) -> dict:
    """Evaluate one selected checkpoint under one attack on the first ``n_test`` test images."""
    model, meta, data, x, y = load_test_set(model_path, data_path, n_test, device)
    n = len(x)
    t0 = time.time()
    state = Path(str(out_json) + ".aa_state.pt") if attack_cfg.get("type") == "autoattack" else None
    flags, extra = evaluate_attack(model, x, y, attack_cfg, attack_name, meta["eps"], batch_size, seed, state)
    k = int(flags.sum())
    result = {
        "attack": attack_name, "type": attack_cfg["type"], "params": attack_cfg,
        "eps": None if attack_cfg.get("unbounded") else number(attack_cfg.get("eps", meta["eps"])),  # None: unbounded
        "n": n, "correct": k, "accuracy": 100 * k / max(n, 1),
        "ci95": list(wilson_interval(k, n)), "seconds": round(time.time() - t0, 2), "device": str(device),
        "precision": "fp32", "model": str(model_path), "dataset": meta["dataset"], "arch": meta["arch"],
        "method": meta["method"], "seed": meta["seed"], "selected_epoch": meta["epoch"], **extra,
    }
    atomic_savez(out_npz, test_index=data.test_index[:n], correct=flags.numpy())
    atomic_write_json(out_json, result)
    if state is not None:
        state.unlink(missing_ok=True)
    log(f"{meta['dataset']}/{meta['arch']}/{meta['method']}/seed{meta['seed']} {attack_name}: "
        f"{result['accuracy']:.2f}% [{result['ci95'][0]:.2f}, {result['ci95'][1]:.2f}] on {n} images "
        f"in {result['seconds']:.1f}s")
    return result


def import_external(path, arch: str, data_path, out, name: str, eps: float, step_size: float, mean=None,
                    std=None, arch_options: dict | None = None):
    """Wrap a user's checkpoint (a state_dict, possibly under "state_dict"/"model", possibly of a bare network
    without our normalization layer, possibly with DataParallel "module." prefixes) as a ``model.pt`` that every
    evaluation and sanity rule reads. ``mean``/``std`` default to none (the network takes [0, 1] inputs)."""
    from .data import load_prepared
    from .errors import CheckpointError

    data = load_prepared(data_path)
    state = unwrap_state(load_checkpoint(path), path)
    mean = list(mean) if mean is not None else [0.0] * data.channels
    std = list(std) if std is not None else [1.0] * data.channels
    model = build_model(arch, data.num_classes, data.channels, data.size, mean, std, **(arch_options or {}))
    target = model if any(k.startswith("1.") for k in state) else model[1]
    try:
        missing, unexpected = target.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise CheckpointError(f"{path} does not fit arch {arch!r}: {str(err).splitlines()[-1].strip()}") from None
    if missing or unexpected:
        raise CheckpointError(f"{path} does not fit arch {arch!r}: missing {missing[:3]}, unexpected {unexpected[:3]}")
    meta = {"arch": arch, "arch_options": arch_options or {}, "num_classes": data.num_classes,
            "in_channels": data.channels, "image_size": data.size, "mean": [float(v) for v in model[0].mean.flatten()],
            "std": [float(v) for v in model[0].std.flatten()], "dataset": data.name, "method": f"external_{name}",
            "seed": 0, "eps": eps, "step_size": step_size, "epoch": -1, "val_pgd": float("nan"), "source": str(path)}
    atomic_torch_save({"model": model.state_dict(), "meta": meta}, out)
    return meta
