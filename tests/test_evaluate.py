import numpy as np
import pytest
import torch

from conftest import saved_tiny_run
from specrobust import attacks, evaluate
from specrobust.io import atomic_torch_save


def linear(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 10)).eval()


def test_wilson_interval():
    lo, hi = evaluate.wilson_interval(50, 100)
    assert lo == pytest.approx(40.38, abs=0.01) and hi == pytest.approx(59.62, abs=0.01)
    assert evaluate.wilson_interval(0, 10)[0] == 0.0 and evaluate.wilson_interval(10, 10)[1] == pytest.approx(100.0)


def test_fp32_eval_restores_settings_and_mode():
    model = linear().train()
    torch.backends.cuda.matmul.allow_tf32 = True
    with evaluate.fp32_eval(model):
        assert not model.training and not torch.backends.cuda.matmul.allow_tf32
        assert not torch.backends.cudnn.allow_tf32
    assert model.training and torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False


def test_autoattack_breakdown_and_resume(tmp_path, monkeypatch):
    model = linear()
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(12, 3, 4, 4, generator=g), torch.randint(0, 10, (12,), generator=g)
    cfg = {"attack": "aa", "type": "autoattack", "version": "standard", "eps": 0.1}
    flags, extra = evaluate.evaluate_attack(model, x, y, cfg, 12, 0)
    b = extra["breakdown"]
    assert list(b) == ["clean", "apgd-ce", "apgd-t", "fab-t", "square"]
    assert all(b[k] >= b[j] for k, j in zip(list(b), list(b)[1:]))        # robust accuracy only falls
    assert 100 * flags.float().mean().item() == pytest.approx(b["square"])
    # an interrupted run: state saved after APGD-CE; the rerun runs only what is left and keeps the breakdown
    state = tmp_path / "aa.json.aa_state.pt"
    atomic_torch_save({"flags": torch.ones(12, dtype=torch.bool), "todo": ["apgd-t", "fab-t", "square"],
                       "breakdown": {"clean": 1.0, "apgd-ce": 1.0}}, state)
    seen = {}
    real = attacks.autoattack

    def spy(*a, **kw):
        seen["attacks"] = kw["attacks"]
        return real(*a, **kw)
    monkeypatch.setattr(attacks, "autoattack", spy)
    _, extra = evaluate.evaluate_attack(model, x, y, cfg, 12, 0, state_path=state)
    assert seen["attacks"] == ["apgd-t", "fab-t", "square"]
    assert extra["breakdown"]["apgd-ce"] == 100.0 and "square" in extra["breakdown"]


def job(attack="pgd20", kind="pgd", eps=0.1, n_test=20, **kw):
    return {"dataset": "mnist", "arch": "small_cnn", "method": "pgd_at", "seed": 0, "threat": f"linf-{eps}",
            "attack": attack, "type": kind, "norm": "linf", "eps": eps, "n_test": n_test, "batch_size": 500,
            "attack_seed": 0, **kw}


def test_run_evaluation_writes_json_and_per_example(tmp_path):
    saved_tiny_run(tmp_path, "pgd_at", 30, test_index=np.arange(100, 130))
    rec = job(steps=3, step_size=0.025, restarts=1, random_start=True)
    r = evaluate.run_evaluation(tmp_path / "model.pt", tmp_path / "d.npz", rec, tmp_path / "o.json", tmp_path / "o.npz",
                                log=lambda m: None)
    per = np.load(tmp_path / "o.npz")
    assert r["n"] == 20 and per["test_index"].tolist() == list(range(100, 120))
    assert r["correct"] == per["correct"].sum() and r["ci95"][0] <= r["accuracy"] <= r["ci95"][1]
    # the result states its threat model, eps and step, and the whole record it ran under
    assert r["precision"] == "fp32" and (r["eps"], r["step_size"], r["threat"]) == (0.1, 0.025, "linf-0.1")
    assert r["job"] == rec


