"""Interop with the community's checkpoints and RobustBench: RobustBench's model-zoo architectures (the TRADES / MART /
AWP WideResNets, PreActResNet-18, ResNet-18/152) load into ours with the same names and give the same logits; our own
checkpoints from before the renaming still load; the RobustBench-style export (model_info JSON + weights)."""
import importlib.util
import json
import re
import types
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from specrobust.errors import CheckpointError, ConfigError
from specrobust.evaluate import load_model
from specrobust.export import eps_string, export_model, validate_model_info
from specrobust.io import atomic_torch_save, load_checkpoint
from specrobust.models import build_model, legacy_state, load_external


def robustbench_module(name: str):
    """robustbench.model_zoo.architectures.<name>, loaded from its file: ``import robustbench`` itself needs the
    GitHub-only ``autoattack`` package (and ``pkg_resources``), the architecture files only torch."""
    spec = importlib.util.find_spec("robustbench")
    if spec is None:
        pytest.skip("robustbench is not installed (pip install -e '.[test]')")
    path = Path(spec.origin).parent / "model_zoo" / "architectures" / f"{name}.py"
    mod_spec = importlib.util.spec_from_file_location(f"robustbench_arch_{name}", path)
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rb():
    return types.SimpleNamespace(wide_resnet=robustbench_module("wide_resnet"), resnet=robustbench_module("resnet"))


