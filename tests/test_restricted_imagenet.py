"""Restricted ImageNet: label mapping, the index + on-demand decoding, streamed training batches, pretrained starts,
and the workflow from a local ImageNet folder to an evaluation at the paper's eps 0.05 (a fake 1000-class folder)."""
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from specrobust import data
from specrobust.config import deep_merge
from specrobust.errors import CheckpointError, ConfigError, DataError
from specrobust.evaluate import load_model
from specrobust.io import atomic_torch_save, load_checkpoint
from specrobust.models import build_model, load_init
from specrobust.jobs import run_spec
from specrobust.train import train

# ImageNet class index -> how many training / validation images the fake folder has there
CLASSES = {30: (6, 3), 151: (8, 3), 268: (4, 2), 319: (4, 2), 0: (3, 2), 500: (3, 2)}  # 0 and 500 are not used


def fake_imagenet(root, n_classes=1000, flat_val=False):
    """An ImageFolder-layout ImageNet: n_classes WNID folders in train/ and val/, small JPEGs in a few of them,
    each image a solid colour that encodes its class index (red = index % 256)."""
    wnids = [f"n{i:08d}" for i in range(n_classes)]
    for split, k in (("train", 0), ("val", 1)):
        for i, w in enumerate(wnids):
            folder = root / split if split == "val" and flat_val else root / split / w
            folder.mkdir(parents=True, exist_ok=True)
            for j in range(CLASSES.get(i, (0, 0))[k]):
                im = Image.new("RGB", (40 + 7 * j, 30 + 5 * j), (i % 256, 40 * j % 256, 128))
                im.save(folder / f"{w}_{j}.JPEG", quality=95)
    return root


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory):
    return fake_imagenet(tmp_path_factory.mktemp("imagenet"))


def test_label_ranges_are_inclusive_and_nine():
    label = data.restricted_imagenet_label
    assert [label(i) for i in (151, 268, 281, 30, 33, 80, 365, 389, 118, 300, 319)] == [0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 8]
    assert [label(i) for i in (0, 29, 150, 269, 280, 320, 999)] == [None] * 7
    assert sum(label(i) is not None for i in range(1000)) == sum(hi - lo + 1 for lo, hi in
                                                                  data.RESTRICTED_IMAGENET_RANGES)
    assert data.dataset_info("restricted_imagenet").num_classes == len(data.RESTRICTED_IMAGENET_CLASSES) == 9


def test_prepare_writes_an_index_with_a_fixed_split_and_a_shuffled_test_order(imagenet, tmp_path):
    sizes = data.prepare("restricted_imagenet", tmp_path / "ri.npz", path=str(imagenet), split_seed=0)
    n_train = sum(v[0] for i, v in CLASSES.items() if data.restricted_imagenet_label(i) is not None)
    n_test = sum(v[1] for i, v in CLASSES.items() if data.restricted_imagenet_label(i) is not None)
    assert sizes == {"train": n_train - round(0.1 * n_train), "val": round(0.1 * n_train), "test": n_test}
    p = data.load_prepared(tmp_path / "ri.npz", "restricted_imagenet")
    assert isinstance(p.x_train, data.ImageFiles) and (p.size, p.channels, p.num_classes) == (224, 3, 9)
    assert p.mean == pytest.approx(data.RESTRICTED_IMAGENET_MEAN)
    assert p.std == pytest.approx(data.RESTRICTED_IMAGENET_STD)
    # every file is labelled by the range its WNID's sorted position falls in; unused classes (0, 500) are absent
    for files, labels in ((p.x_train.files, p.y_train), (p.x_test.files, p.y_test)):
        idx = [int(f.split("/")[1][1:]) for f in files]
        assert [data.restricted_imagenet_label(i) for i in idx] == list(labels)
    assert sorted(p.test_index) == list(range(n_test)) and list(p.test_index) != sorted(p.test_index)
    # decoding: 224 x 224 uint8 after resize + centre crop; the solid colour survives
    x = p.x_test[:3].decode()
    assert x.shape == (3, 224, 224, 3) and x.dtype == np.uint8
    red = [int(p.x_test.files[i].split("/")[1][1:]) % 256 for i in range(3)]
    assert np.abs(x[:, 100:124, 100:124, 0].astype(int).mean((1, 2)) - red).max() <= 3
    # the same arguments give the same index; test_limit keeps the first of the shuffled order
    data.prepare("restricted_imagenet", tmp_path / "again.npz", path=str(imagenet), split_seed=0, test_limit=5)
    q = data.load_prepared(tmp_path / "again.npz")
    assert list(q.x_test.files) == list(p.x_test.files[:5]) and list(q.x_train.files) == list(p.x_train.files)


