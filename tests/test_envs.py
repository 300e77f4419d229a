"""The conda environments and the container recipe deploy anywhere and agree with the package's own pins; rule
scripts import the core from the workflow's own src/."""
import re
import shutil
import subprocess
import sys
import tomllib

import yaml

from conftest import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def env(name) -> dict:
    return yaml.safe_load((ROOT / f"envs/{name}.yaml").read_text())


def specs(deps) -> dict[str, str]:
    """name -> the whole requirement string, for pip-style and conda-style entries."""
    out = {}
    for dep in deps:
        for d in dep["pip"] if isinstance(dep, dict) else [dep]:
            out[re.split(r"[=<>! \[]", d.strip())[0].lower()] = d.strip().replace(" ", "")
    return out


def test_every_rule_names_an_environment():
    for smk in (ROOT / "workflow/rules").glob("*.smk"):
        text = smk.read_text()
        assert text.count("conda:") == len(re.findall(r"^rule ", text, re.M)), smk.name
    common = (ROOT / "workflow/rules/common.smk").read_text()
    assert set(re.findall(r'"\.\./\.\./envs/(\w+)\.yaml"', common)) == {"torch", "analysis"}


def test_environments_are_self_contained():
    """Snakemake creates an environment from a copy of its file under .snakemake/conda/: a relative or local path
    (`-e ..`, `file:`) would point nowhere."""
    for name in ("torch", "analysis"):
        for d in specs(env(name)["dependencies"]).values():
            assert not re.match(r"^(-e|\.|/|~|file:|git\+)", d) and ".." not in d, (name, d)


def test_environment_pins_agree_with_pyproject_and_setup():
    core = specs(PROJECT["dependencies"])
    torch_extra = specs(PROJECT["optional-dependencies"]["torch"])
    torch_env, analysis_env = specs(env("torch")["dependencies"]), specs(env("analysis")["dependencies"])
    assert analysis_env == {"python": "python=3.11", "pip": "pip", **core}
    assert torch_env == {"python": "python=3.11", "pip": "pip", **core, **torch_extra}
    setup = (ROOT / "setup.sh").read_text()
    for name in ("torch", "torchvision"):           # setup.sh installs these two first, from the same pins
        assert f'"{torch_extra[name]}"' in setup, name
    assert "==" in torch_extra["torch"] and "==" in torch_extra["torchvision"]   # exact: the CUDA wheel from PyPI


def test_container_recipe_is_made_from_the_environments():
    recipe = (ROOT / "workflow/containers/specrobust.def").read_text()
    for name in ("torch", "analysis"):
        assert f"envs/{name}.yaml" in recipe and f"-f /opt/envs/{name}.yaml" in recipe


def test_table_scripts_run_without_torch():
    code = ("import sys; sys.modules['torch'] = None; import specrobust.tables, specrobust.config, specrobust.jobs, "
            "specrobust.plan, specrobust.script, specrobust.comparison, specrobust.figures; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "ok", r.stderr


def test_rule_scripts_import_the_core_from_the_workflows_own_src(tmp_path):
    """A copy of the workflow elsewhere: its rule scripts run its own src/specrobust (put on PYTHONPATH by the
    Snakefile), not whatever is installed, as in a conda environment or on a node without the package."""
    copy = tmp_path / "workflow_copy"
    copy.mkdir()
    for part in ("Snakefile", "workflow", "src", "config", "envs", "reference"):
        (shutil.copytree if (ROOT / part).is_dir() else shutil.copy)(ROOT / part, copy / part)
    init = copy / "src/specrobust/__init__.py"
    init.write_text(init.read_text() + "\nWORKFLOW_COPY = True\n")
    r = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(copy / "Snakefile"), "--directory",
                        str(tmp_path / "run"), "--cores", "1", "results/plan_table2.md", "--configfile",
                        str(copy / "config/config.yaml")], capture_output=True, text=True, timeout=600,
                       env={"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1", "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr[-2000:]
    log = (tmp_path / "run/results/logs/plan_table2.log").read_text()
    assert f"core {copy / 'src/specrobust'} (a copy of the workflow)" in log


def test_snakemakes_min_version_is_the_pinned_one():
    pin = specs(PROJECT["optional-dependencies"]["workflow"])["snakemake"]
    assert f'min_version("{pin.split("==")[1]}")' in (ROOT / "Snakefile").read_text()
