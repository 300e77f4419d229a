"""The study plan of the paper config: every job with its resolved settings and GPU-hours, before training."""
import math

import pytest

from specrobust.config import evaluation_eps
from specrobust.plan import plan_rows, write_plan
from test_workflow import planned, snakemake


@pytest.fixture(scope="module")
def plan():
    import copy

    import yaml

    from conftest import ROOT
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    rows, saved = plan_rows(copy.deepcopy(config))
    return config, rows, saved


def test_every_awp_run_trains_200_epochs_with_decays_at_100_and_150(plan):
    _, rows, _ = plan
    awp = [r for r in rows if r["kind"] in ("train", "train_prefix") and "awp" in r["method"]]
    assert awp and all(r["milestones"] == "100 150" for r in awp)
    assert {(r["kind"], r["epoch_range"]) for r in awp} == {("train_prefix", "0..99"), ("train", "100..199")}
    assert all(r["fr_start"] == 100 for r in awp if "_fr" in r["method"])


def test_every_bounded_step_is_a_quarter_of_its_eps_unless_the_paper_states_one(plan):
    config, rows, _ = plan
    for r in rows:
        if r["kind"] == "evaluate" and r["attack"] in ("pgd20", "pgd50", "cw"):
            assert r["step"] == pytest.approx(r["eps"] / 4, rel=1e-4), r
        if r["kind"] in ("train", "train_prefix") and r["train_step"] != "":
            stated = {"mnist": 0.01, "fashionmnist": 0.01, "shapes": 0.01, "restricted_imagenet": 0.0018}
            assert r["train_step"] == pytest.approx(stated.get(r["dataset"], r["train_eps"] / 4), rel=1e-4), r


def test_table1_runs_on_the_whole_test_set_and_training_is_fp32(plan):
    _, rows, _ = plan
    spectral = [r for r in rows if r["kind"] == "spectral"]
    assert len(spectral) == 12 and all(r["n_test"] == "all" for r in spectral)
    assert {r["precision"] for r in rows if r["kind"] in ("train", "train_prefix")} == {"fp32"}


def test_sanity_checks_run_at_the_eps_of_the_evaluations_they_guard(plan):
    config, rows, _ = plan
    sanity = [r for r in rows if r["kind"] == "sanity"]
    ri = [r for r in sanity if r["dataset"] == "restricted_imagenet"]
    assert ri and all(r["eps"] == 0.05 for r in ri)                      # not its training eps 0.005
    sk_c10 = [r for r in sanity if r["dataset"] == "cifar10" and r["method"].startswith("sk_")]
    assert sk_c10 and all(r["eps"] == 0.1 for r in sk_c10)                # the smooth-kernel table's 0.1, not 8/255
    fr_c10 = [r for r in sanity if r["dataset"] == "cifar10" and not r["method"].startswith("sk_")]
    assert all(r["eps"] == pytest.approx(evaluation_eps(config, "cifar10"), abs=1e-6) for r in fr_c10)


def test_the_plan_totals_and_the_prefix_saving(plan, tmp_path):
    _, rows, saved = plan
    table = write_plan(rows, saved, tmp_path / "plan.csv", tmp_path / "plan.md", "rule all")
    total = table["gpu_hours"].sum()
    assert 100 < total < 5000 and 0 < saved < total and not table["gpu_hours"].isna().any()
    md = (tmp_path / "plan.md").read_text()
    assert f"{total:,.0f} estimated GPU-hours" in md and "saves" in md and math.isfinite(saved)


def test_snakemake_plan_trains_nothing(tmp_path):
    r = snakemake(tmp_path, "-n", "--cores", "1", "results/plan.md", "results/plan_table2.md")
    assert r.returncode == 0, r.stderr[-2000:]
    assert planned(r.stdout + r.stderr) == {"plan": 1, "table_plan": 1}