def test_missing_or_misshapen_imagenet_is_named(tmp_path):
    with pytest.raises(DataError, match="data.paths.restricted_imagenet"):
        data.prepare("restricted_imagenet", tmp_path / "x.npz")
    with pytest.raises(DataError, match="999 class folders"):
        data.prepare("restricted_imagenet", tmp_path / "x.npz", path=str(fake_imagenet(tmp_path / "a", 999)))
    with pytest.raises(DataError, match="valprep"):
        data.prepare("restricted_imagenet", tmp_path / "x.npz", path=str(fake_imagenet(tmp_path / "b", flat_val=True)))
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize("workers", [0, 2])
def test_stream_batches_are_seeded_per_epoch_and_cover_the_split(imagenet, tmp_path, workers):
    data.prepare("restricted_imagenet", tmp_path / "ri.npz", path=str(imagenet))
    p = data.load_prepared(tmp_path / "ri.npz")
    b = data.make_batches(p.x_train, p.y_train, 5, "imagenet", "cpu", seed=1, drop_last=False, workers=workers)
    assert isinstance(b, data.StreamBatches) and len(b) == -(-len(p.y_train) // 5)
    e0 = list(b.epoch(0))
    e0_again, e1 = list(b.epoch(0)), list(b.epoch(1))
    assert all(torch.equal(a[0], c[0]) and torch.equal(a[1], c[1]) for a, c in zip(e0, e0_again))
    other = data.make_batches(p.x_train, p.y_train, 5, "imagenet", "cpu", seed=1, drop_last=False, workers=1)
    assert all(torch.equal(a[0], c[0]) for a, c in zip(e0, other.epoch(0)))  # whatever the number of workers
    assert not torch.equal(e0[0][0], e1[0][0])
    xs, ys = torch.cat([x for x, _ in e0]), torch.cat([y for _, y in e0])
    assert xs.shape == (len(p.y_train), 3, 224, 224) and xs.dtype == torch.float32
    assert 0 <= xs.min() and xs.max() <= 1
    assert sorted(ys.tolist()) == sorted(p.y_train.tolist())
    # without augmentation the stream is the test transform, image for image
    plain = data.make_batches(p.x_train, p.y_train, 4, "none", "cpu", seed=1, drop_last=False)
    x_all = data.to_tensor(p.x_train)
    for xb, yb in plain.epoch(0):
        hits = [(x_all == xi).flatten(1).all(1).nonzero().flatten().tolist() for xi in xb]
        assert all(h and p.y_train[h[0]] == yi for h, yi in zip(hits, yb.tolist()))


def robustness_checkpoint(net_state: dict) -> dict:
    """The robustness library's layout: the network under module.model. and again under module.attacker.model.,
    the normalizer's buffers beside them, plus the optimizer and epoch."""
    model = {f"module.model.{k}": v for k, v in net_state.items()}
    model |= {f"module.attacker.model.{k}": v for k, v in net_state.items()}
    model |= {"module.normalizer.new_mean": torch.zeros(3, 1, 1), "module.normalizer.new_std": torch.ones(3, 1, 1)}
    return {"model": model, "epoch": 89}


def test_resnet50_starts_from_imagenet_weights_with_a_new_head(tmp_path):
    import torchvision

    torch.manual_seed(3)
    imagenet_net = torchvision.models.resnet50(num_classes=1000)  # stands in for the pretrained weights
    for ckpt in (imagenet_net.state_dict(), robustness_checkpoint(imagenet_net.state_dict())):
        atomic_torch_save(ckpt, tmp_path / "w.pt")
        torch.manual_seed(0)
        model = build_model("resnet50", 9, 3, 224, data.RESTRICTED_IMAGENET_MEAN, data.RESTRICTED_IMAGENET_STD)
        head = model[1].fc.weight.clone()
        messages = []
        load_init(model, load_checkpoint(tmp_path / "w.pt"), tmp_path / "w.pt", messages.append)
        ours, theirs = model[1].state_dict(), imagenet_net.state_dict()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours if not k.startswith("fc."))
        assert torch.equal(model[1].fc.weight, head) and "fc.weight" in messages[0]
        assert torch.equal(model[0].std.flatten(), torch.tensor(data.RESTRICTED_IMAGENET_STD))  # ours, not theirs
    atomic_torch_save(build_model("resnet18", 9, 3, 32, [0.5] * 3, [0.2] * 3).state_dict(), tmp_path / "r18.pt")
    with pytest.raises(CheckpointError, match="does not fit"):
        load_init(model, load_checkpoint(tmp_path / "r18.pt"), tmp_path / "r18.pt")
    with pytest.raises(ConfigError, match="RGB"):
        build_model("resnet50", 10, 1, 28, [0.5], [0.2])


def test_training_starts_from_train_init(config, tmp_path):
    """lr 0: the selected model is exactly the pretrained start (any other start would show)."""
    from conftest import synthetic_images

    x, y = synthetic_images(80, size=12, seed=3)
    prepared = data.Prepared("mnist", x[:60], y[:60], x[60:], y[60:], x[60:], y[60:], np.arange(20), (0.2,), (0.3,), 10)
    cfg = deep_merge(config, {"train": {"device": "cpu", "epochs": 1, "milestones": [], "batch_size": 20,
                                        "steps": 1, "val_steps": 1, "test_curve_limit": 0, "weight_decay": 0.0},
                              "archs": {"small_cnn": {"c1": 2, "c2": 2, "hidden": 8}}})
    spec = replace(run_spec(cfg, "mnist", "small_cnn", "pgd_at", 0), lr=0.0, init="start.pt")
    start = build_model("small_cnn", 10, 1, 12, (0.2,), (0.3,), c1=2, c2=2, hidden=8)
    atomic_torch_save({"model": start.state_dict(), "meta": {}}, tmp_path / "start.pt")
    train(spec, prepared, tmp_path / "model.pt", tmp_path / "m.csv", tmp_path, init_path=tmp_path / "start.pt",
          log=lambda *a: None)
    model, _ = load_model(tmp_path / "model.pt")
    assert all(torch.equal(v, start.state_dict()[k]) for k, v in model.state_dict().items())


