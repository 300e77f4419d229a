"""The conda environments named by the rules stay consistent with the package's own dependency list."""
import re
import tomllib

import yaml

from conftest import ROOT

CONDA_NAME = {"torch": "pytorch"}


def names(env: dict) -> set[str]:
    out = set()
    for dep in env["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for d in items:
            out.add(re.split(r"[=<>! ]", d.strip())[0].lower())
    return out


def test_every_rule_names_an_existing_env_and_it_has_every_dependency():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    rules = "\n".join(p.read_text() for p in (ROOT / "workflow/rules").glob("*.smk"))
    assert rules.count("conda:") == rules.count("\nrule ")  # every rule has an environment
    envs = set(re.findall(r'"\.\./\.\./(envs/[\w.]+\.yaml)"', (ROOT / "workflow/rules/common.smk").read_text()))
    assert envs
    for env_path in envs:
        env = yaml.safe_load((ROOT / env_path).read_text())
        have = names(env)
        for d in deps:
            name = re.split(r"[=<>! \[]", d)[0].lower()
            assert CONDA_NAME.get(name, name) in have, f"{env_path} lacks {name}"
        assert "-e ../" in str(env)  # the core package itself
        assert any(str(d).startswith("python=3.11") for d in env["dependencies"])
