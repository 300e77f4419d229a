"""Architectures of the seeds. Every model takes inputs in [0, 1]; normalization is its first layer.

Arch names: ``resnet18`` (CIFAR variant, 3x3 stem), ``preact_resnet18``, ``resnet152``, ``wrn{depth}_{width}``
(e.g. ``wrn34_10``), and ``small_cnn`` (the smooth-kernel paper's 2-conv 2-fc network). All accept 1 or 3
channels and 28/32/64-pixel inputs (global average pooling makes the ResNets size-agnostic). ``resnet50`` is the
ImageNet ResNet-50 (7x7 stem, max-pool; torchvision's, whose parameter names the robustness library shares) for
Restricted ImageNet, which the smooth-kernel paper fine-tunes from pretrained weights (``load_init``).
"""
from __future__ import annotations

import re

import torch
import torch.nn as nn
import torch.nn.functional as F

from .io import ConfigError


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
    expansion = 1

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x):
        out = F.relu(self.bn1(x))
        short = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        return self.conv2(F.relu(self.bn2(out))) + short


class ResNet(nn.Module):
    """CIFAR ResNet (He et al.) with a 3x3 stem and no max-pool, as in the robust-training repositories."""

    def __init__(self, block, layers, num_classes=10, in_channels=3, preact=False):
        super().__init__()
        self.preact = preact
        self.cin = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        self.bn1 = None if preact else nn.BatchNorm2d(64)  # pre-activation blocks normalize their own inputs
        stages = []
        for i, (width, n) in enumerate(zip((64, 128, 256, 512), layers)):
            blocks = []
            for j in range(n):
                blocks.append(block(self.cin, width, 2 if (i > 0 and j == 0) else 1))
                self.cin = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.bn_final = nn.BatchNorm2d(self.cin) if preact else None
        self.linear = nn.Linear(self.cin, num_classes)

    def forward(self, x):
        out = self.conv1(x)
        if not self.preact:
            out = F.relu(self.bn1(out))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        if self.preact:
            out = F.relu(self.bn_final(out))
        return self.linear(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


# ------------------------------------------------------------------------------------------- Wide ResNet
class WideBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.equal = cin == cout
        self.shortcut = None if self.equal else nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x):
        o = F.relu(self.bn1(x))
        short = x if self.equal else self.shortcut(o)
        return self.conv2(F.relu(self.bn2(self.conv1(o)))) + short


class WideResNet(nn.Module):
    """WRN-depth-width (Zagoruyko & Komodakis), the variant used by TRADES, MART and AWP."""

    def __init__(self, depth=34, width=10, num_classes=10, in_channels=3):
        super().__init__()
        if (depth - 4) % 6:
            raise ConfigError(f"WideResNet depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * width, 32 * width, 64 * width]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        blocks, cin = [], widths[0]
        for i in range(3):
            blocks += [WideBlock(cin if j == 0 else widths[i + 1], widths[i + 1], (1 if i == 0 else 2) if j == 0 else 1)
                       for j in range(n)]
            cin = widths[i + 1]
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        out = F.relu(self.bn(self.blocks(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


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


ARCH_PATTERN = r"resnet18|preact_resnet18|resnet50|resnet152|small_cnn|wrn\d+_\d+"


def build_model(arch: str, num_classes: int, in_channels: int, image_size: int, mean, std, **options) -> nn.Module:
    """The named architecture, wrapped so that it normalizes its own [0, 1] input."""
    if arch == "resnet18":
        net = ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels)
    elif arch == "preact_resnet18":
        net = ResNet(PreActBlock, [2, 2, 2, 2], num_classes, in_channels, preact=True)
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

    from .config import TORCHVISION_WEIGHTS
    from .errors import DataError
    from .io import atomic_torch_save

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
