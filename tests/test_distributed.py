"""Data-parallel training (specrobust.distributed) on the CPU: 2 gloo processes against 1, on the same global batches.

The model is WRN-10-2 (the papers' WideResNet family with BatchNorm, 0.3M parameters) on 8x8 images with random
labels (losses far from saturation). 1 and 2 processes add the same numbers in a different order (two half-batch sums
and an all-reduce against one batch sum; BatchNorm statistics likewise): in float32 that moves activations by ~1e-6
relative, which now and then flips a ReLU whose input lies that close to zero, or the sign of a tiny PGD gradient
component; such a flip changes a gradient by ~1e-2 and training amplifies it (a 1e-7 relative nudge of
PreActResNet-18's weights on 8x8 images changes them by O(1) within two epochs, in a single process). The semantics
are the same, the float32 trajectories are not. So the step-by-step comparisons run the model in float64
(:func:`float64`: the inputs are cast at the model's entrance; the FR spectrum and the attack loss stay float32, as
in the code), where reassociation moves results by ~1e-15 and nothing flips; the tolerances are stated where used.
The gradient check and the end-to-end runs are float32.
"""
import contextlib
import copy
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import types

import numpy as np
import pytest
import torch
import yaml

import specrobust.train as tr
from conftest import ROOT, synthetic_images
from specrobust import distributed
from specrobust.config import deep_merge
from specrobust.data import Prepared
from specrobust.distributed import RankFailed
from specrobust.errors import ConfigError
from specrobust.evaluate import load_model
from specrobust.io import atomic_savez, load_checkpoint
from specrobust.jobs import run_spec
from specrobust.regularizers import fr_loss
from specrobust.train import Trainer, train

ARCH = "wrn10_2"
TINY = {"train": {"device": "cpu", "epochs": 3, "milestones": [1], "batch_size": 16, "val_limit": 24, "val_steps": 2,
                  "lr": 0.05, "test_curve_limit": 8, "processes": 2},
        "datasets": {"mnist": {"train": {"eps": 0.1, "step_size": 0.05, "steps": 2}}},   # not MNIST's PGD-40
        "fr": {"lam": 1.0},   # a large FR weight: a wrong scale of its gradient would show in the weights
        "methods": {"awp": {"train": {"epochs": 3, "milestones": [1], "bn_mode": "train"}},  # BN synced in attacks
                    "pgd_at_fr_swa": {"train": {"val_limit": 21}}}}  # unequal shards in validation
METHODS = ["pgd_at", "pgd_at_fr", "pgd_at_fr_wa", "awp", "trades", "pgd_at_fr_swa"]
UNSYNCED = "pgd_at_fr_wa, sync_bn false"
# Continuations (float64) compared over 2 epochs of 2 steps from one shared state: weights and buffers within this
# relative tolerance (of each tensor's largest entry). Observed ~1e-15 (float64 reassociation); the margin covers a
# float32 island (FR spectrum, attack loss) rounding one value differently. Unsynchronised BatchNorm, per-shard random
# starts or a wrong FR gradient scale give > 1e-3.
STATE_RTOL = 1e-8


class _ToFloat64(torch.nn.Module):
    def forward(self, x):
        return x.double()


@contextlib.contextmanager
def float64():
    """Trainer builds float64 models (behind a cast of the float32 inputs) while inside."""
    real = tr.build
    tr.build = lambda spec, data, device: torch.nn.Sequential(_ToFloat64(), real(spec, data, device).double())
    try:
        yield
    finally:
        tr.build = real


def tiny_data(n_train=32, size=8, seed=3) -> Prepared:
    x, _ = synthetic_images(n_train + 32, size=size, seed=seed)
    y = np.random.default_rng(seed).integers(0, 10, len(x))   # random labels: the losses stay far from saturation
    return Prepared("mnist", x[:n_train], y[:n_train], x[n_train:n_train + 24], y[n_train:n_train + 24],
                    x[-8:], y[-8:], np.arange(8), (0.2,), (0.3,), 10)


def tiny_spec(config, method, **train):
    return run_spec(deep_merge(config, deep_merge(TINY, {"train": train})), "mnist", ARCH, method, 0)


def one_process(spec):
    return dataclasses.replace(spec, processes=1)


