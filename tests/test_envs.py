"""The conda environments named by the rules stay consistent with the package's own dependency lists."""
import re
import subprocess
import sys
import tomllib

import yaml

from conftest import ROOT

CONDA_NAME = {"torch": "pytorch"}
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def names(env: dict) -> set[str]:
    out = set()
    for dep in env["dependencies"]:
        for d in dep["pip"] if isinstance(dep, dict) else [dep]:
            out.add(re.split(r"[=<>! ]", d.strip())[0].lower())
    return out


def requirement(d: str) -> str:
    name = re.split(r"[=<>! \[]", d)[0].lower()
    return CONDA_NAME.get(name, name)


def env(name):
    return yaml.safe_load((ROOT / f"envs/{name}.yaml").read_text())


def test_every_rule_names_an_environment():
    for smk in (ROOT / "workflow/rules").glob("*.smk"):
        text = smk.read_text()
        assert text.count("conda:") == text.count("\nrule ") + text.startswith("rule "), smk.name
    common = (ROOT / "workflow/rules/common.smk").read_text()
    assert set(re.findall(r'"\.\./\.\./envs/(\w+)\.yaml"', common)) == {"torch", "analysis"}


def test_environments_carry_the_package_dependencies():
    core = {requirement(d) for d in PROJECT["dependencies"]}
    torch_extra = {requirement(d) for d in PROJECT["optional-dependencies"]["torch"]}
    assert core <= names(env("analysis")) and "pytorch" not in names(env("analysis"))
    assert core | torch_extra <= names(env("torch"))
    for e in (env("torch"), env("analysis")):
        assert "python=3.11" in e["dependencies"]
        assert all("=" in d or "<" in d or ">" in d for d in e["dependencies"] if isinstance(d, str) and d != "pip")


def test_table_scripts_run_without_torch():
    code = ("import sys; sys.modules['torch'] = None; import specrobust.tables, specrobust.config, "
            "specrobust.script, specrobust.comparison, specrobust.figures; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "ok", r.stderr
