import numpy as np
import pytest
import torch

from conftest import synthetic_images
from specrobust.config import deep_merge
from specrobust.data import Prepared
from specrobust.errors import CheckpointError
from specrobust.evaluate import load_model
from specrobust.io import atomic_torch_save, load_checkpoint
from specrobust.jobs import run_spec
from specrobust.train import Trainer, train

TINY = {"train": {"device": "cpu", "epochs": 3, "milestones": [2], "batch_size": 32, "eps": 0.1,
                  "step_size": 0.05, "steps": 2, "val_limit": 40, "val_steps": 2, "lr": 0.05},
        "methods": {f: {"train": {"epochs": 3, "milestones": [2]}} for f in ("awp", "trades_awp")},  # not 200
        "archs": {"small_cnn": {"c1": 4, "c2": 8, "hidden": 16}}}


@pytest.fixture
def tiny_data():
    x, y = synthetic_images(200, size=12, seed=3)
    xt, yt = synthetic_images(60, size=12, seed=4)
    return Prepared("mnist", x[:160], y[:160], x[160:], y[160:], xt, yt, np.arange(60), (0.2,), (0.3,), 10)


def tiny_spec(config, method):
    return run_spec(deep_merge(config, TINY), "mnist", "small_cnn", method, 0)


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("method", ["pgd_at", "pgd_at_fr", "pgd_at_fr_wa"])
def test_resume_and_branch_are_bitwise_equal_to_one_run(config, tiny_data, tmp_path, method):
    spec = tiny_spec(config, method)
    straight = train(spec, tiny_data, tmp_path / "a/model.pt", tmp_path / "a/metrics.csv", tmp_path / "a")
    # the shared prefix of the base objective, then the continuation of this method
    base = tiny_spec(config, "pgd_at")
    train(base, tiny_data, tmp_path / "p/prefix.pt", tmp_path / "p/m.csv", tmp_path / "p", stop_at_first_decay=True)
    branched = train(spec, tiny_data, tmp_path / "b/model.pt", tmp_path / "b/metrics.csv", tmp_path / "b",
                     prefix=tmp_path / "p/prefix.pt")
    assert straight["epoch"] == branched["epoch"]
    assert states_equal(load_checkpoint(tmp_path / "a/model.pt")["model"],
                        load_checkpoint(tmp_path / "b/model.pt")["model"])
    assert (tmp_path / "a/metrics.csv").read_text().count("\n") == 4  # header + 3 epochs
    # interrupted after epoch 1 (checkpoint kept), resumed by a new process-like Trainer
    t1 = Trainer(spec, tiny_data, torch.device("cpu"))
    t1.train_epoch()
    atomic_torch_save(t1.state_dict(), tmp_path / "c/last.pt")
    train(spec, tiny_data, tmp_path / "c/model.pt", tmp_path / "c/metrics.csv", tmp_path / "c")
    assert states_equal(load_checkpoint(tmp_path / "a/model.pt")["model"],
                        load_checkpoint(tmp_path / "c/model.pt")["model"])
    assert not (tmp_path / "c/last.pt").exists()


def test_fr_changes_training_only_after_first_decay(config, tiny_data):
    plain, fr = Trainer(tiny_spec(config, "pgd_at"), tiny_data, "cpu"), Trainer(tiny_spec(config, "pgd_at_fr"),
                                                                                 tiny_data, "cpu")
    for t in (plain, fr):
        t.train_epoch()
        t.train_epoch()  # epochs 0, 1: before the first decay at 2
    assert states_equal(plain.model.state_dict(), fr.model.state_dict())
    row_p, row_f = plain.train_epoch(), fr.train_epoch()
    assert row_p["fr_loss"] == "" and row_f["fr_loss"] > 0
    assert not states_equal(plain.model.state_dict(), fr.model.state_dict())