def max_rel(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(((a[k].double() - b[k].double()).abs().max() / (a[k].double().abs().max() + 1e-12)).item()
               for k in a if a[k].numel())


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------- functions the ranks run (importable)
def fr_gradients(spec, data, fft, lam, log=None, device="cpu"):
    """Gradients of CE(f(x + d)) + lam * FR(f(x), f(x + d)) on one global batch, every rank on its rows: the FR
    loss is taken on the all-gathered logits, as train_epoch does. Returns (FR value, gradients)."""
    t = Trainer(spec, data, device)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(spec.batch_size, 1, 8, 8, generator=g)
    y = torch.randint(0, 10, (spec.batch_size,), generator=g)
    d = 0.1 * torch.rand(x.shape, generator=g)
    mine = distributed.rows(len(x))
    x, y, d = x[mine], y[mine], d[mine]
    t.model.train()
    logits = t.forward_model(x + d)
    reg = fr_loss(distributed.gather(t.forward_model(x)), distributed.gather(logits), "l1", fft)
    (torch.nn.functional.cross_entropy(logits, y) + lam * reg).backward()
    return reg.item(), {k: p.grad.clone() for k, p in t.model.named_parameters()}


def continue_run(spec, data, state, log=None, device="cpu"):
    """Epochs 1 and 2 (float64) from the epoch-0 state: rows, FR value of every step, final states (model, FR/WA
    teacher, SWA average); with several processes also whether every rank ended bitwise identical."""
    fr_values, real = [], tr.fr_loss
    tr.fr_loss = lambda *a: (lambda v: fr_values.append(v.item()) or v)(real(*a))
    try:
        with float64():
            t = Trainer(spec, data, device)
        t.load_state_dict(copy.deepcopy(state))   # the optimizer would step the given momentum in place
        rows = [t.train_epoch() for _ in range(spec.epochs - 1)]
    finally:
        tr.fr_loss = real
    states = {"model": t.model.state_dict(), "wa": t.wa.model.state_dict() if t.wa else None,
              "swa": t.swa.model.state_dict() if t.swa else None}
    identical = None
    if distributed.active():
        everyone = [None] * distributed.world_size()
        torch.distributed.all_gather_object(everyone, (states, torch.get_rng_state()))
        identical = all(states_equal(s[k], states[k]) for s, _ in everyone for k in states if states[k])
        identical = identical and all(torch.equal(r, torch.get_rng_state()) for _, r in everyone)
    return {"rows": rows, "fr": fr_values, "states": states, "best_epoch": t.best["epoch"], "identical": identical}


def suite(specs, data, states, log=None, device="cpu"):
    """Everything compared with one process, in one launch (starting processes is the slow part on the CPU)."""
    grads = {fft: fr_gradients(specs["pgd_at_fr"], data, fft, 1.0) for fft in ("batch2d", "per_sample")}
    return grads, {m: continue_run(specs[m], data, states[m]) for m in specs}


def fail(how, log=None, device="cpu"):
    """Rank 1 raises or is killed after the first barrier; rank 0 would wait in the second one forever."""
    torch.distributed.barrier()
    if distributed.rank() == 1:
        if how == "raise":
            raise ValueError("boom on rank 1")
        os.kill(os.getpid(), signal.SIGKILL)
    torch.distributed.barrier()
    time.sleep(600)


# ------------------------------------------------------------------------------------------------------ equivalence
@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """The 2-process continuations and gradients (one launch) and the shared epoch-0 states."""
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    torch.set_num_threads(2)
    # 33 images: 2 training steps per epoch (the last partial batch is dropped); the BatchNorm re-estimation of
    # FR/WA and SWA ends with a 1-image batch, so one rank normalises an empty shard
    data, specs, states = tiny_data(n_train=33), {m: tiny_spec(config, m) for m in METHODS}, {}
    for m, spec in specs.items():
        with float64():
            t = Trainer(one_process(spec), data, "cpu")
            t.train_epoch()
        states[m] = copy.deepcopy(t.state_dict())
    specs[UNSYNCED] = dataclasses.replace(specs["pgd_at_fr_wa"], sync_bn=False)
    states[UNSYNCED] = states["pgd_at_fr_wa"]
    t0 = time.time()
    grads, two = distributed.launch(suite, (specs, data, states), {}, processes=2, device="cpu", log=print,
                                    workdir=tmp_path_factory.mktemp("suite"))
    print(f"2-process suite: {time.time() - t0:.1f}s")
    return data, specs, states, grads, two


@pytest.mark.parametrize("fft", ["batch2d", "per_sample"])
def test_fr_loss_and_gradient_on_the_global_batch(compared, fft):
    """The FR value of the gathered logits is the single-process value, and DDP's average of the per-rank gradients
    is the single-process gradient (no extra factor for the gathered FR term, SyncBN included)."""
    data, specs, _, grads, _ = compared
    spec = one_process(specs["pgd_at_fr"])
    value, reference = fr_gradients(spec, data, fft, 1.0)
    _, without_fr = fr_gradients(spec, data, fft, 0.0)
    value2, two = grads[fft]
    assert value2 == pytest.approx(value, rel=1e-6)
    # float32 reassociation only (observed ~1e-6); FR's own share of the gradient is > 1e-2 of it, so half or twice
    # the FR gradient (a wrong scale under DDP's averaging) would fail by far
    assert max_rel(two, reference) < 2e-5
    assert max_rel(without_fr, reference) > 1e-2


@pytest.mark.parametrize("method", METHODS)
def test_two_processes_match_one(compared, method):
    data, specs, states, _, results = compared
    two = results[method]
    one = continue_run(one_process(specs[method]), data, states[method])
    assert two["identical"]                 # every rank took the same steps (AWP, teachers), RNG streams included
    assert len(one["fr"]) == len(two["fr"]) == (4 if "_fr" in method else 0)
    assert two["fr"] == pytest.approx(one["fr"], rel=1e-6)    # float32 FR of the same logits: observed equal
    for a, b in zip(one["rows"], two["rows"]):
        assert b["train_loss"] == pytest.approx(a["train_loss"], abs=2e-6)   # rounded to 6 decimals in the row
        assert b["train_adv_acc"] == a["train_adv_acc"]
        for k in ("val_clean", "val_pgd2", "test_clean", "test_pgd2"):   # sharded evaluation, same decisions
            assert b[k] == a[k], k
    assert two["best_epoch"] == one["best_epoch"]
    for k, state in one["states"].items():
        assert (state is None) == (two["states"][k] is None)
        if state is not None:
            assert max_rel(state, two["states"][k]) < STATE_RTOL, k


def test_unsynchronised_batchnorm_still_trains_one_model(compared):
    """sync_bn false: each rank normalises its shard (another objective than the papers'), and rank 0's statistics
    are broadcast, so every rank evaluates, averages and saves the same model."""
    _, _, _, _, results = compared
    assert results[UNSYNCED]["identical"]
    assert max_rel(results[UNSYNCED]["states"]["model"], results["pgd_at_fr_wa"]["states"]["model"]) > 1e-3


def test_batch_size_must_divide_over_the_processes(config, tmp_path):
    spec = tiny_spec(config, "pgd_at", processes=3)
    with pytest.raises(ConfigError, match="not divisible by train.processes 3"):
        train(spec, tiny_data(), tmp_path / "m.pt", tmp_path / "m.csv", tmp_path)


# ------------------------------------------------------------------------------------------------------------ faults
@pytest.mark.parametrize("how,message", [("raise", "rank 1 of 2 failed: ValueError: boom on rank 1"),
                                         ("kill", "rank 1 of 2 died (signal SIGKILL)")])
def test_a_failing_rank_takes_the_job_down(tmp_path, how, message):
    t0 = time.time()
    with pytest.raises(RankFailed) as err:
        distributed.launch(fail, (how,), {}, processes=2, device="cpu", log=print, workdir=tmp_path)
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)
    assert time.time() - t0 < 120   # seconds (startup included), not the 30-minute collective timeout


