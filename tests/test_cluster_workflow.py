"""The workflow itself on a real single-node SLURM cluster (tests/slurm/cluster.sh): the quick Table 2 built end to
end through profiles/slurm, every job through sbatch, evaluations grouped per model; and a GPU job that sees no
GPU stopping at once. Root on Debian only (skipped elsewhere); a few minutes."""
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml


pytestmark = [pytest.mark.slow, pytest.mark.slurm]

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"train": {"epochs": 3, "milestones": [2], "train_limit": 256, "val_limit": 64, "test_curve_limit": 0},
         "data": {"val_limit": 64, "test_limit": 64},
         "evaluation": {"n_test": 48, "attacks": {"aa": {"type": "autoattack", "version": "standard", "n_test": 8}}},
         "sanity": {"n_test": 32, "square_queries": 50, "eps_grid": [1, 3]}}


def run(cluster, workdir: Path, *args, timeout=2400):
    return cluster.snakemake(workdir, "-s", str(ROOT / "Snakefile"), "--profile", str(ROOT / "profiles/slurm"),
                             "--max-threads", "2", "--slurm-init-seconds-before-status-checks", "5",
                             *args, slurm_args=False, timeout=timeout)


def test_quick_table2_builds_through_the_slurm_profile(slurm_cluster, tmp_path):
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(SMALL))
    r = run(slurm_cluster, tmp_path, "results/table2.csv", "--configfile", str(ROOT / "config/config.yaml"),
            str(ROOT / "config/quick.yaml"), str(tmp_path / "small.yaml"))
    assert r.returncode == 0, r.stdout[-4000:]
    table = pd.read_csv(tmp_path / "results/table2.csv")
    assert table["method"].tolist() == ["pgd_at", "pgd_at_fr", "pgd_at_fr_wa"]
    # every non-local job went through sbatch: each log names its SLURM job; each model's evaluations were one group
    logs = {p: p.read_text() for p in (tmp_path / "results").rglob("*.log")}
    for path in [p for p in logs if p.parent.name.startswith("seed") and p.name in ("prefix.log", "train.log")]:
        assert re.search(r"SLURM job \d+", logs[path]), path
    evals = [p for p in logs if p.parent.name == "linf-0.1"]      # the study's evaluations of each model, sanity
    assert len(evals) >= 3 * 5 and all(re.search(r"SLURM job \d+", logs[p]) for p in evals)
    jobs_of = {}
    for p in evals + [p for p in logs if p.parents[2].name == "small_cnn" and "sanity" in p.parts]:
        jobs_of.setdefault(p.parts[-4 if "eval" in p.parts else -3], set()).add(
            re.search(r"SLURM job (\d+)", logs[p])[1])
    assert len(jobs_of) == 3 and all(len(ids) == 1 for ids in jobs_of.values()), jobs_of  # one allocation each
    submissions = re.findall(r"submitted with SLURM jobid (\d+)", r.stdout)
    assert len(submissions) == 1 + 1 + 3 + 3   # prepare, prefix, 3 continuations, 3 evaluation groups
    gpu_rules = set(yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())["set-resources"])
    for rule, partition in re.findall(r"rule (\w+):.*?slurm_partition=(\w+)", r.stdout, re.S):
        assert partition == ("gpu" if rule in gpu_rules else "cpu"), rule


def test_a_gpu_job_without_a_usable_gpu_stops_at_once(slurm_cluster, tmp_path):
    """train.device: cuda on a node whose GPU SLURM hands out but CUDA cannot use: the job fails at once, naming
    the host and CUDA_VISIBLE_DEVICES, instead of training on the CPU."""
    small = yaml.safe_load(yaml.safe_dump(SMALL))
    small["train"]["device"] = "cuda"
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(small))
    target = "results/models/fashionmnist/small_cnn/pgd_at/seed0/prefix.pt"
    r = run(slurm_cluster, tmp_path, target, "--retries", "0", "--configfile", str(ROOT / "config/config.yaml"),
            str(ROOT / "config/quick.yaml"), str(tmp_path / "small.yaml"), timeout=900)
    assert r.returncode != 0
    log = (tmp_path / "results/models/fashionmnist/small_cnn/pgd_at/seed0/prefix.log").read_text()
    assert re.search(r"SLURM job \d+", log) and "asks for a GPU but none is visible on host" in log
    assert "CUDA_VISIBLE_DEVICES=" in log and "epoch=" not in log   # no epoch ran, on any device
