"""Architectures of the seeds. Every model takes inputs in [0, 1]; normalization is its first layer.

Arch names: ``resnet18`` (CIFAR variant, 3x3 stem), ``preact_resnet18``, ``resnet152``, ``wrn{depth}_{width}``
(e.g. ``wrn34_10``), and ``small_cnn`` (the smooth-kernel paper's 2-conv 2-fc network). All accept 1 or 3
channels and 28/32/64-pixel inputs (global average pooling makes the ResNets size-agnostic). ``resnet50`` is the
ImageNet ResNet-50 (7x7 stem, max-pool; torchvision's, whose parameter names the robustness library shares) for
Restricted ImageNet, which the smooth-kernel paper fine-tunes from pretrained weights (``load_init``).

The CIFAR ResNets, PreActResNet and WideResNet use the parameter names and the computation of RobustBench's model
zoo (``robustbench.model_zoo.architectures.resnet`` / ``wide_resnet``, the TRADES/MART/AWP code), so their
checkpoints load with ``load_external`` and give the same logits. On 32x32 inputs our global average pooling is
their fixed ``avg_pool2d(out, 4)`` (ResNets) / ``avg_pool2d(out, 8)`` (WRN); on other sizes theirs does not apply.
Our own checkpoints written before that renaming (``blocks.N`` / ``shortcut`` / ``bn`` in WRNs, ``bn_final`` and a
bare conv ``shortcut`` in PreActResNets) are renamed on load (``legacy_state``), by every ``load_state_dict``.
"""
from __future__ import annotations

import re

import torch
import torch.nn as nn
import torch.nn.functional as F

from .io import ConfigError
from .registry import ARCH_PATTERN


class Normalize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


class Normalized(nn.Sequential):
    """``Normalized(net, mean, std)(x) == net((x - mean) / std)``; attacks see the [0, 1] input space."""

    def __init__(self, net: nn.Module, mean, std):
        super().__init__(Normalize(mean, std), net)


# ------------------------------------------------------------------------------------------------- ResNets
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


class PreActBlock(nn.Module):
    """Pre-activation block. ``out_shortcut`` (RobustBench's name): the projection shortcut reads the pre-activated
    input, as in Kuang Liu's and Rice et al.'s code (our default); False reads the raw input, as in Wong et al.'s
    fast_adversarial code and RobustBench's ``PreActResNet18()``. The weights cannot tell the two apart."""
    expansion = 1

    def __init__(self, cin, cout, stride=1, out_shortcut=True):
        super().__init__()
        self.out_shortcut = out_shortcut
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or cin != cout:  # a Sequential: RobustBench's name is shortcut.0.weight
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False))

    def forward(self, x):
        out = F.relu(self.bn1(x))
        short = x if self.shortcut is None else self.shortcut(out if self.out_shortcut else x)
        out = self.conv1(out)
        return self.conv2(F.relu(self.bn2(out))) + short


