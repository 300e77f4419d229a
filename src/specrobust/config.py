"""Config checks that run before any job: the JSON schema, then cross-key rules, each failure one line naming the key.

Pure Python (no torch), so the Snakefile can call it while it builds the DAG.
"""
from __future__ import annotations

import copy
import re
from fractions import Fraction
from pathlib import Path

from .errors import ConfigError
from .methods import parse_method

DATASETS = ("cifar10", "cifar100", "svhn", "tinyimagenet", "mnist", "fashionmnist", "restricted_imagenet")
IMAGE_SIZE = {"cifar10": 32, "cifar100": 32, "svhn": 32, "tinyimagenet": 64, "mnist": 28, "fashionmnist": 28,
              "restricted_imagenet": 224}
TORCHVISION_WEIGHTS = {"resnet50": "IMAGENET1K_V1"}   # arch -> torchvision weights that train.init: torchvision loads


def number(value, key: str = "value") -> float:
    """A float from a number or a fraction string such as '8/255'."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*(/\s*\d+(\.\d+)?\s*)?", value):
        try:
            return float(Fraction(value.replace(" ", "")))
        except ZeroDivisionError:
            pass
    raise ConfigError(f"{key} must be a number or a fraction like 8/255, got {value!r}")


def deep_merge(base: dict, over: dict | None) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def check_schema(config: dict, schema_path) -> None:
    import jsonschema
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text())
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(config))
    if not errors:
        return
    err = jsonschema.exceptions.best_match(errors)
    while err.context:  # oneOf/anyOf: report the most specific branch
        err = jsonschema.exceptions.best_match(err.context)
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        raise ConfigError(f"config key {_key(list(err.absolute_path) + extra[:1])} is not allowed "
                          f"(unknown key; allowed here: {', '.join(sorted(err.schema.get('properties', {})))})")
    raise ConfigError(f"config key {_key(err.absolute_path)}: {err.message}")


def section(config: dict, name: str, dataset: str, method: str | None = None) -> dict:
    """``config[name]`` with overrides applied in order: ``datasets.<dataset>``, ``methods.<base>``,
    ``methods.<slug>`` (e.g. TRADES' weight decay, a natural reference model's schedule), then
    ``datasets.<dataset>.methods.<base>`` and ``.<slug>`` (one method on one data set, e.g. its pretrained start)."""
    ds = (config.get("datasets") or {}).get(dataset) or {}
    out = deep_merge(config.get(name) or {}, ds.get(name))
    if method:
        keys = dict.fromkeys((parse_method(method).base, method))
        for methods in (config.get("methods") or {}, ds.get("methods") or {}):
            for key in keys:
                out = deep_merge(out, (methods.get(key) or {}).get(name))
    return out


def train_section(config: dict, dataset: str, method: str | None = None) -> dict:
    return section(config, "train", dataset, method)


def evaluation_section(config: dict, dataset: str, method: str | None = None) -> dict:
    """``evaluation`` with the data set's and method's overrides: ``eps`` (the attacks' default L-inf bound; null =
    the run's train.eps), ``n_test``, ``batch_size``. External checkpoints (``external_*``) get the data set's."""
    ours = method and not method.startswith("external_")
    return section(config, "evaluation", dataset, method if ours else None)


def init_file(config: dict, dataset: str, arch: str, method: str) -> str | None:
    """The local file a run starts from (``train.init``): None, the torchvision weights that rule
    ``pretrained_weights`` downloads into ``data.root``, or the configured checkpoint path."""
    init = train_section(config, dataset, method).get("init")
    if init != "torchvision":
        return init
    if arch not in TORCHVISION_WEIGHTS:
        raise ConfigError(f"train.init = torchvision for {dataset}/{arch}/{method}: torchvision has pretrained "
                          f"weights only for {', '.join(TORCHVISION_WEIGHTS)} here; give a checkpoint path instead")
    return f"{config['data']['root']}/pretrained/{arch}_{TORCHVISION_WEIGHTS[arch].lower()}.pt"


def bandwidth_step(config: dict, dataset: str) -> int:
    steps = config["analysis"]["bandwidth_step"]
    return int(steps.get(dataset, steps["default"]))


def require_attack(config: dict, name: str, key: str) -> None:
    """``name`` (found at config key ``key``) must be an entry of ``evaluation.attacks``."""
    if name not in config["evaluation"]["attacks"]:
        raise ConfigError(f"{key} = {name!r} is not an attack in evaluation.attacks "
                          f"({', '.join(config['evaluation']['attacks'])})")


def require_table(config: dict, name: str, key: str) -> None:
    """``name`` (found at config key ``key``) must be an entry of ``tables``."""
    if name not in config["tables"]:
        raise ConfigError(f"{key} = {name!r} is not a table in tables ({', '.join(config['tables'])})")


def check_analysis(config: dict) -> None:
    """Cross-key rules of the ``analysis`` section (the schema checks each value alone)."""
    a = config["analysis"]
    for i, m in enumerate(a["methods"]):
        parse_method(m, f"analysis.methods[{i}]")
    for i, m in enumerate(a["aaai_methods"]):
        parse_method(m, f"analysis.aaai_methods[{i}]")
    parse_method(a["robust"], "analysis.robust")
    require_attack(config, a["attack"], "analysis.attack")
    for i, t in enumerate(a["curves"]):
        require_table(config, t, f"analysis.curves[{i}]")
    for ds in dict.fromkeys(a["datasets"] + a["aaai_datasets"]):
        step = bandwidth_step(config, ds)
        if IMAGE_SIZE[ds] % step:
            raise ConfigError(f"analysis.bandwidth_step {step} for {ds} must divide its image size {IMAGE_SIZE[ds]}")
        if a["figure1_bandwidth"] > IMAGE_SIZE[ds]:
            raise ConfigError(f"analysis.figure1_bandwidth {a['figure1_bandwidth']} exceeds the {ds} image size "
                              f"{IMAGE_SIZE[ds]}")


POINT = re.compile(r"^(lam|distance|fft)~([a-z0-9._]+)$")


def point_name(param: str, value) -> str:
    """The path segment of one ablation point, ``<fr key>~<value>`` (Snakemake Paramspace's notation)."""
    return f"{param}~{value}"


def parse_point(point: str) -> dict:
    """``lam~0.05`` -> ``{"lam": 0.05}``: the fr.* override of one ablation point, checked like the config."""
    m = POINT.match(point)
    if not m:
        raise ConfigError(f"ablation point {point!r} must look like lam~0.05, distance~l2 or fft~per_sample")
    key, value = m[1], m[2]
    if key == "lam":
        return {key: number(float(value), f"ablation point {point}")}
    allowed = {"distance": ("l1", "l2", "cosine"), "fft": ("batch2d", "per_sample")}[key]
    if value not in allowed:
        raise ConfigError(f"ablation point {point!r}: fr.{key} must be one of {allowed}")
    return {key: value}


def with_point(config: dict, method: str, point: str) -> dict:
    """The config a point trains under: its fr override on top of ``methods.<method>.fr``."""
    methods = copy.deepcopy(config.get("methods") or {})
    methods[method] = deep_merge(methods.get(method) or {}, {"fr": parse_point(point)})
    return {**config, "methods": methods}


def check_ablations(config: dict) -> None:
    for name, a in (config.get("ablations") or {}).items():
        for key in ("method", "baseline"):
            parse_method(a[key], f"ablations.{name}.{key}")
        if parse_method(a["method"]).fr == "none":
            raise ConfigError(f"ablations.{name}.method = {a['method']!r} has no FR to vary (use a *_fr or *_fr_wa "
                              f"method)")
        for i, v in enumerate(a["values"]):
            try:
                parse_point(point_name(a["param"], v))
            except ConfigError as err:
                raise ConfigError(f"ablations.{name}.values[{i}]: {err}") from None
        for i, c in enumerate(a["columns"]):
            require_attack(config, c, f"ablations.{name}.columns[{i}]")


def check_config(config: dict, schema_path) -> None:
    """Raise ConfigError naming the first offending key; silent when the config is usable."""
    check_schema(config, schema_path)
    for name, t in config["tables"].items():
        for i, m in enumerate(t["methods"]):
            parse_method(m, f"tables.{name}.methods[{i}]")
        for ds, ms in (t.get("methods_by_dataset") or {}).items():  # like arch_by_dataset: unused data sets are
            for i, m in enumerate(ms):                                 # ignored, so an override may narrow datasets
                parse_method(m, f"tables.{name}.methods_by_dataset.{ds}[{i}]")
        for i, c in enumerate(t["columns"]):
            require_attack(config, c, f"tables.{name}.columns[{i}]")
    check_analysis(config)
    check_ablations(config)
    for i, t in enumerate(config["sanity"].get("tables", [])):
        require_table(config, t, f"sanity.tables[{i}]")
    used_datasets = sorted({d for t in config["tables"].values() for d in t["datasets"]})
    used_methods = sorted({m for t in config["tables"].values() for m in t["methods"]})
    for i, c in enumerate(config["sanity"]["compare"]):
        require_attack(config, c, f"sanity.compare[{i}]")
    for name, a in config["evaluation"]["attacks"].items():
        for k in ("eps", "step_size"):
            if k in a:
                number(a[k], f"evaluation.attacks.{name}.{k}")
    for key in config.get("methods") or {}:
        parse_method(key, f"methods.{key}")
    for ds, over in (config.get("datasets") or {}).items():
        for key in (over or {}).get("methods") or {}:
            parse_method(key, f"datasets.{ds}.methods.{key}")
    overrides = config.get("datasets") or {}
    runs = [(ds, None, f"datasets.{ds}.train" if ds in overrides else "train")
            for ds in sorted(set(used_datasets) | set(overrides))]
    runs += [(ds, m, f"methods.{m}.train") for ds in used_datasets for m in (config.get("methods") or {})]
    runs += [(ds, m, f"datasets.{ds}.methods.{m}.train") for ds, over in overrides.items()
             for m in (over or {}).get("methods") or {}]
    for ds, m, where in runs:
        tr = train_section(config, ds, m)
        ev = evaluation_section(config, ds, m)
        if ev.get("eps") is not None:
            number(ev["eps"], where.removesuffix("train") + "evaluation.eps")
        ms = tr["milestones"]
        if ms != sorted(ms) or any(not 0 < m < tr["epochs"] for m in ms):
            raise ConfigError(f"{where}.milestones {ms} must be increasing epochs below {where}.epochs "
                              f"({tr['epochs']})")
        eps, step = number(tr["eps"], f"{where}.eps"), number(tr["step_size"], f"{where}.step_size")
        if eps > 1 or step > 1:
            raise ConfigError(f"{where}.eps / step_size are in [0, 1] pixel units (e.g. 8/255), got {eps}, {step}")
        if any(parse_method(m).fr != "none" for m in used_methods) and not ms:
            raise ConfigError(f"{where}.milestones is empty, but FR methods start at the first learning-rate decay")