def test_autoattack_runs_on_three_channel_images(tmp_path):
    """CIFAR-shaped test images come from NHWC arrays; AutoAttack views its inputs and needs them contiguous."""
    from specrobust.io import atomic_savez
    from specrobust.models import build_model

    model = build_model("small_cnn", 10, 3, 32, [0.5] * 3, [0.25] * 3, c1=4, c2=4, hidden=8)
    meta = {"arch": "small_cnn", "arch_options": {"c1": 4, "c2": 4, "hidden": 8}, "num_classes": 10,
            "in_channels": 3, "image_size": 32, "mean": [0.5] * 3, "std": [0.25] * 3, "dataset": "cifar10",
            "method": "pgd_at", "seed": 0, "epoch": 0}
    atomic_torch_save({"model": model.state_dict(), "meta": meta}, tmp_path / "model.pt")
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 255, (6, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 6)
    atomic_savez(tmp_path / "d.npz", x_train=x, y_train=y, x_val=x, y_val=y, x_test=x, y_test=y,
                 train_index=np.arange(6), val_index=np.arange(6), test_index=np.arange(6),
                 mean=np.full(3, 0.5, np.float32), std=np.full(3, 0.25, np.float32), num_classes=np.int64(10),
                 split_seed=np.int64(0))
    r = evaluate.run_evaluation(tmp_path / "model.pt", tmp_path / "d.npz",
                                job("aa", "autoattack", 8 / 255, 6, version="standard"), tmp_path / "aa.json",
                                tmp_path / "aa.npz", log=lambda m: None)
    assert r["n"] == 6 and set(r["breakdown"]) == {"clean", "apgd-ce", "apgd-t", "fab-t", "square"}


def test_a_gpu_job_without_a_gpu_stops_naming_host_and_visible_devices(monkeypatch):
    """A job whose resources ask for a GPU never falls back to the CPU."""
    from types import SimpleNamespace

    from specrobust import script

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    with pytest.raises(script.NoGPU, match=r"host .+CUDA_VISIBLE_DEVICES=3"):
        script.device(SimpleNamespace(resources=SimpleNamespace(gpu=1)))
    assert script.device(SimpleNamespace(resources=SimpleNamespace(gpu=0))) == "cpu"


def test_benchmark_runs_and_reports_a_ratio(capsys):
    from specrobust import bench
    ratio = bench.main(["train", "--arch", "small_cnn", "--device", "cpu", "--steps", "1", "--batch-size", "8"])
    out = capsys.readouterr().out
    assert ratio > 0 and "reference loop" in out and "ratio" in out


def test_autoattack_targets_at_most_the_other_classes():
    """Standard AutoAttack targets the 9 most likely other classes; with 4 classes (the four shapes) or 9 (Restricted
    ImageNet) it targets the 3 or 8 there are instead of failing."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 4)).eval()
    x, y = torch.rand(6, 3, 4, 4), torch.randint(0, 4, (6,))
    rec = {"attack": "aa", "type": "autoattack", "version": "standard", "eps": 0.1}
    flags, extra = evaluate.evaluate_attack(model, x, y, rec, 6, 0)
    assert len(flags) == 6 and set(extra["breakdown"]) == {"clean", "apgd-ce", "apgd-t", "fab-t", "square"}


@pytest.mark.slow
def test_the_gpu_benchmark_suite_runs_every_row(tmp_path):
    """`python -m specrobust.bench suite` (here on the CPU at toy sizes): every row of BENCHMARKS.md's GPU table."""
    from specrobust import bench

    rows = bench.main(["suite", "--device", "cpu", "--threads", "2", "--out", str(tmp_path / "rows.md")])
    text = (tmp_path / "rows.md").read_text()
    paths = {(r["what"].split(",")[-1].strip(), r["path"]) for r in rows if r["what"].startswith("PGD-10 AT epoch")}
    assert paths == {(a, p) for a in ("resnet18", "wrn34_10") for p in ("reference loop (fp32)", "specrobust (fp32)",
                                                                         "specrobust (bf16)")}
    precision = [r for r in rows if r["path"] in ("fp32", "bf16")]
    assert len(precision) == 2 and "McNemar p" in precision[-1]["note"]
    assert any(r["path"] == "specrobust" and "same robust set" in r.get("note", "") for r in rows)
    assert text.count("\n|") >= 2 + 6 + 2 + 2
