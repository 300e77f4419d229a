"""The Snakemake workflow itself: what a dry run plans, one-line config errors, rerun decisions, tiny end-to-end
runs."""
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
from specrobust.config import deep_merge

SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]
DEFAULT = str(ROOT / "config/config.yaml")
QUICK = str(ROOT / "config/quick.yaml")


def snakemake(tmp_path, *args, configs=(DEFAULT,), timeout=900):
    cmd = SNAKEMAKE + ["--directory", str(tmp_path), *args, "--configfile", *map(str, configs)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def planned(out: str) -> dict:
    if "Nothing to be done" in out:
        return {}
    stats = out.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", stats, re.M)}


def test_dry_run_of_paper_table2_plans_every_model_and_evaluation(tmp_path):
    r = snakemake(tmp_path, "-n", "--cores", "all", "results/table2.csv")
    assert r.returncode == 0, r.stderr
    jobs = planned(r.stdout + r.stderr)
    # 4 data sets x 3 methods; each method continues its data set's shared PGD-AT prefix (first 75 / 15 epochs);
    # downloads are local jobs of their own, on the machine that runs Snakemake; each model's evaluations and sanity
    # checks are one group (rule evaluations), one submission on a cluster
    assert jobs == {"download_dataset": 4, "prepare_dataset": 4, "train_prefix": 4, "train": 12, "evaluate": 60,
                    "sanity": 12, "evaluations": 12, "table": 1}


def test_one_evaluation_by_path_builds_only_its_branch(tmp_path):
    r = snakemake(tmp_path, "-n", "--cores", "1",
                  "results/eval/cifar10/resnet18/pgd_at_fr/seed0/linf-8_255/pgd20.json")
    assert r.returncode == 0, r.stderr
    assert planned(r.stdout + r.stderr) == {"download_dataset": 1, "prepare_dataset": 1, "train_prefix": 1,
                                            "train": 1, "evaluate": 1}


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


def test_command_line_overrides_are_read_as_numbers(tmp_path):
    """`--config` hands nested values over as strings; they plan as the same values in a config file would."""
    r = snakemake(tmp_path, "-n", "--cores", "1", "results/table2.csv", "--config", 'train={"epochs": 3}')
    line = [ln for ln in r.stderr.splitlines() if ln.startswith("Config error:")]
    # read as the integer 3: the paper schedule's decays at 75 and 90 no longer fit, which is what the line says
    assert r.returncode != 0 and len(line) == 1 and "train.epochs (3)" in line[0], r.stderr[-2000:]
    r = snakemake(tmp_path, "-n", "--cores", "1", "results/table2.csv", "--config",
                  'train={"epochs": 3, "milestones": [2]}', 'fr={"lam": 0.2}', 'evaluation={"n_test": 100}')
    assert r.returncode == 0, r.stderr[-2000:]
    assert planned(r.stdout + r.stderr)["evaluate"] == 60
    r = snakemake(tmp_path, "-n", "--cores", "1", "results/table2.csv", "--config", 'fr={"lam": "much"}')
    line = [ln for ln in r.stderr.splitlines() if ln.startswith("Config error:")]
    assert len(line) == 1 and "fr.lam" in line[0] and "Traceback" not in r.stderr


def tiny_study(tmp_path, **sections) -> dict:
    """A study on 360 synthetic MNIST-like images with a 4/8/32 small CNN at eps 0.1: seconds per job."""
    x, y = synthetic_images(360, seed=11)
    xt, yt = synthetic_images(60, seed=12)
    np.savez(tmp_path / "mnist_like.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    tiny = {
        "data": {"paths": {"mnist": str(tmp_path / "mnist_like.npz")}, "download": False},
        "datasets": {"mnist": {"train": {"eps": 0.1, "step_size": "eps/4", "steps": 3}}},
        "train": {"device": "cpu", "epochs": 3, "milestones": [2], "batch_size": 32, "val_steps": 3, "lr": 0.05,
                  "test_curve_limit": 20},
        "evaluation": {"eps": {"mnist": 0.1}},
        "archs": {"small_cnn": {"c1": 4, "c2": 8, "hidden": 32}},
        "resources": {"train": {"threads": 1}, "evaluate": {"threads": 1}},
        "tables": {"table2": {"datasets": ["mnist"], "archs": ["small_cnn"]}},
    }
    tiny = deep_merge(tiny, sections)
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
    assert (table["threat"] == "linf-0.1").all() and (table["eps"] == 0.1).all()
    metrics = table[["clean", "pgd20", "pgd50", "cw", "aa"]]
    assert ((metrics >= 0) & (metrics <= 100)).all().all()
    res = tmp_path / "results/eval/mnist/small_cnn"
    for m in table["method"]:  # AutoAttack starts from the clean-correct points of its own (smaller) subset
        aa = json.loads((res / f"{m}/seed0/linf-0.1/aa.json").read_text())
        assert aa["n"] == 12 and aa["accuracy"] <= aa["breakdown"]["clean"] and aa["eps"] == 0.1
        assert list(aa["breakdown"]) == ["apgd-ce", "apgd-t", "clean", "fab-t", "square"]  # sorted keys
    pgd = json.loads((res / "pgd_at_fr/seed0/linf-0.1/pgd20.json").read_text())
    assert pgd["step_size"] == pytest.approx(0.025) and pgd["job"]["steps"] == 20   # eps/4, stated in the result
    md = (tmp_path / "results/table2.md").read_text()
    assert "| mnist | small_cnn | pgd_at_fr_wa |" in md and "L-inf 0.1" in md
    assert "Paired differences against the base method" in md and "| pgd_at_fr | pgd_at | PGD-20 |" in md
    # per-example results sit beside every accuracy and agree with it
    per = np.load(res / "pgd_at_fr/seed0/linf-0.1/pgd20.npz")
    assert len(per["correct"]) == 40 and 100 * per["correct"].mean() == pytest.approx(
        table.loc[table.method == "pgd_at_fr", "pgd20"].item(), abs=0.01)
    # the FR runs branched from the shared prefix instead of retraining it; each log states the job's record
    assert (tmp_path / "results/models/mnist/small_cnn/pgd_at/seed0/prefix.pt").exists()
    log = (tmp_path / "results/models/mnist/small_cnn/pgd_at_fr/seed0/train.log").read_text()
    job_line = next(line for line in log.splitlines() if "] job {" in line)
    assert "branching mnist/small_cnn/pgd_at_fr/seed0" in log and '"fr_lambda": 0.1' in job_line
    # sanity checks ran for every table model at the table's eps and are summarised under the table
    assert "Sanity checks:" in md
    for m in table["method"]:
        checks = pd.read_csv(tmp_path / f"results/sanity/mnist/small_cnn/{m}/seed0/linf-0.1.csv")
        assert {"eps_zero_is_clean", "crosscheck_foolbox_pgd", "autoattack_not_weaker",
                "predictions_spread"} <= set(checks["check"]) and (checks["eps"] == 0.1).all()

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


@pytest.mark.slow
def test_rerun_decisions_follow_exactly_the_values_a_job_uses(tmp_path):
    """Snakemake's default triggers (mtime, params, input, code, software-env) on the quick Table 2, built once at a
    tiny size: a key no job of the target uses changes nothing; a key one job uses reruns that job and its
    consumers only."""
    small = {"train": {"epochs": 3, "milestones": [2], "train_limit": 256, "val_limit": 64, "test_curve_limit": 0},
             "data": {"val_limit": 64, "test_limit": 64},
             "evaluation": {"n_test": 48,
                            "attacks": {"aa": {"type": "autoattack", "version": "standard", "n_test": 8}}},
             "sanity": {"n_test": 32, "square_queries": 50, "eps_grid": [1, 3]}}
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(small))
    configs = (DEFAULT, QUICK, tmp_path / "small.yaml")
    r = snakemake(tmp_path, "--cores", "2", "results/table2.csv", configs=configs, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    # the quick Table 2 pairs FR and FR/WA with plain AT on the same images: difference, interval, McNemar's p
    md = (tmp_path / "results/table2.md").read_text()
    for m in ("pgd_at_fr", "pgd_at_fr_wa"):
        rows = [ln for ln in md.splitlines() if ln.startswith(f"| fashionmnist | small_cnn | {m} | pgd_at |")]
        assert len(rows) == 5 and all(re.search(r"\| [+-]\d+\.\d\d( \*n\.s\.\*)? \| \[.+\] \| [0-9.e-]+ \|$", r)
                                      for r in rows), rows

    def plan(change=None, *config_args):
        extra = ()
        if change:
            (tmp_path / "change.yaml").write_text(yaml.safe_dump(change))
            extra = (tmp_path / "change.yaml",)
        args = ("--config", *config_args) if config_args else ()
        r = snakemake(tmp_path, "-n", "--cores", "1", "results/table2.csv", *args, configs=configs + extra)
        assert r.returncode == 0, r.stderr[-2000:]
        return planned(r.stdout + r.stderr)

    assert plan() == {}
    assert plan({"data": {"paths": {"restricted_imagenet": str(tmp_path)}}}) == {}
    assert plan({"analysis": {"n_test": 7}}) == {}
    assert plan({"analysis": {"heatmap": {"v": 2.0}}}) == {}
    assert plan({"ablations": {"fr_lambda": {"values": [0.05]}}}) == {}
    # the three PGD-20 evaluations, the sanity checks that reuse them, the groups' summaries, the table
    pgd = {"evaluate": 3, "sanity": 3, "evaluations": 3, "table": 1}
    assert plan({"evaluation": {"attacks": {"pgd20": {"steps": 7}}}}) == pgd
    # FR and FR/WA continue the shared prefix; plain AT and the prefix do not use fr.lam. Each retrained model's
    # group reruns all its evaluations: Table 2's five and, for pgd_at_fr (also in the workshop's Table 2), FGSM
    fr = {"train": 2, "evaluate": 5 + 6, "sanity": 2, "evaluations": 2, "table": 1}
    assert plan({"fr": {"lam": 0.2}}) == fr
    assert plan(None, 'fr={"lam": 0.2}') == fr
    assert plan(None, 'train={"epochs": 3}') == {}                       # the value it already has
    # every evaluation but AutoAttack (its own n_test 8): 3 x 5 + 2 FGSM - 3
    assert plan(None, 'evaluation={"n_test": 100}') == {"evaluate": 14, "sanity": 3, "evaluations": 3, "table": 1}


@pytest.mark.parametrize("table,models,prefixes,evaluations,groups", [
    # Table 3's five models that the workshop's Table 2 shares get its FGSM column too (their evaluation group)
    ("table3", 6, 4, 30 + 5, 6), ("table4", 6, 2, 30, 6), ("table5", 12, 4, 60, 12), ("table6", 12, 4, 60, 12),
    ("table7", 12, 4, 60, 12), ("table8", 12, 4, 60, 12),
    # the workshop's FGSM column on its 7 models, and on Table 3's AT, TRADES, MART and AWP (the same models)
    ("aaai_table2", 7, 4, 35 + 7, 7),
    # 30 models x 8 columns; the sanity checks guard each row at an eps: MNIST and Fashion-MNIST (unbounded
    # searches) at the data set's 0.3 / 0.1 with their own clean, PGD-20/50, C&W, AA (16 x 5), CIFAR-10 and
    # Restricted ImageNet at the table's eps, reusing the clean column (14 x 4); the table waits for one group per
    # model at its threat model (the sanity checks' own evaluations form the second group of MNIST's rows)
    ("smooth_kernels_table1", 30, 30, 240 + 80 + 56, 30),
])
def test_each_paper_table_plans_exactly_its_models(tmp_path, table, models, prefixes, evaluations, groups):
    """Models = the paper's rows; each is trained once (prefix shared by runs that differ only after the first
    decay) and evaluated on the table's columns plus the sanity comparison's attacks."""
    r = snakemake(tmp_path, "-n", "--cores", "all", f"results/{table}.csv")
    assert r.returncode == 0, r.stderr[-2000:]
    jobs = planned(r.stdout + r.stderr)
    assert (jobs["train"], jobs["train_prefix"], jobs["sanity"], jobs["evaluate"], jobs["evaluations"]) == (
        models, prefixes, models, evaluations, groups)


def test_quick_config_has_every_table_in_paper_shape(tmp_path):
    tables = yaml.safe_load(Path(DEFAULT).read_text())["tables"]
    r = snakemake(tmp_path, "-n", "--cores", "all", *[f"results/{t}.csv" for t in tables], configs=(DEFAULT, QUICK))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "fashionmnist" in r.stdout and "cifar10" not in r.stdout and "svhn" not in r.stdout
    assert planned(r.stdout + r.stderr)["table"] == len(tables)


def test_a_method_with_its_own_schedule_trains_alone(tmp_path):
    (tmp_path / "m.yaml").write_text(yaml.safe_dump({"methods": {"pgd_at_fr_wa": {"train": {"lr": 0.05}}}}))
    r = snakemake(tmp_path, "-n", "--cores", "1", "results/models/cifar10/resnet18/pgd_at_fr_wa/seed0/model.pt",
                  configs=(DEFAULT, tmp_path / "m.yaml"))
    assert r.returncode == 0, r.stderr
    assert planned(r.stdout + r.stderr) == {"download_dataset": 1, "prepare_dataset": 1, "train": 1}
    r = snakemake(tmp_path, "-n", "--cores", "1", "results/models/cifar10/resnet18/pgd_at_fr/seed0/model.pt",
                  configs=(DEFAULT, tmp_path / "m.yaml"))
    assert planned(r.stdout + r.stderr) == {"download_dataset": 1, "prepare_dataset": 1, "train_prefix": 1,
                                            "train": 1}


def test_crafted_paths_cannot_escape_results(tmp_path):
    for target in ["results/models/../../../etc/resnet18/pgd_at/seed0/model.pt",
                   "results/eval/cifar10/resnet18/pgd_at/seed0/../../../../x/linf-8_255/aa.json",
                   "results/models/cifar10/resnet18/pgd_at/seed0/../../../../../tmp/x/model.pt"]:
        r = snakemake(tmp_path, "-n", "--cores", "1", target)
        assert r.returncode != 0, target
        assert "No rule to produce" in r.stdout + r.stderr, target


@pytest.mark.parametrize("target,jobs", [
    # natural, L- and robust ResNet-18 on four data sets; one spectral pass each
    ("results/table1.csv", {"download_dataset": 4, "prepare_dataset": 4, "train_prefix": 12, "train": 12,
                            "spectral": 12, "lpf_table": 1}),
    ("results/aaai_table1.csv", {"download_dataset": 1, "prepare_dataset": 1, "train_prefix": 2, "train": 2,
                                 "spectral": 2, "lpf_table": 1}),
    # one figure by path: only its data set's three models and their heat maps
    ("results/figures/figure4_cifar10.png",
     {"download_dataset": 1, "prepare_dataset": 1, "train_prefix": 3, "train": 3, "heatmap": 3, "heatmap_figure": 1}),
    ("results/figures/kernels_svhn.pdf", {"download_dataset": 1, "prepare_dataset": 1, "train_prefix": 2, "train": 2,
                                          "kernels": 1}),
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
                                   "n_test": 40, "spectrum_n_test": 20,
                                   "heatmap": {"n_test": 10, "v": 4.0, "stride": 2},
                                   "curves": ["table2"], "eps_n_test": 20, "eps_multiples": [0, 1, 4]})
    figs = [f"results/figures/{k}_mnist.png" for k in ("figure1", "figure2", "figure3", "figure4", "kernels")]
    figs += [f"results/figures/{k}_table2.pdf" for k in ("training_curves", "eps_curves")]
    r = snakemake(tmp_path, "--cores", "2", "results/table1.csv", "results/aaai_table1.csv", "results/kernels.csv",
                  *figs, configs=(DEFAULT, tmp_path / "tiny.yaml"))
    assert r.returncode == 0, r.stderr[-3000:]
    t1 = pd.read_csv(tmp_path / "results/table1.csv")
    assert t1["method"].tolist() == ["natural", "l_model", "pgd_at"] and (t1["eps"] == 0.1).all()
    assert [c for c in t1.columns if c.startswith("lpf")] == [f"lpf{k}" for k in range(4, 29, 4)]
    assert (t1["lpf28"] >= t1["pgd20"]).all()  # k = 28 is no filtering: clean accuracy, never below PGD-20
    w1 = pd.read_csv(tmp_path / "results/aaai_table1.csv")
    assert w1["method"].tolist() == ["natural", "pgd_at"] and "pgd20_lpf12" in w1 and "pgd20_lpf8" not in w1
    assert (w1["clean_lpf28"].values == t1.set_index("method").loc[["natural", "pgd_at"], "lpf28"].values).all()
    for f in figs:
        for ext in (".png", ".pdf"):
            assert (tmp_path / f).with_suffix(ext).stat().st_size > 5000, f
    spectral = np.load(tmp_path / "results/analysis/mnist/small_cnn/pgd_at/seed0/spectral.npz")
    assert int(spectral["n"]) == 40 and int(spectral["spectrum_n"]) == 20  # Table 1 on all, Figure 2 on fewer
    heat = np.load(tmp_path / "results/analysis/mnist/small_cnn/pgd_at/seed0/heatmap.npz")
    assert heat["error"].shape == (28, 28) and np.isnan(heat["error"]).sum() == 28 * 28 - 14 * 14  # stride 2
    kern = pd.read_csv(tmp_path / "results/kernels.csv")
    assert kern["method"].tolist() == ["natural", "pgd_at"] and (kern["roughness"] > 0).all()
    curve = pd.read_csv(tmp_path / "results/analysis/mnist/small_cnn/pgd_at_fr/seed0/eps_curve.csv")
    assert curve["eps"].tolist() == pytest.approx([0, 0.1, 0.4]) and curve["accuracy"].is_monotonic_decreasing
    assert curve["step_size"].tolist() == pytest.approx([0, 0.025, 0.1])              # each eps/4
    metrics = pd.read_csv(tmp_path / "results/models/mnist/small_cnn/pgd_at_fr/seed0/metrics.csv")
    assert metrics["test_clean"].notna().all() and len(metrics) == 3  # prefix epochs included, test curve each


def test_one_ablation_point_is_an_ordinary_run(tmp_path):
    points = [f"results/eval/cifar10/resnet18/{m}/seed0/linf-8_255/pgd20.json"
              for m in ("pgd_at_fr/lam~0.05", "pgd_at_fr_wa/wa_bn~average")]
    r = snakemake(tmp_path, "-n", "--cores", "1", *points)
    assert r.returncode == 0, r.stderr[-2000:]
    assert planned(r.stdout + r.stderr) == {"download_dataset": 1, "prepare_dataset": 1, "train_prefix": 1,
                                            "train": 2, "evaluate": 2}   # both branch from the one AT prefix
    r = snakemake(tmp_path, "-n", "--cores", "1", "results/ablations/fr_lambda.csv",
                  "results/ablations/fr_distance.csv")
    assert r.returncode == 0, r.stderr[-2000:]
    # 9 lambdas + 3 distances from one shared prefix, plus plain AT as the baseline; clean and PGD-20 each
    assert planned(r.stdout + r.stderr) == {"download_dataset": 1, "prepare_dataset": 1, "train_prefix": 1,
                                            "train": 13, "evaluate": 26, "ablation": 2}


def test_an_ablation_point_outside_its_grammar_is_refused(tmp_path):
    r = snakemake(tmp_path, "-n", "--cores", "1", "results/models/cifar10/resnet18/pgd_at_fr/lam~x/seed0/model.pt")
    assert r.returncode != 0 and "Traceback" not in r.stdout + r.stderr
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"ablations": {"fr_distance": {"values": ["l3"]}}}))
    r = snakemake(tmp_path, "-n", "--cores", "1", "results/ablations/fr_distance.csv",
                  configs=(DEFAULT, tmp_path / "bad.yaml"))
    line = [ln for ln in r.stderr.splitlines() if ln.startswith("Config error:")]
    assert r.returncode != 0 and len(line) == 1 and "ablations.fr_distance.values[0]" in line[0], r.stderr[-1500:]


def test_no_rule_script_reads_the_config():
    """Scripts see input, output, params (the job's record), log, threads and resources only."""
    for script in (ROOT / "workflow/scripts").glob("*.py"):
        text = script.read_text()
        assert not re.search(r"\.config\b|\.wildcards\b|\.rule\b", text), script.name