def test_ranks_the_agent_stopped_are_not_named_as_the_cause(tmp_path):
    """The elastic agent lists the ranks it stopped (SIGTERM) among the failures. Under load a stopped rank can
    exit before it reports its own collective error; the cause is still the rank that raised or was killed."""
    def failure(code):
        return types.SimpleNamespace(exitcode=code, signal_name=lambda: signal.Signals(-code).name)

    report = {"rank": 1, "time": 1.0, "type": "ValueError", "message": "boom"}
    (tmp_path / "error.1.json").write_text(json.dumps(report))
    raised = types.SimpleNamespace(failures={0: failure(-signal.SIGTERM), 1: failure(1)})
    assert distributed._failure(raised, tmp_path, 2) == "rank 1 of 2 failed: ValueError: boom"
    (tmp_path / "error.1.json").unlink()
    killed = types.SimpleNamespace(failures={0: failure(-signal.SIGTERM), 1: failure(-signal.SIGKILL)})
    assert distributed._failure(killed, tmp_path, 2).startswith("rank 1 of 2 died (signal SIGKILL)")
    outside = types.SimpleNamespace(failures={0: failure(-signal.SIGTERM), 1: failure(-signal.SIGTERM)})
    assert distributed._failure(outside, tmp_path, 2).startswith("rank 0 of 2 died (signal SIGTERM)")


