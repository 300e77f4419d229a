"""What a job asks a scheduler for: GPUs, threads, runtime and host memory (pure Python, no torch).

Runtime comes from one cost model, shared by the rules (and so the SLURM profile) and the study plan: a job's work
in image-passes (one forward and backward of one image; a forward alone counts 1/3), times the arch's measured or
estimated milliseconds per pass on one H100-class GPU (``resources.ms_per_pass``), scaled by pixels. Memory comes
from measured peaks per arch and data set (``resources.mem_mb``), never from the runtime.
"""
from __future__ import annotations

import re

from .registry import dataset_info

FORWARD = 1 / 3  # a forward pass costs about a third of a forward and backward pass
REFERENCE_SIZE = {"resnet50": 224, "small_cnn": 28}   # the image size ms_per_pass is given at (others: 32 px)
# Test split sizes of the real data sets, for evaluations on the whole test set (n_test null).
TEST_IMAGES = {"cifar10": 10_000, "cifar100": 10_000, "svhn": 26_032, "tinyimagenet": 10_000, "mnist": 10_000,
               "fashionmnist": 10_000, "restricted_imagenet": 10_150}
TRAIN_IMAGES = {"cifar10": 50_000, "cifar100": 50_000, "svhn": 73_257, "tinyimagenet": 100_000, "mnist": 60_000,
                "fashionmnist": 60_000, "restricted_imagenet": 257_748}


