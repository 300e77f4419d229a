"""The paper smoke run in CI: config/smoke.yaml (the paper config, sizes only) builds one job of every architecture
and every training branch through the real rules, models and attacks on CPU. The whole `all` is the documented
target `snakemake --cores all --configfile config/smoke.yaml` (its time and memory peaks: BENCHMARKS.md)."""
import json

import pandas as pd
import pytest
import torch

from test_workflow import DEFAULT, ROOT, planned, snakemake

SMOKE = str(ROOT / "config/smoke.yaml")
TARGETS = [
    # ResNet-18 on CIFAR-10: the shared prefix, FR/WA from the first decay, AutoAttack on 3-channel images
    "results/eval/cifar10/resnet18/pgd_at_fr_wa/seed0/linf-8_255/aa.json",
    # AWP's own 200-epoch schedule (shrunk), FR on top, SVHN
    "results/models/svhn/resnet18/awp_fr/seed0/model.pt",
    # WRN-34-10: FR + SWA (BatchNorm re-estimated), the workshop's Table 2 row
    "results/models/cifar10/wrn34_10/pgd_at_fr_swa/seed0/model.pt",
    # ResNet-152 (Table 4) with FR/WA: from a one-epoch prefix the teacher needs clean-image BatchNorm statistics,
    # or its FR loss is inf (the whole smoke run found it); Tiny ImageNet's 64 px, 200 classes and the L-model
    "results/models/cifar10/resnet152/pgd_at_fr_wa/seed0/model.pt",
    "results/models/tinyimagenet/resnet18/l_model/seed0/model.pt",
    # the smooth-kernel penalty (AR) and a minimal-perturbation search, unbounded on MNIST
    "results/eval/mnist/small_cnn/sk_ar/seed0/unbounded/cw_l2.json",
    # Restricted ImageNet: a generated 1,000-WNID ImageFolder, streamed training, ResNet-50 at 224 px
    "results/eval/restricted_imagenet/resnet50/sk_lr/seed0/linf-0.05/clean.json",
]


def test_smoke_config_changes_only_sizes_and_plans_every_target_of_all(tmp_path):
    r = snakemake(tmp_path, "-n", "--cores", "all", configs=(DEFAULT, SMOKE))
    assert r.returncode == 0, r.stderr[-2000:]
    jobs = planned(r.stdout + r.stderr)
    assert jobs["train"] == 124 and jobs["table"] == 10 and "download_dataset" not in jobs   # nothing downloaded


@pytest.mark.slow
def test_smoke_builds_one_job_of_every_architecture_and_branch(tmp_path):
    r = snakemake(tmp_path, "--cores", "2", *TARGETS, configs=(DEFAULT, SMOKE), timeout=3000)
    assert r.returncode == 0, r.stderr[-4000:]
    aa = json.loads((tmp_path / TARGETS[0]).read_text())
    assert aa["eps"] == pytest.approx(8 / 255) and aa["n"] == 2 and "breakdown" in aa
    cw = json.loads((tmp_path / TARGETS[5]).read_text())
    assert cw["eps"] is None and cw["threat"] == "unbounded"
    ri = json.loads((tmp_path / TARGETS[6]).read_text())
    assert ri["dataset"] == "restricted_imagenet" and ri["threat"] == "linf-0.05" and ri["eps"] is None
    swa = torch.load(tmp_path / TARGETS[2], weights_only=True)
    assert swa["spec"]["swa"] and swa["spec"]["fr"] == "self" and swa["meta"]["epoch"] >= 1   # an SWA model
    awp = torch.load(tmp_path / TARGETS[1], weights_only=True)["spec"]
    assert (awp["awp"], awp["epochs"], awp["milestones"]) == (True, 3, [1, 2])
    metrics = pd.read_csv(tmp_path / "results/models/cifar10/resnet18/pgd_at_fr_wa/seed0/metrics.csv")
    assert len(metrics) == 3 and metrics["fr_loss"].notna().sum() == 2   # FR/WA ran from the first decay
    assert "branching" in (tmp_path / "results/models/cifar10/resnet18/pgd_at_fr_wa/seed0/train.log").read_text()
    # peak memory of each job (Snakemake's benchmark files): what the cluster's memory requests come from
    peaks = {p.parts[-4]: pd.read_csv(p, sep="\t")["max_rss"].max()
             for p in (tmp_path / "results/models").rglob("*_benchmark.tsv")}
    assert set(peaks) >= {"resnet18", "wrn34_10", "resnet152", "resnet50", "small_cnn"}
    print("peak host memory (MB) per arch:", peaks)
    r = snakemake(tmp_path, "-n", "--cores", "2", *TARGETS, configs=(DEFAULT, SMOKE))
    assert planned(r.stdout + r.stderr) == {}