def test_fr_wa_teacher_is_weight_average(config, tiny_data):
    t = Trainer(tiny_spec(config, "pgd_at_fr_wa"), tiny_data, "cpu")
    for _ in range(2):
        t.train_epoch()
    w_before = {k: v.clone() for k, v in t.model.state_dict().items()}
    t.train_epoch()  # WA starts from the weights at the decay (k=1), then averages this epoch's weights
    w_after = t.model.state_dict()
    assert t.wa.k == 2
    for k, v in t.wa.model.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(v, (w_before[k] + w_after[k]) / 2, atol=1e-6)


def test_model_file_loads_and_records_selection(config, tiny_data, tmp_path):
    best = train(tiny_spec(config, "pgd_at"), tiny_data, tmp_path / "model.pt", tmp_path / "m.csv", tmp_path)
    model, meta = load_model(tmp_path / "model.pt")
    assert meta["epoch"] == best["epoch"] and meta["method"] == "pgd_at" and not model.training
    assert model(torch.rand(2, 1, 12, 12)).shape == (2, 10)


def test_prefix_from_other_settings_is_refused(config, tiny_data, tmp_path):
    base = tiny_spec(config, "pgd_at")
    train(base, tiny_data, tmp_path / "p.pt", tmp_path / "m.csv", tmp_path / "w", stop_at_first_decay=True)
    other = run_spec(deep_merge(config, deep_merge(TINY, {"train": {"lr": 0.01}})), "mnist", "small_cnn",
                     "pgd_at_fr", 0)
    with pytest.raises(CheckpointError, match="lr"):
        train(other, tiny_data, tmp_path / "x.pt", tmp_path / "x.csv", tmp_path / "x", prefix=tmp_path / "p.pt")