@torch.no_grad()
def randomize(net: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and non-trivial BatchNorm statistics, scaled so that logits stay of order 1; eval mode."""
    torch.manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.uniform_(0.3, 0.9)
            m.bias.normal_(0, 0.2)
            m.running_mean.normal_(0, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.num_batches_tracked.fill_(11)
        elif isinstance(m, (nn.Conv2d, nn.Linear)):
            m.weight.normal_(0, m.weight[0].numel() ** -0.5)
            if m.bias is not None:
                m.bias.normal_(0, 0.2)
    return net.eval()


def logits(model, x):
    with torch.no_grad():
        return model.eval()(x)


# (our arch, RobustBench constructor, arch options, images): TRADES / MART / AWP and RobustBench's Zhang2019 WRNs
# carry an unused sub_block1 (WRN-16-4 here, to be quick); the PreActResNet-18 of Wong et al. (RobustBench's
# PreActResNet18()) shortcuts the raw input and has no final BN, that of Rice et al. (PreActBlockV2, bn_before_fc)
# is our default
CASES = {
    "wrn34_10": ("wrn34_10", lambda rb: rb.wide_resnet.WideResNet(depth=34, widen_factor=10), {}, 2),
    "wrn34_15": ("wrn34_15", lambda rb: rb.wide_resnet.WideResNet(depth=34, widen_factor=15), {}, 1),
    "wrn_trades_sub_block1": ("wrn16_4", lambda rb: rb.wide_resnet.WideResNet(depth=16, widen_factor=4,
                                                                              sub_block1=True), {}, 2),
    "preact_wong": ("preact_resnet18", lambda rb: rb.resnet.PreActResNet18(), {"out_shortcut": False}, 2),
    "preact_rice": ("preact_resnet18", lambda rb: rb.resnet.PreActResNet(rb.resnet.PreActBlockV2, [2, 2, 2, 2],
                                                                         bn_before_fc=True), {}, 2),
    "resnet18": ("resnet18", lambda rb: rb.resnet.ResNet18(), {}, 2),
    "resnet152": ("resnet152", lambda rb: rb.resnet.ResNet152(), {}, 1),
}


@pytest.mark.parametrize("case", CASES)
def test_robustbench_checkpoints_give_the_same_logits(rb, tmp_path, case):
    arch, make, options, n_images = CASES[case]
    theirs = randomize(make(rb))
    state = theirs.state_dict()
    # as DataParallel training scripts save it, read back with weights_only
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 99}, tmp_path / "ckpt.pt")
    model, used = load_external(arch, load_checkpoint(tmp_path / "ckpt.pt"), 10, source=tmp_path / "ckpt.pt",
                                **options)
    # the names are theirs: their bare state_dict loads strictly into our network (TRADES' sub_block1 aside)
    assert set(model[1].state_dict()) == {k for k in state if not k.startswith("sub_block1.")}
    x = torch.rand(n_images, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    expected = logits(theirs, x)
    assert expected.abs().max() > 0.1 and expected.std() > 0.01  # not a vacuous comparison
    torch.testing.assert_close(logits(model, x), expected, atol=1e-5, rtol=0)
    assert torch.equal(model[0].mean, torch.zeros(1, 3, 1, 1)) and torch.equal(model[0].std, torch.ones(1, 3, 1, 1))
    if arch == "preact_resnet18":
        assert used["bn_before_fc"] == ("bn.weight" in state)  # read from the checkpoint


def test_preact_shortcut_variant_matters(rb):
    theirs = randomize(rb.resnet.PreActResNet18())
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    wrong, _ = load_external("preact_resnet18", theirs.state_dict(), 10)  # our default: pre-activated shortcut input
    assert (logits(wrong, x) - logits(theirs, x)).abs().max() > 1e-3


def test_normalization_carried_by_robustbench_models_becomes_ours(rb):
    class Wong2020FastNet(rb.resnet.PreActResNet):  # as RobustBench's model zoo writes its normalizing models
        def __init__(self):
            super().__init__(rb.resnet.PreActBlock, [2, 2, 2, 2])
            self.register_buffer("mu", torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1))
            self.register_buffer("sigma", torch.tensor([0.2471, 0.2435, 0.2616]).view(1, 3, 1, 1))

        def forward(self, x):
            return super().forward((x - self.mu) / self.sigma)

    theirs = randomize(Wong2020FastNet())
    model, _ = load_external("preact_resnet18", theirs.state_dict(), 10, out_shortcut=False)
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(logits(model, x), logits(theirs, x), atol=1e-5, rtol=0)
    assert torch.allclose(model[0].std.flatten(), torch.tensor([0.2471, 0.2435, 0.2616]))
    with pytest.raises(ConfigError, match="normalizes with mean"):
        load_external("preact_resnet18", theirs.state_dict(), 10, mean=[0.5] * 3, out_shortcut=False)


def test_checkpoints_that_do_not_fit_are_refused_in_one_line(rb):
    state = randomize(rb.resnet.ResNet18()).state_dict()
    with pytest.raises(CheckpointError, match="does not fit arch 'preact_resnet18'") as err:
        load_external("preact_resnet18", state, 10, source="r18.pt")
    assert "\n" not in str(err.value)
    with pytest.raises(CheckpointError, match="size mismatch"):
        load_external("resnet18", state, 100)
    with pytest.raises(ConfigError, match="arch resnet18 has no option"):
        build_model("resnet18", 10, 3, 32, [0] * 3, [1] * 3, out_shortcut=False)
    old = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}  # PyTorch < 0.4.1
    load_external("resnet18", old, 10)


# ------------------------------------------------------------------------------ our checkpoints before the renaming
def test_old_names_map_to_the_new_ones():
    t = torch.zeros(1)
    wrn34 = {"conv1.weight": t, "blocks.0.bn1.weight": t, "blocks.0.shortcut.weight": t, "blocks.4.conv2.weight": t,
             "blocks.5.shortcut.weight": t, "blocks.7.bn2.running_var": t, "blocks.14.conv1.weight": t,
             "bn.running_mean": t, "bn.num_batches_tracked": t, "fc.weight": t}
    assert list(legacy_state(wrn34)) == [
        "conv1.weight", "block1.layer.0.bn1.weight", "block1.layer.0.convShortcut.weight",
        "block1.layer.4.conv2.weight", "block2.layer.0.convShortcut.weight", "block2.layer.2.bn2.running_var",
        "block3.layer.4.conv1.weight", "bn1.running_mean", "bn1.num_batches_tracked", "fc.weight"]
    preact = {"1.conv1.weight": t, "1.layer1.0.bn1.weight": t, "1.layer2.0.shortcut.weight": t,
              "1.bn_final.running_var": t, "1.linear.bias": t, "0.mean": t}
    assert list(legacy_state(preact, "1.")) == ["1.conv1.weight", "1.layer1.0.bn1.weight",
                                                "1.layer2.0.shortcut.0.weight", "1.bn.running_var", "1.linear.bias",
                                                "0.mean"]
    resnet = {"layer2.0.shortcut.0.weight": t, "layer2.0.shortcut.1.weight": t, "bn1.weight": t}
    assert list(legacy_state(resnet)) == list(resnet)  # the plain ResNets' names never changed


def old_names(state: dict, blocks_per_stage: int) -> dict:
    """A current state_dict under the names this project wrote before the renaming (the inverse, written out)."""
    out = {}
    for k, v in state.items():
        if m := re.fullmatch(r"1\.block(\d)\.layer\.(\d+)\.(.+)", k):
            k = f"1.blocks.{(int(m[1]) - 1) * blocks_per_stage + int(m[2])}.{m[3].replace('convShortcut', 'shortcut')}"
        elif blocks_per_stage and k.startswith("1.bn1."):
            k = "1.bn." + k[len("1.bn1."):]
        elif k.startswith("1.bn."):
            k = "1.bn_final." + k[len("1.bn."):]
        elif m := re.fullmatch(r"(1\.layer\d\.\d\.shortcut)\.0\.weight", k):
            k = f"{m[1]}.weight"
        out[k] = v
    return out


@pytest.mark.parametrize("arch,blocks_per_stage", [("wrn16_2", 2), ("preact_resnet18", 0)])
def test_our_old_model_files_still_load(tmp_path, arch, blocks_per_stage):
    model = randomize(build_model(arch, 10, 3, 32, [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]))
    old = old_names(model.state_dict(), blocks_per_stage)
    assert "1.blocks.5.conv2.weight" in old if blocks_per_stage else "1.bn_final.weight" in old
    meta = {"arch": arch, "arch_options": {}, "num_classes": 10, "in_channels": 3, "image_size": 32,
            "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}
    atomic_torch_save({"model": old, "meta": meta}, tmp_path / "model.pt")
    loaded, _ = load_model(tmp_path / "model.pt")
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(logits(loaded, x), logits(model, x))
    again, _ = load_external(arch, load_checkpoint(tmp_path / "model.pt"), 10)   # ours, through the external path
    assert torch.equal(logits(again, x), logits(model, x))
    bare = {k[2:]: v for k, v in old.items() if k.startswith("1.")}             # a bare net of ours, as training wrote
    fresh = build_model(arch, 10, 3, 32, [0.5, 0.4, 0.3], [0.2, 0.25, 0.3])
    fresh[1].load_state_dict(bare)
    assert torch.equal(logits(fresh, x), logits(model, x))


# ------------------------------------------------------------------------------------------ RobustBench export
CIFAR_MEAN, CIFAR_STD = [0.4914, 0.4822, 0.4465], [0.2471, 0.2435, 0.2616]


def trained_model(tmp_path, arch="wrn10_2", mean=CIFAR_MEAN, std=CIFAR_STD, **options):
    model = randomize(build_model(arch, 10, 3, 32, mean, std, **options))
    meta = {"arch": arch, "arch_options": options, "num_classes": 10, "in_channels": 3, "image_size": 32,
            "mean": mean, "std": std, "dataset": "cifar10", "method": "pgd_at_fr", "seed": 2, "eps": 8 / 255,
            "step_size": 2 / 255, "epoch": 101, "val_pgd": 50.0, "val_clean": 80.0}
    atomic_torch_save({"model": model.state_dict(), "meta": meta, "spec": {"arch": arch}}, tmp_path / "model.pt")
    common = {"eps": 8 / 255, "n": 200, "dataset": "cifar10", "arch": arch, "method": "pgd_at_fr", "seed": 2,
              "selected_epoch": 101, "model": str(tmp_path / "model.pt")}
    results = {"clean": {"attack": "clean", "type": "clean", "params": {"type": "clean"}, "correct": 171,
                         "accuracy": 85.5, "ci95": [80.0, 89.6], **common},
               "aa": {"attack": "aa", "type": "autoattack", "params": {"type": "autoattack", "version": "standard"},
                      "correct": 101, "accuracy": 50.5, "ci95": [43.6, 57.3], "breakdown": {"apgd-ce": 52.0},
                      **common}}
    return model, tmp_path / "model.pt", results


def test_export_writes_robustbench_model_info(tmp_path, rb):
    model, path, results = trained_model(tmp_path)
    (tmp_path / "aa.json").write_text(json.dumps(results["aa"]))   # a result may also be given as its JSON file
    d = export_model(path, {"clean": results["clean"], "aa": tmp_path / "aa.json"}, tmp_path / "info.json",
                     tmp_path / "weights.pt", info={"venue": "ICLR 2099"})
    assert json.loads((tmp_path / "info.json").read_text()) == d
    validate_model_info(d)
    assert {k: d[k] for k in ("additional_data", "number_forward_passes", "dataset", "architecture", "eps",
                              "clean_acc", "autoattack_acc", "venue", "reported")} == {
        "additional_data": False, "number_forward_passes": 1, "dataset": "cifar10", "architecture": "WideResNet-10-2",
        "eps": "8/255", "clean_acc": "85.5", "autoattack_acc": "50.5", "venue": "ICLR 2099", "reported": ""}
    assert d["footnote"] == "Evaluated on 200 of the 10,000 test images."
    own = d["specrobust"]
    assert (own["threat_model"], own["method"], own["seed"], own["n_test"], own["input_range"]) == \
        ("Linf", "pgd_at_fr", 2, 200, [0.0, 1.0])
    assert own["autoattack"]["version"] == "standard" and own["mean"] == pytest.approx(CIFAR_MEAN)

    # a RobustBench user: the constructor named in the JSON, normalizing as RobustBench's zoo models do
    weights = load_checkpoint(tmp_path / "weights.pt")
    assert own["weights"]["format"] == "torch" and weights["mu"].shape == (1, 3, 1, 1)
    robustbench = types.SimpleNamespace(model_zoo=types.SimpleNamespace(architectures=rb))
    plain = eval(own["robustbench_arch"], {"robustbench": robustbench})
    with pytest.raises(RuntimeError, match="mu"):          # loud, not silently unnormalized
        plain.load_state_dict(weights)

    class Normalizing(type(plain)):  # Rice2020OverfittingNet's layout
        def __init__(self):
            super().__init__(depth=10, widen_factor=2)
            self.register_buffer("mu", torch.zeros(1, 3, 1, 1))
            self.register_buffer("sigma", torch.ones(1, 3, 1, 1))

        def forward(self, x):
            return super().forward((x - self.mu) / self.sigma)

    theirs = Normalizing()
    theirs.load_state_dict(weights)
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(logits(theirs, x), logits(model, x), atol=1e-5, rtol=0)
    back, _ = load_external("wrn10_2", weights, 10)          # and back into ours
    torch.testing.assert_close(logits(back, x), logits(model, x), atol=1e-6, rtol=0)


def test_export_without_normalization_is_the_plain_architecture(tmp_path, rb):
    model, path, results = trained_model(tmp_path, "preact_resnet18", [0.0] * 3, [1.0] * 3)
    d = export_model(path, results, tmp_path / "info.json", tmp_path / "w.pt")
    assert d["architecture"] == "PreActResNet-18" and d["specrobust"]["normalization"].startswith("none")
    robustbench = types.SimpleNamespace(model_zoo=types.SimpleNamespace(architectures=rb))
    theirs = eval(d["specrobust"]["robustbench_arch"], {"robustbench": robustbench})
    theirs.load_state_dict(load_checkpoint(tmp_path / "w.pt"))  # strict
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(logits(theirs, x), logits(model, x), atol=1e-5, rtol=0)


def test_export_as_safetensors(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    model, path, results = trained_model(tmp_path)
    d = export_model(path, results, tmp_path / "info.json", tmp_path / "w.safetensors")
    weights = st.load_file(tmp_path / "w.safetensors")
    assert d["specrobust"]["weights"]["format"] == "safetensors" and "sigma" in weights
    assert all(torch.equal(weights[k], v) for k, v in model[1].state_dict().items())


def test_export_refuses_results_of_another_model(tmp_path):
    _, path, results = trained_model(tmp_path)
    out = (tmp_path / "i.json", tmp_path / "w.pt")
    with pytest.raises(ConfigError, match="exactly one result of type 'autoattack'"):
        export_model(path, {"clean": results["clean"]}, *out)
    with pytest.raises(ConfigError, match="seed 0, but"):
        export_model(path, {**results, "aa": {**results["aa"], "seed": 0}}, *out)
    with pytest.raises(ConfigError, match="selected_epoch 50, but"):
        export_model(path, {**results, "aa": {**results["aa"], "selected_epoch": 50}}, *out)
    with pytest.raises(ConfigError, match="on 200 images but AutoAttack's on 100"):
        export_model(path, {**results, "aa": {**results["aa"], "n": 100}}, *out)
    with pytest.raises(ConfigError, match="unknown model_info field"):
        export_model(path, results, *out, info={"paper": "x"})
    assert not out[0].exists()
    atomic_torch_save({"state_dict": {}}, tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="not a model.pt written by training"):
        export_model(tmp_path / "bare.pt", results, *out)


# RobustBench's own file model_info/cifar10/Linf/Rice2020Overfitting.json (robustbench repository)
RICE2020 = {"link": "https://arxiv.org/abs/2002.11569", "name": "Overfitting in adversarially robust deep learning",
            "authors": "Leslie Rice, Eric Wong, J. Zico Kolter", "additional_data": False,
            "number_forward_passes": 1, "dataset": "cifar10", "venue": "ICML 2020",
            "architecture": "WideResNet-34-20", "eps": "8/255", "clean_acc": "85.34", "reported": "58",
            "autoattack_acc": "53.42"}


def test_validate_model_info():
    validate_model_info(RICE2020)
    validate_model_info({**RICE2020, "eps": "0.031", "footnote": "eps 0.031", "unreliable": False})
    for bad, match in [({"clean_acc": 85.34}, "clean_acc must be str"),
                       ({"additional_data": 0}, "additional_data must be bool"),
                       ({"number_forward_passes": True}, "number_forward_passes must be int"),
                       ({"autoattack_acc": "53%"}, "not a percentage"),
                       ({"eps": "8 / 255"}, "eps"), ({"paper": "x"}, "unknown field paper"),
                       ({"reported": "n/a"}, "reported")]:
        with pytest.raises(ConfigError, match=match):
            validate_model_info({**RICE2020, **bad})
    with pytest.raises(ConfigError, match="missing link; missing venue"):
        validate_model_info({k: v for k, v in RICE2020.items() if k not in ("link", "venue")})


def test_eps_strings():
    assert [eps_string(e) for e in (8 / 255, 2 / 255, 0.031, 0.5, 0.3)] == ["8/255", "2/255", "0.031", "0.5", "0.3"]


def foolbox_cifar10(tmp_path) -> Path:
    """CIFAR-10 test images 0..19 (PyPI foolbox ships them as PNGs) as the .npz that data.paths takes."""
    import foolbox
    import numpy as np
    from PIL import Image

    folder = Path(foolbox.__file__).parent / "data"
    files = sorted(folder.glob("cifar10_*.png"), key=lambda p: int(p.stem.split("_")[1]))
    x = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in files])
    y = np.array([int(p.stem.split("_")[2]) for p in files])
    np.savez(tmp_path / "cifar10.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    return tmp_path / "cifar10.npz"


@pytest.mark.parametrize("case,options", [("wrn34_10", {}), ("preact_wong", {"out_shortcut": False})])
def test_specrobust_evaluate_scores_a_robustbench_model_as_robustbench_does(rb, tmp_path, case, options):
    """`specrobust evaluate` (the rules' data preparation, import and evaluation) on real CIFAR-10 test images: the
    same predictions, hence the same clean accuracy, as the RobustBench model itself."""
    import numpy as np
    import yaml

    from specrobust.cli import main

    arch, make, _, _ = CASES[case]
    net = randomize(make(rb), seed=3)
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "rb.pt")
    data = foolbox_cifar10(tmp_path)
    (tmp_path / "arch.yaml").write_text(yaml.safe_dump({"archs": {arch: options}} if options else {}))
    assert main(["evaluate", "--checkpoint", str(tmp_path / "rb.pt"), "--arch", arch, "--dataset", "cifar10",
                 "--data", str(data), "--attack", "clean", "--n-test", "20", "--device", "cpu",
                 "--config", str(tmp_path / "arch.yaml"), "--workdir", str(tmp_path / "w")]) == 0
    result = json.loads((tmp_path / "w/clean.json").read_text())
    z = np.load(data)
    x = torch.as_tensor(z["x_test"]).permute(0, 3, 1, 2).float() / 255
    theirs = logits(net, x).argmax(1).numpy() == z["y_test"]
    ours = np.load(tmp_path / "w/clean.npz")
    assert ours["test_index"].tolist() == list(range(20)) and (ours["correct"] == theirs).all()
    assert result["accuracy"] == pytest.approx(100 * theirs.mean()) and result["n"] == 20


def test_specrobust_export_of_a_trained_model_is_a_valid_model_info(tmp_path):
    """The export of one of our models (through the command line) carries RobustBench's model_info fields."""
    from specrobust.cli import main

    model = build_model("small_cnn", 10, 1, 28, [0.3], [0.3], c1=2, c2=2, hidden=8)
    meta = {"arch": "small_cnn", "arch_options": {"c1": 2, "c2": 2, "hidden": 8}, "num_classes": 10,
            "in_channels": 1, "image_size": 28, "mean": [0.3], "std": [0.3], "dataset": "fashionmnist",
            "method": "pgd_at", "seed": 0, "epoch": 4}
    run = tmp_path / "results/models/fashionmnist/small_cnn/pgd_at/seed0"
    atomic_torch_save({"model": model.state_dict(), "meta": meta}, run / "model.pt")
    evals = tmp_path / "results/eval/fashionmnist/small_cnn/pgd_at/seed0/linf-0.1"
    evals.mkdir(parents=True)
    for name, kind, acc in (("clean", "clean", 81.0), ("aa", "autoattack", 60.5)):
        (evals / f"{name}.json").write_text(json.dumps({
            "attack": name, "type": kind, "eps": 0.1 if kind != "clean" else None, "n": 200, "correct": int(2 * acc),
            "accuracy": acc, "dataset": "fashionmnist", "arch": "small_cnn", "method": "pgd_at", "seed": 0,
            "selected_epoch": 4, "threat": "linf-0.1"}))
    assert main(["export", str(run / "model.pt"), "--out", str(tmp_path / "export")]) == 0
    info = json.loads((tmp_path / "export/model_info.json").read_text())
    validate_model_info(info)
    assert (info["clean_acc"], info["autoattack_acc"], info["eps"]) == ("81.0", "60.5", "0.1")   # as round(x, 2)
    assert (tmp_path / "export/weights.pt").exists()


def test_export_restricts_clean_accuracy_to_autoattacks_images(tmp_path):
    """AutoAttack often runs on fewer test images than the clean evaluation (the quick config: 50 of 500); RobustBench
    reports both on the same images, so clean accuracy is taken on AutoAttack's (the first ones)."""
    import numpy as np

    model = build_model("small_cnn", 10, 1, 28, [0.3], [0.3], c1=2, c2=2, hidden=8)
    meta = {"arch": "small_cnn", "arch_options": {"c1": 2, "c2": 2, "hidden": 8}, "num_classes": 10,
            "in_channels": 1, "image_size": 28, "mean": [0.3], "std": [0.3], "dataset": "fashionmnist",
            "method": "pgd_at", "seed": 0, "epoch": 4}
    atomic_torch_save({"model": model.state_dict(), "meta": meta}, tmp_path / "model.pt")
    common = {"dataset": "fashionmnist", "arch": "small_cnn", "method": "pgd_at", "seed": 0, "selected_epoch": 4}
    clean = {"attack": "clean", "type": "clean", "eps": None, "n": 8, "correct": 7, "accuracy": 87.5, **common}
    aa = {"attack": "aa", "type": "autoattack", "eps": 0.1, "n": 4, "correct": 1, "accuracy": 25.0, **common}
    np.savez(tmp_path / "clean.npz", correct=np.array([1, 0, 1, 1, 1, 1, 1, 1], bool), test_index=np.arange(8))
    with pytest.raises(ConfigError, match="same test images"):
        export_model(tmp_path / "model.pt", {"clean": clean, "aa": aa}, tmp_path / "a.json", tmp_path / "a.pt")
    info = export_model(tmp_path / "model.pt", {"clean": clean, "aa": aa}, tmp_path / "b.json", tmp_path / "b.pt",
                        clean_per_example=tmp_path / "clean.npz")
    assert (info["clean_acc"], info["autoattack_acc"]) == ("75.0", "25.0")   # 3 of the first 4 images
    restricted = info["specrobust"]["clean"]                                    # its interval is that subset's too
    assert (restricted["correct"], restricted["n"]) == (3, 4) and restricted["ci95"][0] < 75.0 < restricted["ci95"][1]
    assert restricted["ci95"] == pytest.approx([30.06, 95.44], abs=0.01)       # Wilson 95%, 3 of 4
