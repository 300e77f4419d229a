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
    cfg = {"type": "autoattack", "version": "standard"}
    flags, extra = evaluate.evaluate_attack(model, x, y, cfg, "aa", 0.1, 12, 0)
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
    _, extra = evaluate.evaluate_attack(model, x, y, cfg, "aa", 0.1, 12, 0, state_path=state)
    assert seen["attacks"] == ["apgd-t", "fab-t", "square"]
    assert extra["breakdown"]["apgd-ce"] == 100.0 and "square" in extra["breakdown"]


def test_run_evaluation_writes_json_and_per_example(tmp_path):
    saved_tiny_run(tmp_path, "pgd_at", 30, test_index=np.arange(100, 130))
    r = evaluate.run_evaluation(tmp_path / "model.pt", tmp_path / "d.npz", "pgd20",
                                {"type": "pgd", "steps": 3, "step_size": "1/40"}, tmp_path / "o.json",
                                tmp_path / "o.npz", n_test=20, log=lambda m: None)
    per = np.load(tmp_path / "o.npz")
    assert r["n"] == 20 and per["test_index"].tolist() == list(range(100, 120))
    assert r["correct"] == per["correct"].sum() and r["ci95"][0] <= r["accuracy"] <= r["ci95"][1]
    assert r["precision"] == "fp32" and r["eps"] == 0.1


def test_benchmark_runs_and_reports_a_ratio(capsys):
    from specrobust import bench
    ratio = bench.main(["train", "--arch", "small_cnn", "--device", "cpu", "--steps", "1", "--batch-size", "8"])
    out = capsys.readouterr().out
    assert ratio > 0 and "reference loop" in out and "ratio" in out
