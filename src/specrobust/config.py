"""The config, checked before any job starts and resolved with one precedence rule.

Pure Python (no torch), so the Snakefile calls it while it builds the DAG. Every failure is one line naming the key.
:func:`resolve` is the one place where overrides are layered; :mod:`specrobust.jobs` turns the resolved values into
one record per job.
"""
from __future__ import annotations

import copy
import re
from fractions import Fraction
from pathlib import Path

from .errors import ConfigError
from .methods import H_CONTROLS, parse_method
from .registry import ARCH_PATTERN, ATTACK_TYPES, BOUNDED_ATTACKS, DATASETS, POINT_PATTERN, POINT_VALUES, dataset_info

NUMBER = r"\s*\d+(\.\d+)?\s*(/\s*\d+(\.\d+)?\s*)?"
RELATIVE = re.compile(r"^\s*eps\s*(/\s*(?P<div>\d+(\.\d+)?)\s*)?$")   # a step given as a fraction of eps: eps/4
UNBOUNDED = "unbounded"


def number(value, key: str = "value") -> float:
    """A float from a number or a fraction string such as '8/255'."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and re.fullmatch(NUMBER, value):
        try:
            return float(Fraction(value.replace(" ", "")))
        except ZeroDivisionError:
            pass
    raise ConfigError(f"{key} must be a number or a fraction like 8/255, got {value!r}")


def step_size(value, eps: float, key: str = "step_size") -> float:
    """An attack step: absolute (0.01, 2/255) or a fraction of the attack's own eps ('eps/4', the papers' 2/255 at
    8/255), so one setting scales with every bound it is used at."""
    m = RELATIVE.match(value) if isinstance(value, str) else None
    if m:
        div = float(m["div"] or 1)
        if div == 0:
            raise ConfigError(f"{key} = {value!r}: a fraction of eps needs a positive divisor, like eps/4")
        return eps / div
    return number(value, key)


# ---------------------------------------------------------------------------------------------- threat models
def eps_label(eps) -> str:
    """The path segment of an L-inf threat model: ``linf-8_255`` for k/255, ``linf-0.1`` otherwise, ``unbounded``."""
    if eps is None or eps == UNBOUNDED:
        return UNBOUNDED
    e = number(eps)
    k = round(e * 255)
    return f"linf-{k}_255" if k and abs(e * 255 - k) < 1e-6 else f"linf-{e:g}"


def label_eps(label: str) -> float | None:
    """Inverse of :func:`eps_label`."""
    if label == UNBOUNDED:
        return None
    m = re.fullmatch(r"linf-(\d+)_255|linf-(\d+(\.\d+)?(e-?\d+)?)", label)
    if not m:
        raise ConfigError(f"threat model {label!r} must look like linf-8_255, linf-0.1 or unbounded")
    return int(m[1]) / 255 if m[1] else float(m[2])


THREAT_PATTERN = r"unbounded|linf-\d+_255|linf-\d+(\.\d+)?(e-?\d+)?"


# ---------------------------------------------------------------------------------------------- merging
def deep_merge(base: dict, over: dict | None) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def split_run(method: str) -> tuple[str, str | None]:
    """``pgd_at_fr/lam~0.05`` -> (``pgd_at_fr``, ``lam~0.05``): a method slug and its ablation point, if any."""
    slug, _, point = method.partition("/")
    return slug, point or None


def resolve(config: dict, name: str, dataset: str, method: str | None = None) -> dict:
    """``config[name]`` with every override that applies, later ones winning. This is the one precedence rule:

    1. ``<name>``                                   the defaults
    2. ``datasets.<dataset>.<name>``                a data set's setting (SVHN's schedule, MNIST's eps)
    3. ``methods.<key>.<name>``                     key = objective, then family, then slug: ``trades`` reaches every
                                                    TRADES run, ``awp`` every AWP run (awp_fr ...), ``pgd_at_fr`` one
    4. ``datasets.<dataset>.methods.<key>.<name>``  one method on one data set (a pretrained start)
    5. the ablation point of ``<slug>/<key>~<value>`` sets ``fr.<key>`` (name ``fr`` only)
    """
    ds = (config.get("datasets") or {}).get(dataset) or {}
    out = deep_merge(config.get(name) or {}, ds.get(name))
    if method:
        slug, point = split_run(method)
        m = parse_method(slug)
        keys = dict.fromkeys((m.base, m.prefix, slug))
        for methods in (config.get("methods") or {}, ds.get("methods") or {}):
            for key in keys:
                out = deep_merge(out, (methods.get(key) or {}).get(name))
        if point and name == "fr":
            out = deep_merge(out, parse_point(point))
    return out


# ---------------------------------------------------------------------------------------------- ablation points
POINT = re.compile(rf"^({POINT_PATTERN})$")


def point_name(param: str, value) -> str:
    """The path segment of one ablation point, ``<fr key>~<value>`` (Snakemake Paramspace's notation)."""
    return f"{param}~{value}"


def parse_point(point: str) -> dict:
    """``lam~0.05`` -> ``{"lam": 0.05}``: the fr.* override of one ablation point, checked like the config."""
    if not POINT.match(point):
        raise ConfigError(f"ablation point {point!r} must look like lam~0.05, distance~l2, fft~per_sample "
                          "or wa_bn~average")
    key, value = point.split("~")
    if key == "lam":
        try:
            return {key: float(value)}
        except ValueError:
            raise ConfigError(f"ablation point {point!r}: fr.lam must be a number") from None
    if value not in POINT_VALUES[key]:
        raise ConfigError(f"ablation point {point!r}: fr.{key} must be one of {POINT_VALUES[key]}")
    return {key: value}


# ---------------------------------------------------------------------------------------------- the schema
def schema(path) -> dict:
    """The JSON schema of ``workflow/schemas/config.schema.yaml`` with the registry's names filled in."""
    import yaml

    s = yaml.safe_load(Path(path).read_text())
    d = s["definitions"]
    d["dataset"]["enum"] = list(DATASETS)
    d["arch"]["pattern"] = f"^({ARCH_PATTERN})$"
    d["attack"]["properties"]["type"]["enum"] = list(ATTACK_TYPES)
    for key, values in POINT_VALUES.items():                    # fr.distance, fr.fft, fr.wa_bn
        d["fr"]["properties"][key]["enum"] = list(values)
    s["properties"]["ablations"]["additionalProperties"]["properties"]["param"]["enum"] = ["lam", *POINT_VALUES]
    return s


def _types(node: dict, root: dict) -> set:
    """The JSON types a schema node admits (following $ref, allOf, oneOf, anyOf)."""
    if "$ref" in node:
        return _types(root["definitions"][node["$ref"].rsplit("/", 1)[1]], root)
    out = set(node["type"]) if isinstance(node.get("type"), list) else {node["type"]} if "type" in node else set()
    for k in ("allOf", "oneOf", "anyOf"):
        for sub in node.get(k, []):
            out |= _types(sub, root)
    if "enum" in node:
        out |= {type(v).__name__ for v in node["enum"]}
    return out


def _child(node: dict, key, root: dict) -> dict | None:
    """The schema node of ``key`` inside ``node`` (properties, additionalProperties, items)."""
    if "$ref" in node:
        return _child(root["definitions"][node["$ref"].rsplit("/", 1)[1]], key, root)
    for k in ("allOf", "oneOf", "anyOf"):
        for sub in node.get(k, []):
            found = _child(sub, key, root)
            if found is not None:
                return found
    if isinstance(key, int):
        return node.get("items") if isinstance(node.get("items"), dict) else None
    if key in node.get("properties", {}):
        return node["properties"][key]
    extra = node.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def coerce_strings(value, node: dict, root: dict):
    """Values from ``snakemake --config 'train={"epochs": 3}'`` arrive as strings ('3'); read them as the numbers,
    booleans or nulls the schema asks for. Anything that does not parse stays a string, and the schema check then
    names it."""
    if isinstance(value, dict):
        return {k: coerce_strings(v, _child(node, k, root) or {}, root) for k, v in value.items()}
    if isinstance(value, list):
        return [coerce_strings(v, _child(node, i, root) or {}, root) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    types = _types(node, root)
    if "string" in types and not re.fullmatch(NUMBER, value):
        return value
    if value in ("null", "~", "None") and {"null", "NoneType"} & types:
        return None
    if value in ("true", "True", "false", "False") and {"boolean", "bool"} & types:
        return value in ("true", "True")
    if "integer" in types and re.fullmatch(r"[+-]?\d+", value):
        return int(value)
    if "number" in types and "string" not in types:
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def check_schema(config: dict, schema_path) -> None:
    import jsonschema

    errors = list(jsonschema.Draft202012Validator(schema(schema_path)).iter_errors(config))
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


def load(config: dict, schema_path) -> dict:
    """The config as the workflow uses it: command-line strings read as numbers, then every check. Mutates and
    returns ``config`` (Snakemake's global dict)."""
    fixed = coerce_strings(config, schema(schema_path), schema(schema_path))
    config.clear()
    config.update(fixed)
    check_config(config, schema_path)
    return config


# ---------------------------------------------------------------------------------------------- cross-key checks
def require_attack(config: dict, name: str, key: str) -> None:
    """``name`` (found at config key ``key``) must be an entry of ``evaluation.attacks``."""
    if name not in config["evaluation"]["attacks"]:
        raise ConfigError(f"{key} = {name!r} is not an attack in evaluation.attacks "
                          f"({', '.join(config['evaluation']['attacks'])})")


def require_table(config: dict, name: str, key: str) -> None:
    if name not in config["tables"]:
        raise ConfigError(f"{key} = {name!r} is not a table in tables ({', '.join(config['tables'])})")


def evaluation_eps(config: dict, dataset: str, table: str | None = None):
    """The threat model's L-inf eps of ``dataset`` (float, or None = unbounded): ``tables.<table>.eps.<dataset>``,
    else ``evaluation.eps.<dataset>``, else ``evaluation.eps.default``. Never a model's training eps."""
    t = ((config["tables"].get(table) or {}).get("eps") or {}) if table else {}
    eps = config["evaluation"]["eps"]
    value = t.get(dataset, eps.get(dataset, eps["default"]))
    return None if value == UNBOUNDED else number(value, f"eps of {dataset}")


def check_attack(config: dict, name: str, eps, key: str) -> None:
    """A fixed-eps attack needs a bounded threat model; a minimal-perturbation search works with either."""
    a = config["evaluation"]["attacks"][name]
    if eps is None and a["type"] in BOUNDED_ATTACKS and "eps" not in a:
        raise ConfigError(f"{key}: attack {name!r} ({a['type']}) needs an eps, but the threat model there is "
                          f"unbounded (use a minimal-perturbation attack, or give the data set an eps)")


def check_analysis(config: dict) -> None:
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
        size = dataset_info(ds).size
        step = bandwidth_step(config, ds)
        if size % step:
            raise ConfigError(f"analysis.bandwidth_step {step} for {ds} must divide its image size {size}")
        if a["figure1_bandwidth"] > size:
            raise ConfigError(f"analysis.figure1_bandwidth {a['figure1_bandwidth']} exceeds the {ds} image size "
                              f"{size}")
        check_attack(config, a["attack"], evaluation_eps(config, ds), "analysis.attack")


def bandwidth_step(config: dict, dataset: str) -> int:
    steps = config["analysis"]["bandwidth_step"]
    return int(steps.get(dataset, steps["default"]))


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


def check_smooth_kernels(config: dict) -> None:
    """Each figure draws a table's models on some of its data sets."""
    for name, f in (config.get("smooth_kernels") or {}).items():
        require_table(config, f["table"], f"smooth_kernels.{name}.table")
        have = config["tables"][f["table"]]["datasets"]
        for ds in f.get("datasets", []) + ([f["dataset"]] if "dataset" in f else []):
            if ds not in have:
                raise ConfigError(f"smooth_kernels.{name}: data set {ds} is not in tables.{f['table']}.datasets "
                                  f"({', '.join(have)})")


def check_train(config: dict, dataset: str, method: str | None, where: str) -> None:
    tr = resolve(config, "train", dataset, method)
    ms = tr["milestones"]
    if ms != sorted(ms) or any(not 0 < m < tr["epochs"] for m in ms):
        raise ConfigError(f"{where}.milestones {ms} must be increasing epochs below {where}.epochs ({tr['epochs']})")
    eps = number(tr["eps"], f"{where}.eps")
    steps = [step_size(tr[k], eps, f"{where}.{k}") for k in ("step_size", "val_step_size")]
    if eps > 1 or max(steps) > 1:
        raise ConfigError(f"{where}.eps / step_size are in [0, 1] pixel units (e.g. 8/255), got {eps}, {steps[0]}")
    if method and (parse_method(method).fr != "none" or parse_method(method).swa) and not ms:
        raise ConfigError(f"{where}.milestones is empty, but {method} starts FR / SWA at the first decay")
    if method and parse_method(method).sk:
        lam, h = float(tr["sk_lambda"]), parse_method(method).prefix in H_CONTROLS
        if (lam < 0) != h or lam == 0:
            raise ConfigError(f"{where}.sk_lambda = {lam:g} for {method}: the R methods need a positive lambda, the "
                              f"H controls ({', '.join(H_CONTROLS)}) a negative one")


def check_config(config: dict, schema_path) -> None:
    """Raise ConfigError naming the first offending key; silent when the config is usable."""
    check_schema(config, schema_path)
    ev = config["evaluation"]
    for name, a in ev["attacks"].items():
        if "eps" in a:
            number(a["eps"], f"evaluation.attacks.{name}.eps")
        if "step_size" in a:
            step_size(a["step_size"], 1.0, f"evaluation.attacks.{name}.step_size")
    for ds, e in ev["eps"].items():
        if e != UNBOUNDED:
            number(e, f"evaluation.eps.{ds}")
    used = set()
    for name, t in config["tables"].items():
        for i, m in enumerate(t["methods"]):
            parse_method(m, f"tables.{name}.methods[{i}]")
        for ds, ms in (t.get("methods_by_dataset") or {}).items():
            for i, m in enumerate(ms):
                parse_method(m, f"tables.{name}.methods_by_dataset.{ds}[{i}]")
        for ds, e in (t.get("eps") or {}).items():
            if e != UNBOUNDED:
                number(e, f"tables.{name}.eps.{ds}")
        for i, c in enumerate(t["columns"]):
            require_attack(config, c, f"tables.{name}.columns[{i}]")
            for ds in t["datasets"]:
                check_attack(config, c, evaluation_eps(config, ds, name), f"tables.{name}.columns[{i}] on {ds}")
        for ds in t["datasets"]:
            used |= {(ds, m) for m in (t.get("methods_by_dataset") or {}).get(ds, t["methods"])}
    check_analysis(config)
    check_ablations(config)
    check_smooth_kernels(config)
    for i, t in enumerate(config["sanity"].get("tables", [])):
        require_table(config, t, f"sanity.tables[{i}]")
    for i, c in enumerate(config["sanity"]["compare"]):
        require_attack(config, c, f"sanity.compare[{i}]")
    for key in config.get("methods") or {}:
        parse_method(key, f"methods.{key}")
    overrides = config.get("datasets") or {}
    for ds, over in overrides.items():
        for key in (over or {}).get("methods") or {}:
            parse_method(key, f"datasets.{ds}.methods.{key}")
    runs = [(ds, None, f"datasets.{ds}.train" if ds in overrides else "train")
            for ds in sorted({d for d, _ in used} | set(overrides))]
    runs += [(ds, m, f"datasets.{ds}.methods.{m}.train") for ds, over in overrides.items()
             for m in (over or {}).get("methods") or {}]
    runs += [(ds, m, f"methods.{m}.train") for ds in sorted({d for d, _ in used}) for m in config.get("methods") or {}]
    runs += [(ds, m, f"tables (method {m} on {ds})") for ds, m in sorted(used)]
    for ds, m, where in runs:
        check_train(config, ds, m, where)
