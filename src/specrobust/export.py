"""RobustBench-style export of one trained model: a ``model_info`` JSON and a plain state_dict of the network.

The JSON has RobustBench's fields (robustbench 1.1.1: ``robustbench.utils.ModelInfo`` and the repository's
``model_info/<dataset>/<threat model>/<name>.json`` files), written as those files write them: accuracies are strings
in percent with two decimals ("85.34", as ``update_json`` rounds them), eps a string ("8/255"), ``additional_data`` a
bool, ``number_forward_passes`` an int. The threat model is no field there but the folder; every attack here is L-inf
(``Linf``). What we know beyond those fields (method, seed, test-set size, intervals, normalization, the matching
RobustBench constructor) goes under the one extra key ``specrobust``, which RobustBench's code never reads.

Weights: the bare network's state_dict, whose names are those of RobustBench's architectures (``models`` uses them),
so it loads with ``strict=True`` into the constructor named in ``specrobust.robustbench_arch``. RobustBench models take
[0, 1] images; when our training normalized its inputs (mean/std other than 0/1) the state_dict also holds them as
``mu`` and ``sigma`` buffers of shape (1, C, 1, 1), the layout of RobustBench's own normalizing zoo models
(``Rice2020OverfittingNet``: ``forward(x) = net((x - mu) / sigma)``). We chose this over our ``Normalized`` keys
(``0.mean``, ``1.conv1.weight``: loadable only with our wrapper) and over the bare net plus mean/std in the JSON only
(a strict load would succeed and then silently evaluate unnormalized images): a strict load into the plain
architecture fails loudly on ``mu``/``sigma``, and one into a normalizing subclass just works. Without normalization
the file is the plain architecture's state_dict. ``.safetensors`` as the weights suffix writes safetensors (if
installed), anything else ``torch.save``. ``models.load_external`` takes the loaded state_dict back into our model
(``mu``/``sigma`` become its normalization layer).
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

from .errors import CheckpointError, ConfigError

# RobustBench's model_info fields and their JSON types (robustbench 1.1.1 ModelInfo + the model_info files)
MODEL_INFO_FIELDS = {"link": str, "name": str, "authors": str, "additional_data": bool, "number_forward_passes": int,
                     "dataset": str, "venue": str, "architecture": str, "eps": str, "clean_acc": str,
                     "reported": str, "autoattack_acc": str}
MODEL_INFO_OPTIONAL = {"footnote": str, "unreliable": bool, "corruptions_acc": str, "corruptions_acc_3d": str,
                       "corruptions_mce": str, "corruptions_mce_3d": str}
OWN_KEY = "specrobust"
THREAT_MODEL = "Linf"
FULL_TEST_SET = {"cifar10": 10000, "cifar100": 10000}  # RobustBench evaluates on all of it


def eps_string(eps: float) -> str:
    """RobustBench's way of writing eps: "8/255" for multiples of 1/255, else the number ("0.031", "0.5")."""
    k = eps * 255
    return f"{round(k)}/255" if round(k) > 0 and abs(k - round(k)) < 1e-6 else f"{eps:g}"


def architecture_name(arch: str) -> str:
    """The architecture as RobustBench's model_info files name it ("WideResNet-34-10", "PreActResNet-18")."""
    if m := re.fullmatch(r"wrn(\d+)_(\d+)", arch):
        return f"WideResNet-{m[1]}-{m[2]}"
    names = {"resnet18": "ResNet-18", "preact_resnet18": "PreActResNet-18", "resnet50": "ResNet-50",
             "resnet152": "ResNet-152", "small_cnn": "SmallCNN"}
    return names.get(arch, arch)


def robustbench_arch(meta: dict) -> str | None:
    """The RobustBench (or torchvision) constructor whose forward pass equals our network's, or None: theirs are
    RGB-only, and the CIFAR ones pool with a fixed window that fits 32x32 inputs only."""
    arch, c = meta["arch"], meta["num_classes"]
    if arch == "resnet50":
        return f"torchvision.models.resnet50(num_classes={c})"
    if meta["in_channels"] != 3 or meta["image_size"] != 32:
        return None
    zoo = "robustbench.model_zoo.architectures"
    if m := re.fullmatch(r"wrn(\d+)_(\d+)", arch):
        return f"{zoo}.wide_resnet.WideResNet(depth={m[1]}, widen_factor={m[2]}, num_classes={c})"
    if arch == "resnet18":
        return f"{zoo}.resnet.ResNet({zoo}.resnet.BasicBlock, [2, 2, 2, 2], num_classes={c})"
    if arch == "resnet152":
        return f"{zoo}.resnet.ResNet({zoo}.resnet.Bottleneck, [3, 8, 36, 3], num_classes={c})"
    if arch == "preact_resnet18":
        o = {"bn_before_fc": True, "out_shortcut": True, **meta.get("arch_options", {})}
        return (f"{zoo}.resnet.PreActResNet({zoo}.resnet.PreActBlock, [2, 2, 2, 2], num_classes={c}, "
                f"bn_before_fc={o['bn_before_fc']}, out_shortcut={o['out_shortcut']})")
    return None


