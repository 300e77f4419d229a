"""Faults: killed jobs resume bitwise-equal, NaN losses and missing GPUs stop with a clear message."""
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from conftest import synthetic_images
from specrobust.config import deep_merge
from specrobust.io import atomic_savez
from specrobust.errors import ConfigError
from specrobust.io import load_checkpoint
from specrobust.jobs import run_spec
from specrobust.train import NonFiniteLoss, Trainer, resolve_device
from test_train import TINY

RUNNER = """
import sys, yaml
from specrobust.data import load_prepared
from specrobust.jobs import run_spec
from specrobust.train import train
import torch
torch.set_num_threads(1)
config = yaml.safe_load(open(sys.argv[1]))
spec = run_spec(config, "mnist", "small_cnn", "pgd_at_fr_wa", 0)
out = sys.argv[2]
train(spec, load_prepared(sys.argv[3], "mnist"), out + "/model.pt", out + "/metrics.csv", out, log=lambda m: None)
"""


@pytest.fixture
def kill_setup(tmp_path, config):
    import yaml
    x, y = synthetic_images(300, size=12, seed=7)
    xt, yt = synthetic_images(20, size=12, seed=8)
    atomic_savez(tmp_path / "data.npz", x_train=x[:240], y_train=y[:240], x_val=x[240:], y_val=y[240:], x_test=xt,
                 y_test=yt, train_index=np.arange(240), val_index=np.arange(60), test_index=np.arange(20),
                 mean=np.array([0.2], np.float32), std=np.array([0.3], np.float32), num_classes=np.int64(10),
                 split_seed=np.int64(0))
    cfg = deep_merge(config, deep_merge(TINY, {"train": {"epochs": 5, "milestones": [2, 4]}}))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "runner.py").write_text(RUNNER)
    return tmp_path


def run_training(root, out, kill_after=None):
    proc = subprocess.Popen([sys.executable, str(root / "runner.py"), str(root / "config.yaml"), str(out),
                             str(root / "data.npz")])
    if kill_after is None:
        assert proc.wait(timeout=600) == 0
        return True
    try:
        proc.wait(timeout=kill_after)
        return True  # finished before the kill
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return False


def test_sigkill_at_random_points_then_resume_is_bitwise_equal(kill_setup):
    root = kill_setup
    t0 = time.time()
    run_training(root, root / "reference")
    duration = time.time() - t0
    reference = load_checkpoint(root / "reference/model.pt")
    rng = random.Random(1234)
    for trial in range(3):
        out = root / f"killed{trial}"
        # one or two SIGKILLs at random moments (imports, mid-epoch, mid-checkpoint-write), then run to the end
        killed = [not run_training(root, out, kill_after=rng.uniform(0.3, 0.95) * duration)
                  for _ in range(rng.randint(1, 2))]
        assert any(killed)
        if (out / "last.pt").exists():  # a killed run leaves metrics.csv with every finished epoch
            finished = int(load_checkpoint(out / "last.pt")["epoch"])
            assert len((out / "metrics.csv").read_text().splitlines()) - 1 >= finished
        run_training(root, out)
        got = load_checkpoint(out / "model.pt")
        assert all(torch.equal(got["model"][k], reference["model"][k]) for k in reference["model"])
        assert (out / "metrics.csv").read_text().splitlines()[0] == \
            (root / "reference/metrics.csv").read_text().splitlines()[0]


def test_nan_loss_stops_with_epoch(config):
    x, y = synthetic_images(64, size=12, seed=3)
    from specrobust.data import Prepared
    data = Prepared("mnist", x, y, x[:8], y[:8], x[:8], y[:8], np.arange(8), (0.2,), (0.3,), 10)
    spec = run_spec(deep_merge(config, deep_merge(TINY, {"train": {"lr": 1e30}})), "mnist", "small_cnn", "pgd_at", 0)
    t = Trainer(spec, data, "cpu")
    with pytest.raises(NonFiniteLoss, match=r"epoch \d+"):
        for _ in range(3):
            t.train_epoch()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_gpu_requested_without_gpu():
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        resolve_device("cuda")


def test_gpu_slots_are_exclusive_across_processes_and_follow_the_users_choice(tmp_path, monkeypatch):
    """On a workstation each job locks its own GPU among the visible ones: with CUDA_VISIBLE_DEVICES=2,3 jobs spread
    over GPUs 2 and 3, not all onto the first."""
    from specrobust import gpus

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert gpus.visible_gpus() == ["2", "3"]
    code = ("import os, sys, time; from specrobust.gpus import claim_gpu, visible_gpus; "
            "print(claim_gpu(visible_gpus(), sys.argv[1]), flush=True); time.sleep(30)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              env={**__import__("os").environ, "CUDA_VISIBLE_DEVICES": "2,3"})
    try:
        assert holder.stdout.readline().strip() == "2"
        monkeypatch.setattr(gpus, "_held", [])
        assert gpus.claim_gpu(gpus.visible_gpus(), str(tmp_path)) == "3"   # GPU 2 is held by the other job
        import os
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"
        with pytest.raises(RuntimeError, match="0 of 2,3 are free"):
            gpus.claim_gpu(["2", "3"], str(tmp_path))
    finally:
        holder.kill()
        for f in gpus._held:
            f.close()
    assert gpus.claim_gpu([], str(tmp_path)) is None