RUNNER = """
import sys, yaml, torch
from specrobust.data import load_prepared
from specrobust.jobs import run_spec
from specrobust.train import train
torch.set_num_threads(2)
spec = run_spec(yaml.safe_load(open(sys.argv[1])), "mnist", "wrn10_2", "pgd_at_fr_wa", 0)
out = sys.argv[2]
train(spec, load_prepared(sys.argv[3], "mnist"), out + "/model.pt", out + "/metrics.csv", out, log=print)
"""


def _children(pid: int) -> list[int]:
    out = []
    for stat in os.listdir("/proc"):
        try:
            fields = open(f"/proc/{stat}/stat").read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if stat.isdigit() and int(fields[1]) == pid:
            out.append(int(stat))
    return out


def _alive(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False


def test_sigkill_of_the_launcher_then_resume_matches_one_run(config, tmp_path):
    d = tiny_data(n_train=48)
    atomic_savez(tmp_path / "data.npz", x_train=d.x_train, y_train=d.y_train, x_val=d.x_val, y_val=d.y_val,
                 x_test=d.x_test, y_test=d.y_test, train_index=np.arange(48), val_index=np.arange(24),
                 test_index=np.arange(8), mean=np.array([0.2], np.float32), std=np.array([0.3], np.float32),
                 num_classes=np.int64(10), split_seed=np.int64(0))
    cfg = deep_merge(config, deep_merge(TINY, {"train": {"epochs": 5, "milestones": [1, 4]}}))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "runner.py").write_text(RUNNER)

    def start(out):
        return subprocess.Popen([sys.executable, str(tmp_path / "runner.py"), str(tmp_path / "config.yaml"),
                                 str(out), str(tmp_path / "data.npz")], stdout=subprocess.PIPE, text=True)

    straight = start(tmp_path / "straight")
    straight.communicate(timeout=300)
    assert straight.returncode == 0
    killed = start(tmp_path / "killed")
    metrics = tmp_path / "killed/metrics.csv"
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):   # 2 epochs done: WA state saved
        assert killed.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    ranks = _children(killed.pid)
    assert len(ranks) == 2
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    deadline = time.time() + 20
    while any(_alive(p) for p in ranks):   # the ranks die with their launcher
        assert time.time() < deadline, "ranks kept running after their launcher was killed"
        time.sleep(0.05)
    resumed = start(tmp_path / "killed")
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0 and "resuming from" in out
    a, b = load_checkpoint(tmp_path / "straight/model.pt"), load_checkpoint(tmp_path / "killed/model.pt")
    assert a["meta"]["epoch"] == b["meta"]["epoch"] and states_equal(a["model"], b["model"])   # bitwise

    def values(path):
        lines = [ln.split(",") for ln in path.read_text().splitlines()]
        keep = [i for i, k in enumerate(lines[0]) if k not in ("epoch_seconds", "images_per_second")]
        return [[row[i] for i in keep] for row in lines]
    assert values(tmp_path / "straight/metrics.csv") == values(metrics)
    assert not (tmp_path / "killed/last.pt").exists() and not (tmp_path / "killed/ranks").exists()


# ---------------------------------------------------------------------------------------------------- configuration
def test_quick_config_trains_with_two_processes(config, tmp_path):
    quick = yaml.safe_load((ROOT / "config/quick.yaml").read_text())
    small = {"train": {"processes": 2, "epochs": 2, "milestones": [1], "batch_size": 32, "train_limit": 64,
                       "val_limit": 20, "test_curve_limit": 0},
             "datasets": {"fashionmnist": {"train": {"steps": 2}}}}
    spec = run_spec(deep_merge(deep_merge(config, quick), small), "fashionmnist", "small_cnn", "pgd_at_fr", 0)
    assert spec.processes == 2 and spec.record()["sync_bn"] is True
    x, y = synthetic_images(120, size=28, seed=5)
    data = Prepared("fashionmnist", x[:80], y[:80], x[80:100], y[80:100], x[100:], y[100:], np.arange(20), (0.2,),
                    (0.3,), 10)
    lines = []
    best = train(spec, data, tmp_path / "model.pt", tmp_path / "metrics.csv", tmp_path / "w", log=lines.append)
    model, meta = load_model(tmp_path / "model.pt")
    assert meta["epoch"] == best["epoch"] and model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert len((tmp_path / "metrics.csv").read_text().splitlines()) == 3
    assert any(ln.startswith("epoch=1 ") and "fr_loss=" in ln for ln in lines)   # rank 0's log reached the caller