def _percent_string(x) -> bool:
    try:
        return 0 <= float(x) <= 100
    except ValueError:
        return False


def validate_model_info(d: dict) -> None:
    """Refuse (ConfigError, one line) a model_info dict that RobustBench's files would not have: missing or unknown
    fields, wrong JSON types, accuracies that are not percent strings, an eps that is not "a/b" or a number."""
    if not isinstance(d, dict):
        raise ConfigError(f"model_info must be a JSON object, not {type(d).__name__}")
    problems = [f"missing {k}" for k in MODEL_INFO_FIELDS if k not in d and
                not (k == "autoattack_acc" and "corruptions_acc" in d)]
    types = {**MODEL_INFO_FIELDS, **MODEL_INFO_OPTIONAL, OWN_KEY: dict}
    problems += [f"unknown field {k}" for k in d if k not in types]
    for k, v in d.items():
        t = types.get(k)
        if t and (not isinstance(v, t) or (t is int and isinstance(v, bool))):
            problems.append(f"{k} must be {t.__name__}, not {type(v).__name__}")
    for k in ("clean_acc", "autoattack_acc", "corruptions_acc", "corruptions_acc_3d"):
        if isinstance(d.get(k), str) and not _percent_string(d[k]):
            problems.append(f"{k} {d[k]!r} is not a percentage")
    if isinstance(d.get("reported"), str) and d["reported"] and not _percent_string(d["reported"]):
        problems.append(f"reported {d['reported']!r} is neither empty nor a percentage")
    if isinstance(d.get("eps"), str) and not re.fullmatch(r"\d+/\d+|\d*\.?\d+(e-?\d+)?", d["eps"]):
        problems.append(f"eps {d['eps']!r} is not like '8/255' or '0.031'")
    if isinstance(d.get("number_forward_passes"), int) and d["number_forward_passes"] < 1:
        problems.append("number_forward_passes must be at least 1")
    if problems:
        raise ConfigError(f"model_info: {'; '.join(problems)}")


def _load_result(name: str, r) -> dict:
    if isinstance(r, dict):
        return r
    try:
        return json.loads(Path(r).read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"result {name}: cannot read {r} ({type(err).__name__}: {err})") from None


def _pick(results: dict, kind: str) -> dict:
    found = [r for r in results.values() if r.get("type") == kind]
    if len(found) != 1:
        raise ConfigError(f"export needs exactly one result of type {kind!r}, got {len(found)} among types "
                          f"{sorted(str(r.get('type')) for r in results.values())}")
    r = found[0]
    if not isinstance(r.get("n"), int) or r["n"] < 1 or not isinstance(r.get("correct"), int):
        raise ConfigError(f"result {r.get('attack', kind)!r} lacks its counts n and correct")
    return r


def _check_same_model(r: dict, meta: dict, model_pt) -> None:
    for key, own in (("dataset", "dataset"), ("arch", "arch"), ("method", "method"), ("seed", "seed"),
                     ("selected_epoch", "epoch")):
        if key in r and own in meta and r[key] != meta[own]:
            raise ConfigError(f"result {r.get('attack')!r} is of {key} {r[key]!r}, but {model_pt} has {meta[own]!r}")


def _write_weights(state: dict, path: Path) -> str:
    from .io import _atomic, atomic_torch_save

    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import save
        except ImportError:
            raise ConfigError(f"{path}: writing .safetensors needs the safetensors package; use a .pt name") from None
        data = save(state)
        _atomic(path, lambda f: f.write(data))
        return "safetensors"
    atomic_torch_save(state, path)
    return "torch"