def test_malicious_checkpoint_does_not_run(tmp_path):
    class Payload:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))
    torch.save({"x": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()
    (tmp_path / "trunc.pt").write_bytes((tmp_path / "evil.pt").read_bytes()[:40])
    with pytest.raises(CheckpointError, match="trunc.pt"):
        load_checkpoint(tmp_path / "trunc.pt")


def test_import_external_checkpoint(config, tiny_data, tmp_path):
    from specrobust.data import to_tensor
    from specrobust.evaluate import import_external
    from specrobust.io import atomic_savez
    train(tiny_spec(config, "pgd_at"), tiny_data, tmp_path / "model.pt", tmp_path / "m.csv", tmp_path)
    model, meta = load_model(tmp_path / "model.pt")
    d = tiny_data
    atomic_savez(tmp_path / "mnist.npz", x_train=d.x_train, y_train=d.y_train, x_val=d.x_val, y_val=d.y_val,
                 x_test=d.x_test, y_test=d.y_test, train_index=np.arange(len(d.x_train)),
                 val_index=np.arange(len(d.x_val)), test_index=d.test_index, mean=np.array(d.mean, np.float32),
                 std=np.array(d.std, np.float32), num_classes=np.int64(10), split_seed=np.int64(0))
    torch.save({"state_dict": {f"module.{k}": v for k, v in model[1].state_dict().items()}}, tmp_path / "bare.pt")
    opts = TINY["archs"]["small_cnn"]
    import_external(tmp_path / "bare.pt", "small_cnn", tmp_path / "mnist.npz", tmp_path / "ext.pt", "bare",
                    meta["mean"], meta["std"], opts)
    ext, ext_meta = load_model(tmp_path / "ext.pt")
    x = to_tensor(d.x_test)
    assert torch.allclose(ext(x), model(x), atol=1e-6) and ext_meta["method"] == "external_bare"
    with pytest.raises(CheckpointError, match="does not fit arch"):
        import_external(tmp_path / "bare.pt", "resnet18", tmp_path / "mnist.npz", tmp_path / "x.pt", "x")


@pytest.mark.parametrize("method,prefix", [
    ("trades_fr_wa", "trades"), ("mart_fr", "mart"), ("awp_fr", "awp"), ("pgd_at_fr_swa", "pgd_at"),
    ("sk_ar", None), ("sk_lr", None), ("l_model", None), ("trades_awp", None), ("natural", None),
])
def test_every_method_trains_and_branches_exactly(config, tiny_data, tmp_path, method, prefix):
    spec = tiny_spec(config, method)
    straight = train(spec, tiny_data, tmp_path / "a/model.pt", tmp_path / "a/m.csv", tmp_path / "a")
    model = load_checkpoint(tmp_path / "a/model.pt")["model"]
    assert all(torch.isfinite(v.float()).all() for v in model.values())
    if prefix:
        train(tiny_spec(config, prefix), tiny_data, tmp_path / "p.pt", tmp_path / "p.csv", tmp_path / "p",
              stop_at_first_decay=True)
        branched = train(spec, tiny_data, tmp_path / "b/model.pt", tmp_path / "b/m.csv", tmp_path / "b",
                         prefix=tmp_path / "p.pt")
        assert branched["epoch"] == straight["epoch"]
        assert states_equal(model, load_checkpoint(tmp_path / "b/model.pt")["model"])


def test_swa_reports_a_batchnorm_updated_average(config, tmp_path):
    x, y = synthetic_images(200, size=12, seed=3)
    data = Prepared("mnist", x[:160], y[:160], x[160:], y[160:], x[:20], y[:20], np.arange(20), (0.2,), (0.3,), 10)
    cfg = deep_merge(config, deep_merge(TINY, {"train": {"epochs": 4, "milestones": [2]}}))
    t = Trainer(run_spec(cfg, "mnist", "wrn10_1", "pgd_at_swa", 0), data, "cpu")
    weights = []
    for _ in range(4):
        t.train_epoch()
        weights.append({k: v.clone() for k, v in t.model.state_dict().items()})
    assert t.swa.k == 2  # averaged after epochs 2 and 3
    for k, v in t.swa.model.state_dict().items():
        if v.is_floating_point() and "running" not in k:
            assert torch.allclose(v, (weights[2][k] + weights[3][k]) / 2, atol=1e-6)
    bn = t.swa_model().state_dict()  # re-estimated statistics differ from the averaged ones
    key = next(k for k in bn if k.endswith("running_var"))
    assert not torch.allclose(bn[key], t.swa.model.state_dict()[key])
    assert t.best["epoch"] >= 2  # an SWA model is reported


@pytest.mark.parametrize("wa_bn", ["reestimate", "average"])
def test_fr_wa_teacher_batchnorm_is_reestimated_or_averaged(config, wa_bn):
    """FR/WA's teacher: `reestimate` (default) gives the averaged weights BatchNorm statistics measured on the clean
    training images (Izmailov et al.); `average` keeps the running statistics averaged like the weights."""
    x, y = synthetic_images(200, size=12, seed=3)
    data = Prepared("mnist", x[:160], y[:160], x[160:], y[160:], x[:20], y[:20], np.arange(20), (0.2,), (0.3,), 10)
    cfg = deep_merge(config, deep_merge(TINY, {"train": {"epochs": 3, "milestones": [1]}, "fr": {"wa_bn": wa_bn}}))
    t = Trainer(run_spec(cfg, "mnist", "wrn10_1", "pgd_at_fr_wa", 0), data, "cpu")
    estimated, reestimate = [], t._reestimate_bn
    t._reestimate_bn = lambda m: estimated.append(t.epoch) or reestimate(m)
    states = []
    for _ in range(3):
        t.train_epoch()
        states.append({k: v.clone() for k, v in t.model.state_dict().items()})
    # reestimate: when the teacher is made at the first decay (its statistics would otherwise be the student's, from
    # adversarial batches; from a short prefix they blew FR up to inf) and after every update
    assert estimated == ([1, 1, 2] if wa_bn == "reestimate" else [])
    # W_wa starts at the first decay (epoch 1) as the weights there, those after epoch 0; then epochs 1 and 2 join
    key = next(k for k in states[-1] if k.endswith("running_var"))
    averaged = (states[0][key] + states[1][key] + states[2][key]) / 3
    assert torch.allclose(t.wa.model.state_dict()[key], averaged, atol=1e-6) == (wa_bn == "average")
    w = next(k for k in states[-1] if k.endswith("conv1.weight"))
    assert torch.allclose(t.wa.model.state_dict()[w], (states[0][w] + states[1][w] + states[2][w]) / 3, atol=1e-6)


def test_metrics_are_written_after_every_epoch_and_progress_is_logged(config, tiny_data, tmp_path):
    seen, lines = [], []
    import specrobust.train as tr
    real = tr.write_metrics

    def spy(rows, path):
        real(rows, path)
        seen.append(open(path).read().count("\n") - 1)
    tr.write_metrics = spy
    try:
        train(tiny_spec(config, "pgd_at"), tiny_data, tmp_path / "m.pt", tmp_path / "m.csv", tmp_path / "w",
              log=lines.append, progress_interval=0)
    finally:
        tr.write_metrics = real
    assert seen[:3] == [1, 2, 3]           # one more finished epoch each time, before the run ends
    progress = [ln for ln in lines if "steps," in ln and "ETA" in ln]
    assert progress and all("images/s" in ln and "run ETA" in ln for ln in progress)
    assert sum("epoch 0:" in ln for ln in progress) <= 9   # at most one line per tenth of an epoch


def test_awp_restores_weights_each_step(config, tiny_data):
    t = Trainer(tiny_spec(config, "awp"), tiny_data, "cpu")
    seen = []
    real = t.awp.restore

    def spy(diff):
        real(diff)
        seen.append(len(diff))
    t.awp.restore = spy
    t.train_epoch()
    assert len(seen) == len(t.batches) and seen[0] == 4  # conv1, conv2, fc1, fc2 weights


def test_smooth_kernel_regularizer_is_added(config, tiny_data, monkeypatch):
    import specrobust.train as tr
    calls = []
    real = tr.add_smooth_kernel_gradient
    monkeypatch.setattr(tr, "add_smooth_kernel_gradient",
                        lambda m, lam, s, clip=None, **kw: calls.append((lam, s, clip)) or real(m, lam, s, clip, **kw))
    Trainer(tiny_spec(config, "sk_vr"), tiny_data, "cpu").train_epoch()
    assert calls and calls[0] == (0.1, "kernel", 1.0)   # train.sk_lambda, sk_scope, sk_clip
    calls.clear()
    Trainer(tiny_spec(config, "sk_v"), tiny_data, "cpu").train_epoch()
    assert not calls


def test_train_limit_uses_the_first_images_of_the_split(config, tiny_data):
    spec = run_spec(deep_merge(config, deep_merge(TINY, {"train": {"train_limit": 64}})), "mnist", "small_cnn",
                    "pgd_at", 0)
    t = Trainer(spec, tiny_data, "cpu")
    assert t.batches.n == 64 and torch.equal(t.batches.x, torch.as_tensor(tiny_data.x_train[:64]))
    assert len(t.batches) == 2  # 64 / batch 32


def test_test_curve_measures_without_changing_training(config, tiny_data):
    """The per-epoch test scores of the training curves draw no randomness from the training stream."""
    with_curve = Trainer(tiny_spec(config, "pgd_at_fr"), tiny_data, "cpu")
    without = Trainer(run_spec(deep_merge(config, deep_merge(TINY, {"train": {"test_curve_limit": 0}})), "mnist",
                               "small_cnn", "pgd_at_fr", 0), tiny_data, "cpu")
    rows = [(with_curve.train_epoch(), without.train_epoch()) for _ in range(3)]
    assert states_equal(with_curve.model.state_dict(), without.model.state_dict())
    assert all("test_pgd2" in a and 0 <= a["test_clean"] <= 100 and "test_clean" not in b for a, b in rows)
    assert with_curve.spec.prefix_key() == without.spec.prefix_key()  # so either may branch from the other's prefix
