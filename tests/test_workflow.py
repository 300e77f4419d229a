"""The Snakemake workflow itself: what a dry run plans, one-line config errors, and a tiny end-to-end run."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT, synthetic_images

SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]
DEFAULT = str(ROOT / "config/config.yaml")


def snakemake(tmp_path, *args, configs=(DEFAULT,), timeout=900):
    cmd = SNAKEMAKE + ["--directory", str(tmp_path), *args, "--configfile", *map(str, configs)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def planned(out: str) -> dict:
    stats = out.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", stats, re.M)}


def test_dry_run_of_paper_table2_plans_every_model_and_evaluation(tmp_path):
    r = snakemake(tmp_path, "-n", "--cores", "all", "results/table2.csv")
    assert r.returncode == 0, r.stderr
    jobs = planned(r.stdout + r.stderr)
    # 4 data sets x 3 methods; each method continues its data set's shared PGD-AT prefix (first 75 / 15 epochs)
    assert jobs == {"prepare_dataset": 4, "train_prefix": 4, "train": 12, "evaluate": 60, "sanity": 12, "table": 1}


def test_one_evaluation_by_path_builds_only_its_branch(tmp_path):
    r = snakemake(tmp_path, "-n", "--cores", "1", "results/eval/cifar10/resnet18/pgd_at_fr/seed0/pgd20.json")
    assert r.returncode == 0, r.stderr
    assert planned(r.stdout + r.stderr) == {"prepare_dataset": 1, "train_prefix": 1, "train": 1, "evaluate": 1}


@pytest.mark.parametrize("bad,key", [
    ({"train": {"epoch": 10}}, "train.epoch"),
    ({"tables": {"table2": {"methods": ["pgd_at_frr"]}}}, "tables.table2.methods"),
    ({"train": {"eps": -1}}, "train.eps"),
])
def test_bad_config_gives_one_clear_line_before_any_job(tmp_path, bad, key):
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    r = snakemake(tmp_path, "-n", "--cores", "1", "results/table2.csv", configs=(DEFAULT, tmp_path / "bad.yaml"))
    assert r.returncode != 0
    line = [ln for ln in r.stderr.splitlines() if ln.startswith("Config error:")]
    assert len(line) == 1 and key in line[0], r.stderr
    assert "Traceback" not in r.stderr


def tiny_study(tmp_path, **sections) -> dict:
    """A study on 360 synthetic MNIST-like images with a 4/8/32 small CNN: seconds per job. Writes tiny.yaml."""
    x, y = synthetic_images(360, seed=11)
    xt, yt = synthetic_images(60, seed=12)
    np.savez(tmp_path / "mnist_like.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    tiny = {
        "data": {"paths": {"mnist": str(tmp_path / "mnist_like.npz")}, "download": False},
        "train": {"device": "cpu", "epochs": 3, "milestones": [2], "batch_size": 32, "step_size": 0.05, "steps": 3,
                  "val_steps": 3, "lr": 0.05, "test_curve_limit": 20},  # MNIST's eps: 0.3 (datasets.mnist)
        "archs": {"small_cnn": {"c1": 4, "c2": 8, "hidden": 32}},
        "resources": {"train": {"threads": 1}, "evaluate": {"threads": 1}},
        "tables": {"table2": {"datasets": ["mnist"], "archs": ["small_cnn"]}},
        **sections,
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny))
    return tiny


@pytest.mark.slow
def test_tiny_end_to_end_run_builds_table2(tmp_path):
    tiny = tiny_study(tmp_path, evaluation={"n_test": 40, "attacks": {"aa": {"type": "autoattack", "n_test": 12}}},
                      sanity={"n_test": 30, "square_queries": 50, "eps_grid": [1, 3]})
    r = snakemake(tmp_path, "--cores", "2", "results/table2.csv", configs=(DEFAULT, tmp_path / "tiny.yaml"))
    assert r.returncode == 0, r.stderr[-3000:]
    table = pd.read_csv(tmp_path / "results/table2.csv")
    assert list(table.columns[:8]) == ["dataset", "arch", "method", "clean", "pgd20", "pgd50", "cw", "aa"]
    assert table["method"].tolist() == ["pgd_at", "pgd_at_fr", "pgd_at_fr_wa"]
    metrics = table[["clean", "pgd20", "pgd50", "cw", "aa"]]
    assert ((metrics >= 0) & (metrics <= 100)).all().all()
    for m in table["method"]:  # AutoAttack starts from the clean-correct points of its own (smaller) subset
        aa = json.loads((tmp_path / f"results/eval/mnist/small_cnn/{m}/seed0/aa.json").read_text())
        assert aa["n"] == 12 and aa["accuracy"] <= aa["breakdown"]["clean"]
        assert list(aa["breakdown"]) == ["apgd-ce", "apgd-t", "clean", "fab-t", "square"]  # sorted keys
    md = (tmp_path / "results/table2.md").read_text()
    assert "| mnist | small_cnn | pgd_at_fr_wa |" in md
    # per-example results sit beside every accuracy and agree with it
    res = tmp_path / "results/eval/mnist/small_cnn/pgd_at_fr/seed0"
    per = np.load(res / "pgd20.npz")
    assert len(per["correct"]) == 40 and 100 * per["correct"].mean() == pytest.approx(
        table.loc[table.method == "pgd_at_fr", "pgd20"].item(), abs=0.01)
    # the FR runs branched from the shared prefix instead of retraining it
    assert (tmp_path / "results/models/mnist/small_cnn/pgd_at/seed0/prefix.pt").exists()
    assert "branching pgd_at_fr" in (tmp_path / "results/models/mnist/small_cnn/pgd_at_fr/seed0/train.log").read_text()
    # sanity checks ran for every table model and are summarised under the table
    assert "Sanity checks:" in md
    for m in table["method"]:
        checks = pd.read_csv(tmp_path / f"results/sanity/mnist/small_cnn/{m}/seed0.csv")
        assert {"eps_zero_is_clean", "crosscheck_foolbox_pgd", "autoattack_not_weaker"} <= set(checks["check"])

    # a user's own checkpoint (bare network, DataParallel prefixes) scored through the same rules
    import torch
    from specrobust.evaluate import load_model
    model, meta = load_model(tmp_path / "results/models/mnist/small_cnn/pgd_at/seed0/model.pt")
    torch.save({"state_dict": {f"module.{k}": v for k, v in model[1].state_dict().items()}}, tmp_path / "mine.pt")
    tiny["external"] = {"mine": {"path": str(tmp_path / "mine.pt"), "arch": "small_cnn", "dataset": "mnist",
                                 "mean": meta["mean"], "std": meta["std"]}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny))
    r = snakemake(tmp_path, "--cores", "2", "results/external.csv", "results/sanity.csv",
                  configs=(DEFAULT, tmp_path / "tiny.yaml"))
    assert r.returncode == 0, r.stderr[-3000:]
    ext = pd.read_csv(tmp_path / "results/external.csv")
    assert ext["method"].tolist() == ["external_mine"]
    # the same weights give the same numbers as our own model on the same images
    ours = table[table.method == "pgd_at"].iloc[0]
    assert ext.iloc[0]["clean"] == ours["clean"] and ext.iloc[0]["pgd20"] == ours["pgd20"]
    sanity_all = pd.read_csv(tmp_path / "results/sanity.csv")
    assert set(sanity_all["method"]) == {"pgd_at", "pgd_at_fr", "pgd_at_fr_wa", "natural"}


def test_slurm_profile_dry_run_shows_requests_per_rule(tmp_path):
    r = subprocess.run(SNAKEMAKE + ["--directory", str(tmp_path), "-n", "--profile", str(ROOT / "profiles/slurm"),
                                    "results/table2.csv", "--configfile", DEFAULT],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    jobs = re.findall(r"^rule (\w+):.*?resources: ([^\n]+)", r.stdout + r.stderr, re.M | re.S)
    req = {}
    for rule, res in jobs:
        req.setdefault(rule, []).append(dict(kv.split("=", 1) for kv in res.split(", ")))
    for rule in ("train_prefix", "train", "evaluate", "sanity"):
        assert all(j["gpu"] == "1" and int(j["runtime"]) > 0 and int(j["mem_mb"]) > 0 for j in req[rule]), rule
    # runtime scales with data set and epochs: Tiny ImageNet's 75-epoch prefix asks for more than SVHN's 15
    prefix = {int(j["runtime"]) for j in req["train_prefix"]}
    assert len(prefix) > 1 and max(prefix) > 5 * min(prefix)
    assert all(j["slurm_partition"] == "cpu" for j in req["prepare_dataset"])


def test_crafted_paths_cannot_escape_results(tmp_path):
    for target in ["results/models/../../../etc/resnet18/pgd_at/seed0/model.pt",
                   "results/eval/cifar10/resnet18/pgd_at/seed0/../../../../x/aa.json",
                   "results/models/cifar10/resnet18/pgd_at/seed0/../../../../../tmp/x/model.pt"]:
        r = snakemake(tmp_path, "-n", "--cores", "1", target)
        assert r.returncode != 0, target
        assert "No rule to produce" in r.stdout + r.stderr, target


def test_a_method_with_its_own_schedule_trains_alone(tmp_path):
    (tmp_path / "m.yaml").write_text(yaml.safe_dump({"methods": {"pgd_at_fr_wa": {"train": {"lr": 0.05}}}}))
    r = snakemake(tmp_path, "-n", "--cores", "1", "results/models/cifar10/resnet18/pgd_at_fr_wa/seed0/model.pt",
                  configs=(DEFAULT, tmp_path / "m.yaml"))
    assert r.returncode == 0, r.stderr
    assert planned(r.stdout + r.stderr) == {"prepare_dataset": 1, "train": 1}  # no shared prefix: lr differs
    r = snakemake(tmp_path, "-n", "--cores", "1", "results/models/cifar10/resnet18/pgd_at_fr/seed0/model.pt",
                  configs=(DEFAULT, tmp_path / "m.yaml"))
    assert planned(r.stdout + r.stderr) == {"prepare_dataset": 1, "train_prefix": 1, "train": 1}


@pytest.mark.parametrize("table,models,prefixes,columns", [
    ("table3", 6, 4, 5), ("table4", 6, 2, 5), ("table5", 12, 4, 5), ("table6", 12, 4, 5), ("table7", 12, 4, 5),
    ("table8", 12, 4, 5), ("aaai_table2", 7, 4, 5), ("smooth_kernels_table1", 30, 30, 8),
])
def test_each_paper_table_plans_exactly_its_models(tmp_path, table, models, prefixes, columns):
    """Models = the paper's rows; each is trained once (prefix shared by runs that differ only after the first
    decay) and evaluated on the table's columns plus the sanity comparison's attacks."""
    r = snakemake(tmp_path, "-n", "--cores", "all", f"results/{table}.csv")
    assert r.returncode == 0, r.stderr[-2000:]
    jobs = planned(r.stdout + r.stderr)
    cfg = yaml.safe_load(Path(DEFAULT).read_text())
    extra = len(set(cfg["sanity"]["compare"]) - set(cfg["tables"][table]["columns"]))
    assert (jobs["train"], jobs["train_prefix"], jobs["sanity"]) == (models, prefixes, models)
    assert jobs["evaluate"] == models * (columns + extra)


def test_quick_config_has_every_table_in_paper_shape(tmp_path):
    quick = str(ROOT / "config/quick.yaml")
    tables = yaml.safe_load(Path(DEFAULT).read_text())["tables"]
    r = snakemake(tmp_path, "-n", "--cores", "all", *[f"results/{t}.csv" for t in tables], configs=(DEFAULT, quick))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "fashionmnist" in r.stdout and "cifar10" not in r.stdout and "svhn" not in r.stdout
    assert planned(r.stdout + r.stderr)["table"] == len(tables)


def test_runtime_request_follows_whether_the_job_continues_a_prefix(tmp_path):
    """A method with its own schedule trains all epochs alone, so it asks for the whole run's time."""
    (tmp_path / "m.yaml").write_text(yaml.safe_dump({"methods": {"pgd_at_fr_wa": {"train": {"lr": 0.05}}}}))
    r = subprocess.run(SNAKEMAKE + ["--directory", str(tmp_path), "-n", "--profile", str(ROOT / "profiles/slurm"),
                                    "results/models/cifar10/resnet18/pgd_at_fr_wa/seed0/model.pt",
                                    "results/models/cifar10/resnet18/pgd_at_fr/seed0/model.pt",
                                    "--configfile", DEFAULT, str(tmp_path / "m.yaml")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    runtimes = {m[1]: int(m[2]) for m in re.finditer(
        r"output: results/models/cifar10/resnet18/(\w+)/seed0/model.pt.*?runtime=(\d+)", r.stdout, re.S)}
    # 100 epochs alone against the 25 epochs after the shared prefix (minutes are truncated to integers)
    assert set(runtimes) == {"pgd_at_fr_wa", "pgd_at_fr"}
    assert 4 * runtimes["pgd_at_fr"] <= runtimes["pgd_at_fr_wa"] <= 4 * runtimes["pgd_at_fr"] + 4


@pytest.mark.parametrize("target,jobs", [
    # natural, L- and robust ResNet-18 on four data sets; one spectral pass each
    ("results/table1.csv", {"prepare_dataset": 4, "train_prefix": 12, "train": 12, "spectral": 12, "lpf_table": 1}),
    ("results/aaai_table1.csv", {"prepare_dataset": 1, "train_prefix": 2, "train": 2, "spectral": 2, "lpf_table": 1}),
    # one figure by path: only its data set's three models and their heat maps
    ("results/figures/figure4_cifar10.png",
     {"prepare_dataset": 1, "train_prefix": 3, "train": 3, "heatmap": 3, "heatmap_figure": 1}),
    ("results/figures/kernels_svhn.pdf", {"prepare_dataset": 1, "train_prefix": 2, "train": 2, "kernels": 1}),
])
def test_each_analysis_target_plans_exactly_its_models(tmp_path, target, jobs):
    r = snakemake(tmp_path, "-n", "--cores", "all", target)
    assert r.returncode == 0, r.stderr[-2000:]
    assert planned(r.stdout + r.stderr) == jobs


def test_training_curves_and_eps_curves_cover_the_table_models(tmp_path):
    r = snakemake(tmp_path, "-n", "--cores", "all", "results/figures/eps_curves_aaai_table2.png",
                  "results/figures/training_curves_aaai_table2.pdf")
    assert r.returncode == 0, r.stderr[-2000:]
    jobs = planned(r.stdout + r.stderr)
    assert (jobs["train"], jobs["eps_curve"], jobs["curves_figure"]) == (7, 7, 2)


@pytest.mark.slow
def test_tiny_analysis_run_builds_table1_figures_kernels_and_curves(tmp_path):
    tiny_study(tmp_path, analysis={"datasets": ["mnist"], "aaai_datasets": ["mnist"], "arch": "small_cnn",
                                   "n_test": 40, "heatmap": {"n_test": 10, "v": 4.0, "stride": 2},
                                   "curves": ["table2"], "eps_n_test": 20, "eps_multiples": [0, 1, 4]})
    figs = [f"results/figures/{k}_mnist.png" for k in ("figure1", "figure2", "figure3", "figure4", "kernels")]
    figs += [f"results/figures/{k}_table2.pdf" for k in ("training_curves", "eps_curves")]
    r = snakemake(tmp_path, "--cores", "2", "results/table1.csv", "results/aaai_table1.csv", "results/kernels.csv",
                  *figs, configs=(DEFAULT, tmp_path / "tiny.yaml"))
    assert r.returncode == 0, r.stderr[-3000:]
    t1 = pd.read_csv(tmp_path / "results/table1.csv")
    assert t1["method"].tolist() == ["natural", "l_model", "pgd_at"]
    assert [c for c in t1.columns if c.startswith("lpf")] == [f"lpf{k}" for k in range(4, 29, 4)]
    assert (t1["lpf28"] >= t1["pgd20"]).all()  # k = 28 is no filtering: clean accuracy, never below PGD-20
    w1 = pd.read_csv(tmp_path / "results/aaai_table1.csv")
    assert w1["method"].tolist() == ["natural", "pgd_at"] and "pgd20_lpf12" in w1 and "pgd20_lpf8" not in w1
    assert (w1["clean_lpf28"].values == t1.set_index("method").loc[["natural", "pgd_at"], "lpf28"].values).all()
    for f in figs:
        for ext in (".png", ".pdf"):
            assert (tmp_path / f).with_suffix(ext).stat().st_size > 5000, f
    heat = np.load(tmp_path / "results/analysis/mnist/small_cnn/pgd_at/seed0/heatmap.npz")
    assert heat["error"].shape == (28, 28) and np.isnan(heat["error"]).sum() == 28 * 28 - 14 * 14  # stride 2
    kern = pd.read_csv(tmp_path / "results/kernels.csv")
    assert kern["method"].tolist() == ["natural", "pgd_at"] and (kern["roughness"] > 0).all()
    curve = pd.read_csv(tmp_path / "results/analysis/mnist/small_cnn/pgd_at_fr/seed0/eps_curve.csv")
    assert curve["eps"].tolist() == pytest.approx([0, 0.3, 1.2]) and curve["accuracy"].is_monotonic_decreasing
    metrics = pd.read_csv(tmp_path / "results/models/mnist/small_cnn/pgd_at_fr/seed0/metrics.csv")
    assert metrics["test_clean"].notna().all() and len(metrics) == 3  # prefix epochs included, test curve each


def test_one_ablation_point_by_path_builds_only_its_branch(tmp_path):
    point = "results/ablations/cifar10/resnet18/pgd_at_fr/lam~0.05/seed0/eval/pgd20.json"
    r = snakemake(tmp_path, "-n", "--cores", "1", point)
    assert r.returncode == 0, r.stderr[-2000:]
    assert planned(r.stdout + r.stderr) == {"prepare_dataset": 1, "train_prefix": 1, "train_ablation": 1,
                                            "evaluate_ablation": 1}
    r = snakemake(tmp_path, "-n", "--cores", "1", "results/ablations/fr_lambda.csv",
                  "results/ablations/fr_distance.csv")
    assert r.returncode == 0, r.stderr[-2000:]
    # 9 lambdas + 3 distances from one shared prefix, plus plain AT as the baseline; clean and PGD-20 each
    assert planned(r.stdout + r.stderr) == {"prepare_dataset": 1, "train_prefix": 1, "train": 1, "train_ablation": 12,
                                            "evaluate": 2, "evaluate_ablation": 24, "ablation": 2}


def test_an_ablation_point_outside_its_grammar_is_refused(tmp_path):
    r = snakemake(tmp_path, "-n", "--cores", "1", "results/ablations/cifar10/resnet18/pgd_at_fr/lam~x/seed0/model.pt")
    assert r.returncode != 0 and "lam~x" in r.stdout + r.stderr and "Traceback" not in r.stdout + r.stderr
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"ablations": {"fr_distance": {"values": ["l3"]}}}))
    r = snakemake(tmp_path, "-n", "--cores", "1", "results/ablations/fr_distance.csv",
                  configs=(DEFAULT, tmp_path / "bad.yaml"))
    line = [ln for ln in r.stderr.splitlines() if ln.startswith("Config error:")]
    assert r.returncode != 0 and len(line) == 1 and "ablations.fr_distance.values[0]" in line[0], r.stderr[-1500:]
