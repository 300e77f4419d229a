"""What exists, registered once: data sets, architectures, attack types and the method grammar's names.

Pure Python (no torch). The config schema's enums (:func:`specrobust.config.schema`), the Snakemake wildcard
constraints (``workflow/rules/common.smk``), the data loaders and the model builder all read these tables, so a new
data set, arch or attack is one entry here plus its implementation.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .methods import ALIASES, BASES


@dataclass(frozen=True)
class DatasetInfo:
    num_classes: int
    channels: int
    size: int
    augment: str  # the papers' training augmentation: "crop_flip", "flip", "none" or "imagenet" (streamed)


DATASETS = {
    "cifar10": DatasetInfo(10, 3, 32, "crop_flip"),
    "cifar100": DatasetInfo(100, 3, 32, "crop_flip"),
    "svhn": DatasetInfo(10, 3, 32, "none"),
    "tinyimagenet": DatasetInfo(200, 3, 64, "flip"),
    "mnist": DatasetInfo(10, 1, 28, "none"),
    "fashionmnist": DatasetInfo(10, 1, 28, "none"),
    "restricted_imagenet": DatasetInfo(9, 3, 224, "imagenet"),
    "shapes": DatasetInfo(4, 1, 28, "none"),   # smooth-kernel paper, Section 4.1: generated four shapes
}
AUGMENTATIONS = ("crop_flip", "flip", "none", "imagenet")
# Class names for figures (where a data set has short ones); the rest are numbered.
CLASS_NAMES = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashionmnist": ("T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    "svhn": tuple(str(d) for d in range(10)),
    "restricted_imagenet": ("dog", "cat", "frog", "turtle", "bird", "primate", "fish", "crab", "insect"),
    "shapes": ("circle", "star", "square", "triangle"),
}

# Architectures: fixed names plus the Wide ResNet family wrn<depth>_<width>.
ARCHS = ("resnet18", "preact_resnet18", "resnet50", "resnet152", "small_cnn")
ARCH_PATTERN = "|".join(ARCHS) + r"|wrn\d+_\d+"
TORCHVISION_WEIGHTS = {"resnet50": "IMAGENET1K_V1"}   # arch -> torchvision weights that `train.init: torchvision` loads

# Attack types of evaluation.attacks.<name>.type. Fixed-eps L-inf attacks are bounded by the threat model's eps;
# minimal-perturbation searches (the smooth-kernel paper's foolbox attacks) find the smallest adversarial they can and
# count it as a success only within the threat model's eps (or always, when the threat model is unbounded).
BOUNDED_ATTACKS = ("fgsm", "pgd", "cw", "autoattack")
MINIMAL_ATTACKS = ("fgsm_min", "pgd_min", "cw_l2", "deepfool_l2", "deepfool_linf", "adef", "salt_pepper")
ATTACK_TYPES = ("clean",) + BOUNDED_ATTACKS + MINIMAL_ATTACKS

# A method slug (methods.py grammar) and an ablation point: `<slug>` or `<slug>/<fr key>~<value>`.
METHOD_PATTERN = r"[a-z][a-z0-9]*(_[a-z0-9]+)*"
POINT_VALUES = {"distance": ("l1", "l2", "cosine"), "fft": ("batch2d", "per_sample"),   # fr keys an ablation point
                "wa_bn": ("reestimate", "average")}                                  # sets, besides lam~<number>
POINT_PATTERN = "({})".format("|".join([r"lam~[0-9]+(\.[0-9]+)?"]
                                         + [f"{k}~({'|'.join(v)})" for k, v in POINT_VALUES.items()]))
FAMILIES = BASES + tuple(ALIASES)    # what a shared first-decay prefix run is named after


def dataset_info(name: str) -> DatasetInfo:
    from .errors import DataError

    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def is_arch(name: str) -> bool:
    return re.fullmatch(ARCH_PATTERN, name) is not None