def test_workflow_from_a_local_imagenet_to_an_evaluation_at_the_papers_eps(imagenet, tmp_path):
    """prepare (index) -> train sk_a (streamed batches, a loader process) -> FGSM at datasets.restricted_imagenet's
    evaluation eps 0.05, on the test images in their shuffled order."""
    from test_workflow import DEFAULT, snakemake

    cfg = {"data": {"paths": {"restricted_imagenet": str(imagenet)}},
           "train": {"device": "cpu"},
           "archs": {"small_cnn": {"c1": 2, "c2": 2, "hidden": 8}},
           "datasets": {"restricted_imagenet": {"train": {
               "init": None, "epochs": 2, "milestones": [1], "batch_size": 4, "steps": 1, "val_steps": 1,
               "val_limit": 4}}}}
    (tmp_path / "ri.yaml").write_text(yaml.safe_dump(cfg))
    target = "results/eval/restricted_imagenet/small_cnn/sk_a/seed0/linf-0.05/fgsm.json"
    r = snakemake(tmp_path, "--cores", "2", target, configs=(DEFAULT, tmp_path / "ri.yaml"))
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads((tmp_path / target).read_text())
    assert result["eps"] == 0.05 and result["dataset"] == "restricted_imagenet" and result["n"] == 10
    index = np.load(tmp_path / "results/data/restricted_imagenet.npz")["test_index"]
    assert np.array_equal(np.load(str(tmp_path / target).replace(".json", ".npz"))["test_index"], index)
    log = (tmp_path / "results/models/restricted_imagenet/small_cnn/sk_a/seed0/prefix.log").read_text()
    assert "20 train, 2 val images" in log  # 22 labelled training images, 9:1


def test_restricted_imagenet_runs_plan_their_pretrained_start(tmp_path):
    """Default config: ResNet-50 runs start from torchvision's ImageNet weights, downloaded once by a local rule; a
    method given its own checkpoint (the paper's robust start for A/L) reads that file instead, and a missing one is
    named before any job runs."""
    from test_workflow import DEFAULT, planned, snakemake

    models = [f"results/models/restricted_imagenet/resnet50/{m}/seed0/model.pt" for m in ("sk_v", "sk_a")]
    r = snakemake(tmp_path, "-n", "--cores", "1", *models)
    assert r.returncode == 0, r.stderr[-2000:]
    assert planned(r.stdout + r.stderr) == {"prepare_dataset": 1, "pretrained_weights": 1, "train_prefix": 2,
                                            "train": 2}
    robust = tmp_path / "robust.pt"
    over = {"datasets": {"restricted_imagenet": {"methods": {"sk_a": {"train": {"init": str(robust)}}}}}}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(over))
    r = snakemake(tmp_path, "-n", "--cores", "1", models[1], configs=(DEFAULT, tmp_path / "a.yaml"))
    assert r.returncode != 0 and "MissingInputException" in r.stdout + r.stderr and str(robust) in r.stdout + r.stderr
    robust.write_bytes(b"")
    r = snakemake(tmp_path, "-n", "--cores", "1", *models, configs=(DEFAULT, tmp_path / "a.yaml"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert planned(r.stdout + r.stderr)["pretrained_weights"] == 1  # only sk_v still needs it
    assert f"input: results/data/restricted_imagenet.npz, {robust}" in r.stdout


def test_torchvision_weights_are_saved_or_their_url_named(tmp_path, monkeypatch):
    """Rule pretrained_weights: the hash-checked torchvision download saved as a state_dict; offline, an error that
    names the URL and the config key to use instead (the download itself is replaced here)."""
    import urllib.error

    import torchvision.models._api as api
    from specrobust.models import download_torchvision_weights

    calls = []
    monkeypatch.setattr(api, "load_state_dict_from_url",
                        lambda url, **kw: calls.append((url, kw)) or {"fc.bias": torch.ones(3)})
    download_torchvision_weights("resnet50", tmp_path / "w.pt")
    assert torch.equal(load_checkpoint(tmp_path / "w.pt")["fc.bias"], torch.ones(3))
    assert calls[0][0].endswith("resnet50-0676ba61.pth") and calls[0][1]["check_hash"]

    def offline(url, **kw):
        raise urllib.error.URLError("no route to host")
    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    with pytest.raises(DataError, match=r"resnet50-0676ba61.pth.*train.init"):
        download_torchvision_weights("resnet50", tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()
    with pytest.raises(ConfigError, match="resnet18"):
        download_torchvision_weights("resnet18", tmp_path / "x.pt")