def attack_passes(rec: dict) -> float:
    """Image-passes per test image of one evaluation or analysis record (:mod:`specrobust.jobs`)."""
    kind = rec["type"]
    if kind == "heatmap":     # every (strided) frequency: one forward pass of each image
        size = dataset_info(rec["dataset"]).size
        return (size // rec["stride"]) ** 2 * FORWARD
    if kind == "eps_curve":
        return len(rec["multiples"]) * (rec["steps"] + FORWARD)
    if "bandwidth_step" in rec:   # spectral: its PGD-20, then forward passes of four filtered copies per bandwidth
        size = dataset_info(rec["dataset"]).size
        return rec["steps"] + FORWARD + 4 * (size // rec["bandwidth_step"]) * FORWARD
    if kind == "clean":
        return FORWARD
    if kind == "fgsm":
        return 1 + FORWARD
    if kind in ("pgd", "cw"):
        return rec["restarts"] * (rec["steps"] + FORWARD) + FORWARD
    if kind == "autoattack":   # APGD-CE 100; APGD-T and FAB-T 9 x 100, Square 5000 forwards, on points still robust
        return 100 + 0.6 * (900 + 900 + 5000 * FORWARD)
    return {"fgsm_min": 1 + 1000 * FORWARD, "pgd_min": 20 * 40, "cw_l2": 5 * 1000, "deepfool_l2": 50 * 10,
            "deepfool_linf": 50 * 10, "adef": 100 * 9, "salt_pepper": 1000 * FORWARD}.get(kind, 1000)


class Requests:
    """Requests per job, from config ``resources`` and ``train.device``."""

    def __init__(self, config: dict):
        self.config, self.res = config, config.get("resources") or {}

    # --------------------------------------------------------------------------------------------- basics
    def threads(self, kind: str) -> int:
        return int((self.res.get(kind) or {}).get("threads", 4))

    def gpus(self, kind: str, rec: dict | None = None) -> int:
        """GPUs per job: none when training runs on the CPU (``train.device: cpu``), else 1, or the training run's
        data-parallel process count."""
        if self.config["train"]["device"] == "cpu":
            return 0
        return int(rec.get("processes", 1)) if (kind == "train" and rec) else 1

    def ms_per_pass(self, arch: str, dataset: str) -> float:
        """Milliseconds of one forward+backward of one image of ``dataset`` through ``arch`` on one GPU."""
        table = self.res.get("ms_per_pass") or {}
        ms = table.get(arch, table.get("default", 1.0))
        return float(ms) * (dataset_info(dataset).size / REFERENCE_SIZE.get(arch, 32)) ** 2

    def _minutes(self, passes: float, arch: str, dataset: str, attempt: int) -> int:
        """Estimated minutes x safety x attempt (a job that ran out of time asks for more when retried)."""
        est = passes * self.ms_per_pass(arch, dataset) / 60_000
        return max(5, int(est * float(self.res.get("safety", 1.5)) * attempt) + 1)

    # --------------------------------------------------------------------------------------------- training
    def train_passes(self, spec, epochs: int) -> float:
        """Image-passes of ``epochs`` epochs of one run (RunSpec): the update, its attack, FR's clean branch and
        teacher, AWP's proxy step, then per epoch model selection (PGD val_steps) and the test curve."""
        n_train = TRAIN_IMAGES.get(spec.dataset, 50_000) * (1 - self.config["data"]["val_fraction"])
        for limit in (self.config["data"].get("train_limit"), spec.train_limit):
            n_train = min(n_train, limit or n_train)
        per_image = 1.0 + (spec.steps if spec.adversarial else 0)
        per_image += {"trades": 1 + FORWARD, "mart": 1, "sk_l": 1}.get(spec.base, 0)
        per_image += (1 if spec.fr == "self" else FORWARD if spec.fr == "wa" else 0) + (1 if spec.awp else 0)
        n_val = TRAIN_IMAGES.get(spec.dataset, 50_000) * self.config["data"]["val_fraction"]
        n_val = min(n_val, spec.val_limit or n_val)
        per_epoch = n_train * per_image + (n_val + spec.test_curve_limit) * (spec.val_steps + 2 * FORWARD)
        return epochs * per_epoch

    def train_runtime(self, spec, epochs: int, attempt: int = 1) -> int:
        """With N data-parallel processes, about 0.9 N times faster (docs/clusters.md)."""
        speedup = 1.0 if spec.processes <= 1 else 0.9 * spec.processes
        return self._minutes(self.train_passes(spec, epochs) / speedup, spec.arch, spec.dataset, attempt)

    def train_threads(self, spec) -> int:
        """CPU threads of a training job: ``resources.train.threads`` per process."""
        return self.threads("train") * max(1, spec.processes)

    def train_mem_mb(self, spec) -> int:
        """Host memory of a training job: each extra process holds its own copy of the model and the data."""
        return self.mem_mb(spec.arch, spec.dataset) * max(1, spec.processes)

    # --------------------------------------------------------------------------------------------- evaluation
    def eval_passes(self, rec: dict) -> float:
        n = rec.get("n_test") or TEST_IMAGES.get(rec["dataset"], 10_000)
        if self.config["data"].get("test_limit"):
            n = min(n, self.config["data"]["test_limit"])
        return n * attack_passes(rec)

    def eval_runtime(self, rec: dict, attempt: int = 1) -> int:
        return self._minutes(self.eval_passes(rec), rec["arch"], rec["dataset"], attempt)

    def sanity_passes(self, rec: dict) -> float:
        """PGD over the eps grid, PGD-100, PGD x restarts, C&W, Square, foolbox PGD on sanity.n_test images."""
        per_image = (len(rec["eps_grid"]) + 3 + rec["restarts"]) * rec["steps"] + 5 * rec["steps"] + 30 \
            + rec["square_queries"] * FORWARD
        return rec["n_test"] * per_image

    def figure_passes(self, kind: str, rec: dict) -> float:
        """The smooth-kernel paper's per-model figure jobs: minimal FGSM (one gradient, then a forward per eps of the
        grid), activation maximisation (steps per class), targeted grids (steps per source-target pair)."""
        classes = dataset_info(rec["dataset"]).num_classes
        if kind == "sk_fgsm":
            return (rec.get("n_test") or TEST_IMAGES.get(rec["dataset"], 10_000)) * (1 + rec["epsilons"] * FORWARD)
        if kind == "sk_class_images":
            return classes * rec["steps"]
        return classes * (classes - 1) * rec["steps"]

    def figure_runtime(self, kind: str, rec: dict, attempt: int = 1) -> int:
        return self._minutes(self.figure_passes(kind, rec), rec["arch"], rec["dataset"], attempt)

    def sanity_runtime(self, rec: dict, attempt: int = 1) -> int:
        return self._minutes(self.sanity_passes(rec), rec["arch"], rec["dataset"], attempt)

    # --------------------------------------------------------------------------------------------- memory
    def mem_mb(self, arch: str | None, dataset: str) -> int:
        """Host memory: the arch's measured peak plus the data set's (``resources.mem_mb.arch`` / ``.dataset``);
        without an arch (data preparation), twice the data set's."""
        mem = self.res.get("mem_mb") or {}
        by_arch, by_data = mem.get("arch") or {}, mem.get("dataset") or {}
        if arch is None:
            return int(2 * by_data.get(dataset, by_data.get("default", 1000)))
        wrn = "wrn" if re.fullmatch(r"wrn\d+_\d+", arch) else arch
        return int(by_arch.get(arch, by_arch.get(wrn, by_arch.get("default", 8000)))
                   + by_data.get(dataset, by_data.get("default", 1000)))