def export_model(model_pt, results: dict, out_json, out_weights, info: dict | None = None,
                 clean_per_example=None) -> dict:
    """Write ``out_weights`` (the network, see the module docstring) and ``out_json`` (RobustBench model_info of
    ``model_pt`` from its clean and AutoAttack results: {name: result dict or path of its JSON}); returns the JSON.
    ``info`` fills the fields we cannot know (link, name, authors, venue, reported, footnote, unreliable).
    ``clean_per_example`` (the clean evaluation's .npz) restricts clean accuracy to AutoAttack's images when AutoAttack
    ran on fewer (both take the first test images)."""
    import torch

    from .io import atomic_write_json, load_checkpoint
    from .models import build_model

    ckpt = load_checkpoint(model_pt)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict) or not isinstance(ckpt.get("meta"), dict):
        raise CheckpointError(f"{model_pt} is not a model.pt written by training (needs 'model' and 'meta')")
    meta = ckpt["meta"]
    try:
        model = build_model(meta["arch"], meta["num_classes"], meta["in_channels"], meta["image_size"], meta["mean"],
                            meta["std"], **meta.get("arch_options", {}))
        model.load_state_dict(ckpt["model"])
    except KeyError as err:
        raise CheckpointError(f"{model_pt}: meta lacks {err}") from None
    except RuntimeError as err:
        raise CheckpointError(f"{model_pt} does not fit its arch: {str(err).splitlines()[-1].strip()}") from None
    results = {name: _load_result(name, r) for name, r in results.items()}
    clean, aa = _pick(results, "clean"), _pick(results, "autoattack")
    for r in (clean, aa):
        _check_same_model(r, meta, model_pt)
    if clean["n"] > aa["n"] and clean_per_example is not None:   # both on the first test images: AA's are a prefix
        import numpy as np

        from .evaluate import wilson_interval

        flags = np.load(clean_per_example)["correct"][:aa["n"]]
        k = int(flags.sum())
        clean = {**clean, "n": len(flags), "correct": k, "accuracy": 100 * k / len(flags),
                 "ci95": list(wilson_interval(k, len(flags)))}
    if clean["n"] != aa["n"]:
        raise ConfigError(f"clean accuracy is on {clean['n']} images but AutoAttack's on {aa['n']}: RobustBench "
                          f"reports both on the same test images")
    unknown = set(info or {}) - set(MODEL_INFO_FIELDS) - set(MODEL_INFO_OPTIONAL)
    if unknown:
        raise ConfigError(f"export info: unknown model_info field(s) {', '.join(sorted(unknown))}")
    eps = aa.get("eps", meta.get("eps"))
    if not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0:
        raise ConfigError(f"AutoAttack result has no finite eps ({eps!r})")

    out_json, out_weights = Path(out_json), Path(out_weights)
    net, norm = model[1], model[0]
    state = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    normalized = not (torch.all(norm.mean == 0) and torch.all(norm.std == 1))
    if normalized:
        state["mu"], state["sigma"] = norm.mean.clone(), norm.std.clone()
    fmt = _write_weights(state, out_weights)

    n, dataset = aa["n"], meta["dataset"]
    d = {"link": "", "name": f"{meta['method']} ({dataset}, {architecture_name(meta['arch'])}, seed {meta['seed']})",
         "authors": "", "additional_data": False, "number_forward_passes": 1, "dataset": dataset, "venue": "",
         "architecture": architecture_name(meta["arch"]), "eps": eps_string(eps),
         "clean_acc": str(round(100 * clean["correct"] / clean["n"], 2)), "reported": "",
         "autoattack_acc": str(round(100 * aa["correct"] / n, 2))}
    if n < FULL_TEST_SET.get(dataset, 0):
        d["footnote"] = f"Evaluated on {n} of the {FULL_TEST_SET[dataset]:,} test images."
    d.update(info or {})
    d[OWN_KEY] = {
        "threat_model": THREAT_MODEL, "model_info_path": f"model_info/{dataset}/{THREAT_MODEL}/<model name>.json",
        "method": meta["method"], "seed": meta["seed"], "selected_epoch": meta.get("epoch"), "n_test": n,
        "clean": {k: clean.get(k) for k in ("correct", "n", "ci95")},
        "autoattack": {**{k: aa.get(k) for k in ("correct", "n", "ci95", "breakdown")}, "eps": float(eps),
                       "version": (aa.get("params") or {}).get("version", "standard")},
        "arch": meta["arch"], "arch_options": meta.get("arch_options", {}), "num_classes": meta["num_classes"],
        "in_channels": meta["in_channels"], "image_size": meta["image_size"],
        "robustbench_arch": robustbench_arch(meta), "input_range": [0.0, 1.0],
        "mean": [float(v) for v in norm.mean.flatten()], "std": [float(v) for v in norm.std.flatten()],
        "normalization": ("the weights hold mu and sigma, shape (1, C, 1, 1): forward(x) = net((x - mu) / sigma)"
                          if normalized else "none: the network takes [0, 1] images as they are"),
        "weights": {"file": out_weights.name, "format": fmt,
                    "sha256": hashlib.sha256(out_weights.read_bytes()).hexdigest()},
        "source": str(model_pt),
    }
    validate_model_info(d)
    atomic_write_json(out_json, d)
    return d