class ResNet(nn.Module):
    """CIFAR ResNet (He et al.) with a 3x3 stem and no max-pool, as in the robust-training repositories.

    With ``preact`` the blocks normalize their own inputs; ``bn_before_fc`` then adds the final BN + ReLU
    (RobustBench's ``bn``: Rice et al.'s PreActResNet-18, our default), which Wong et al.'s has not."""

    def __init__(self, block, layers, num_classes=10, in_channels=3, preact=False, bn_before_fc=True,
                 out_shortcut=True):
        super().__init__()
        self.preact = preact
        self.cin = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        self.bn1 = None if preact else nn.BatchNorm2d(64)  # pre-activation blocks normalize their own inputs
        extra = {"out_shortcut": out_shortcut} if preact else {}
        stages = []
        for i, (width, n) in enumerate(zip((64, 128, 256, 512), layers)):
            blocks = []
            for j in range(n):
                blocks.append(block(self.cin, width, 2 if (i > 0 and j == 0) else 1, **extra))
                self.cin = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.bn = nn.BatchNorm2d(self.cin) if preact and bn_before_fc else None
        self.linear = nn.Linear(self.cin, num_classes)
        self.register_load_state_dict_pre_hook(_rename_legacy)

    def forward(self, x):
        out = self.conv1(x)
        if not self.preact:
            out = F.relu(self.bn1(out))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        if self.bn is not None:
            out = F.relu(self.bn(out))
        return self.linear(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


# ------------------------------------------------------------------------------------------- Wide ResNet
class WideBlock(nn.Module):
    """TRADES' WRN block: BN-ReLU first; a projection shortcut (``convShortcut``) reads the pre-activated input."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.equal = cin == cout
        self.convShortcut = None if self.equal else nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x):
        o = F.relu(self.bn1(x))
        short = x if self.equal else self.convShortcut(o)
        return self.conv2(F.relu(self.bn2(self.conv1(o)))) + short


class WideStage(nn.Module):
    """``n`` blocks of one width; the ``layer`` level only reproduces TRADES' names (``block1.layer.0.conv1``)."""

    def __init__(self, n, cin, cout, stride):
        super().__init__()
        self.layer = nn.Sequential(*[WideBlock(cin if j == 0 else cout, cout, stride if j == 0 else 1)
                                     for j in range(n)])

    def forward(self, x):
        return self.layer(x)


class WideResNet(nn.Module):
    """WRN-depth-width (Zagoruyko & Komodakis), the variant used by TRADES, MART and AWP."""

    def __init__(self, depth=34, width=10, num_classes=10, in_channels=3):
        super().__init__()
        if (depth - 4) % 6:
            raise ConfigError(f"WideResNet depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * width, 32 * width, 64 * width]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.block1 = WideStage(n, widths[0], widths[1], 1)
        self.block2 = WideStage(n, widths[1], widths[2], 2)
        self.block3 = WideStage(n, widths[2], widths[3], 2)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes)
        self.register_load_state_dict_pre_hook(_rename_legacy)

    def forward(self, x):
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = F.relu(self.bn1(out))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


def legacy_state(state: dict, prefix: str = "") -> dict:
    """``state`` with our pre-RobustBench names renamed (keys under ``prefix``; others unchanged): WRN
    ``blocks.K`` -> ``block{K // n + 1}.layer.{K % n}``, its ``shortcut`` -> ``convShortcut``, final ``bn`` -> ``bn1``;
    PreActResNet ``bn_final`` -> ``bn``, a block's bare ``shortcut.weight`` -> ``shortcut.0.weight``."""
    p = re.escape(prefix)
    wrn = [re.match(p + r"blocks\.(\d+)\.", k) for k in state]
    n = (max(int(m[1]) for m in wrn if m) + 1) // 3 if any(wrn) else 0  # blocks per stage
    out = {}
    for k, v in state.items():
        if n and (m := re.match(p + r"blocks\.(\d+)\.(.*)", k)):
            i = int(m[1])
            rest = "convShortcut." + m[2][len("shortcut."):] if m[2].startswith("shortcut.") else m[2]
            k = f"{prefix}block{i // n + 1}.layer.{i % n}.{rest}"
        elif n and k.startswith(prefix + "bn."):
            k = prefix + "bn1." + k[len(prefix) + 3:]
        elif k.startswith(prefix + "bn_final."):
            k = prefix + "bn." + k[len(prefix) + 9:]
        elif re.fullmatch(p + r"layer\d+\.\d+\.shortcut\.weight", k):  # plain ResNets have shortcut.0/.1
            k = k[:-len("weight")] + "0.weight"
        out[k] = v
    return out


def _rename_legacy(module, state_dict, prefix, *args):
    """Load-state-dict pre-hook: our checkpoints written before the renaming still load (renamed in place)."""
    if isinstance(module, ResNet) and not module.preact:
        return  # the plain ResNets' names never changed
    renamed = legacy_state(state_dict, prefix)
    if list(renamed) != list(state_dict):
        state_dict.clear()
        state_dict.update(renamed)


# --------------------------------------------------------------------------------------------- small CNN
class SmallCNN(nn.Module):
    """Two 5x5 conv layers (each ReLU + 2x2 max-pool) and two fully connected layers (smooth-kernel paper)."""

    def __init__(self, num_classes=10, in_channels=1, image_size=28, c1=32, c2=64, hidden=1024):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, c1, 5, padding=2)
        self.conv2 = nn.Conv2d(c1, c2, 5, padding=2)
        self.fc1 = nn.Linear(c2 * (image_size // 4) ** 2, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


# build_model options per arch (config archs.<arch>); the other archs take none
ARCH_OPTIONS = {"small_cnn": {"c1", "c2", "hidden"}, "preact_resnet18": {"bn_before_fc", "out_shortcut"}}


def build_model(arch: str, num_classes: int, in_channels: int, image_size: int, mean, std, **options) -> nn.Module:
    """The named architecture, wrapped so that it normalizes its own [0, 1] input."""
    unknown = set(options) - ARCH_OPTIONS.get(arch, set())
    if unknown and re.fullmatch(ARCH_PATTERN, arch):
        raise ConfigError(f"arch {arch} has no option(s) {', '.join(sorted(unknown))} "
                          f"(known: {', '.join(sorted(ARCH_OPTIONS.get(arch, []))) or 'none'})")
    if arch == "resnet18":
        net = ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels)
    elif arch == "preact_resnet18":
        net = ResNet(PreActBlock, [2, 2, 2, 2], num_classes, in_channels, preact=True, **options)
    elif arch == "resnet50":
        if in_channels != 3:
            raise ConfigError(f"arch resnet50 is the ImageNet ResNet-50 and needs RGB inputs, not {in_channels} "
                              f"channel(s)")
        import torchvision
        net = torchvision.models.resnet50(weights=None, num_classes=num_classes)
    elif arch == "resnet152":
        net = ResNet(Bottleneck, [3, 8, 36, 3], num_classes, in_channels)
    elif arch == "small_cnn":
        net = SmallCNN(num_classes, in_channels, image_size, **options)
    elif m := re.fullmatch(r"wrn(\d+)_(\d+)", arch):
        net = WideResNet(int(m[1]), int(m[2]), num_classes, in_channels)
    else:
        raise ConfigError(f"unknown arch {arch!r}; known: resnet18, preact_resnet18, resnet50, resnet152, "
                          f"wrn<depth>_<width>, small_cnn")
    return Normalized(net, mean, std)


def unwrap_state(ckpt: dict, source) -> dict:
    """A checkpoint's state_dict, bare or under ``state_dict`` / ``model``, without DataParallel ``module.``."""
    from .errors import CheckpointError

    state = ckpt
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{source}: expected a state_dict of tensors (optionally under 'state_dict' or 'model')")
    return {k.removeprefix("module."): v for k, v in state.items()}


def network_state(ckpt: dict, source) -> dict:
    """The network's own parameters, also from the robustness library's layout (``model.`` beside
    ``attacker.model.`` and ``normalizer.``) or one of our ``model.pt`` files (``0.`` normalization, ``1.`` net)."""
    state = unwrap_state(ckpt, source)
    for prefix in ("model.", "1."):  # robustness library / our Normalized wrapper
        if any(k.startswith(prefix) for k in state):
            return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return state


def load_external(arch: str, ckpt: dict, num_classes: int, in_channels: int = 3, image_size: int = 32, mean=None,
                  std=None, source="checkpoint", **options) -> tuple[Normalized, dict]:
    """Our model holding a community checkpoint (RobustBench's model zoo, TRADES, MART, AWP) or one of ours.

    ``ckpt`` as torch.load returns it: a state_dict, possibly under "state_dict"/"model", possibly with DataParallel
    ``module.`` (or robustness-library ``model.``) prefixes, of a bare network or of our Normalized model (whose own
    normalization then wins). RobustBench models take [0, 1] inputs, so normalization is mean 0 / std 1 unless
    given, or unless the checkpoint carries ``mu``/``sigma`` buffers as RobustBench's normalizing zoo models do.
    TRADES' unused ``sub_block1`` is dropped; a missing ``num_batches_tracked`` (PyTorch < 0.4.1) does not matter
    in eval mode. A PreActResNet's ``bn_before_fc`` follows the checkpoint; ``out_shortcut`` cannot be read from
    weights (False for Wong et al.'s / RobustBench's ``PreActResNet18()``). Returns the model in eval mode and the
    arch options it was built with, which a model.pt's meta must record to rebuild it."""
    from .errors import CheckpointError

    state = unwrap_state(ckpt, source)
    ours = "0.mean" in state and "0.std" in state
    if not ours:
        state = network_state(state, source)
        state = {k: v for k, v in state.items() if not k.startswith("sub_block1.")}
        buffers = {k: state.pop(k) for k in ("mu", "sigma") if k in state}
        if buffers:
            if len(buffers) == 1:
                raise CheckpointError(f"{source} has a normalization buffer {next(iter(buffers))!r} without its pair")
            found = [buffers["mu"].flatten().tolist(), buffers["sigma"].flatten().tolist()]
            for name, given, value in (("mean", mean, found[0]), ("std", std, found[1])):
                if given is not None and not torch.allclose(torch.tensor(given, dtype=torch.float32),
                                                            torch.tensor(value, dtype=torch.float32)):
                    raise ConfigError(f"{source} normalizes with {name} {value} (its 'mu'/'sigma'), not the {given} "
                                      f"given")
            mean, std = found
    net_keys = [k.removeprefix("1.") for k in state] if ours else list(state)
    if arch == "preact_resnet18" and "bn_before_fc" not in options:
        options = {**options, "bn_before_fc": any(k.startswith(("bn.", "bn_final.")) for k in net_keys)}
    mean = [0.0] * in_channels if mean is None else list(mean)
    std = [1.0] * in_channels if std is None else list(std)
    model = build_model(arch, num_classes, in_channels, image_size, mean, std, **options)
    try:
        missing, unexpected = (model if ours else model[1]).load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise CheckpointError(f"{source} does not fit arch {arch!r}: {str(err).splitlines()[-1].strip()}") from None
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise CheckpointError(f"{source} does not fit arch {arch!r}: missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}")
    return model.eval(), options


def load_init(model: Normalized, ckpt: dict, source, log=print) -> None:
    """Start ``model`` from pretrained weights (smooth-kernel paper, Restricted ImageNet: an ImageNet-pretrained or an
    adversarially trained ResNet-50). Every parameter must fit, except a classifier head of another class count
    (ImageNet's 1,000 -> 9), which keeps its fresh initialisation."""
    from .errors import CheckpointError

    net, state = model[1], network_state(ckpt, source)
    own = net.state_dict()
    head = [k for k in state if k in own and state[k].shape != own[k].shape]
    if any(own.get(k.rsplit(".", 1)[0] + ".weight", own[k]).dim() != 2 for k in head):  # only a Linear may differ
        raise CheckpointError(f"{source} does not fit this arch: shape mismatch in {head[:3]}")
    for k in head:
        state.pop(k)
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if k not in head]
    if missing or unexpected:
        raise CheckpointError(f"{source} does not fit this arch: missing {missing[:3]}, unexpected {unexpected[:3]}")
    log(f"initialised from {source}" + (f"; new classifier head {', '.join(head)}" if head else ""))


def download_torchvision_weights(arch: str, out) -> None:
    """Save torchvision's pretrained ImageNet weights of ``arch`` (hash-checked download) as a plain state_dict."""
    import torchvision

    from .errors import DataError
    from .io import atomic_torch_save
    from .registry import TORCHVISION_WEIGHTS

    if arch not in TORCHVISION_WEIGHTS:
        raise ConfigError(f"train.init = torchvision: no torchvision weights for arch {arch!r} "
                          f"(known: {', '.join(TORCHVISION_WEIGHTS)})")
    weights = torchvision.models.get_weight(f"{arch.replace('resnet', 'ResNet')}_Weights."
                                            f"{TORCHVISION_WEIGHTS[arch]}")
    try:
        state = weights.get_state_dict(progress=False, check_hash=True)
    except (OSError, RuntimeError) as err:  # URLError is an OSError; a bad hash is a RuntimeError
        raise DataError(f"cannot download {weights.url} ({type(err).__name__}: {err}); download it yourself and "
                        f"set config key train.init to the file") from None
    atomic_torch_save(state, out)
