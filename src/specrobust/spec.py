"""The training record: every value one training run uses, and nothing it does not use.

:func:`specrobust.jobs.train` resolves it from config and wildcards; the rule passes :meth:`RunSpec.record` as its
params, so Snakemake reruns a training job exactly when a value it uses changes; the checkpoint stores the same
record, so a resumed or branched run can tell whether it was written under the same settings.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

# Fields every run uses; the rest belong to one objective or plug-in (USED_BY) and are left out of other records.
USED_BY = {
    "steps": lambda s: s.adversarial, "step_size": lambda s: s.adversarial, "bn_mode": lambda s: s.adversarial,
    "fr_lambda": lambda s: s.fr != "none", "fr_distance": lambda s: s.fr != "none", "fr_fft": lambda s: s.fr != "none",
    "wa_bn": lambda s: s.fr == "wa",
    "trades_beta": lambda s: s.base == "trades", "mart_beta": lambda s: s.base == "mart",
    "sk_gamma": lambda s: s.base == "sk_l", "lpf_bandwidth": lambda s: s.base == "l_model",
    "sk_lambda": lambda s: s.sk, "sk_scope": lambda s: s.sk, "sk_clip": lambda s: s.sk,
    "sk_max_exponent": lambda s: s.sk and s.sk_max_exponent is not None,
    "grad_clip": lambda s: s.grad_clip is not None,
    "awp_gamma": lambda s: s.awp, "awp_warmup": lambda s: s.awp,
    "sync_bn": lambda s: s.processes > 1,
}
# Fields a continuation may differ in from the first-decay prefix it branches from (all start at the decay).
BRANCH_ONLY = ("method", "point", "fr", "swa", "fr_lambda", "fr_distance", "fr_fft", "wa_bn", "test_curve_limit")


@dataclass(frozen=True)
class RunSpec:
    dataset: str
    arch: str
    method: str                     # the method slug (methods.py grammar)
    base: str                       # its objective
    seed: int
    epochs: int
    lr: float
    milestones: tuple
    momentum: float
    weight_decay: float
    batch_size: int
    augment: str
    eps: float                      # training threat model (L-inf); model selection attacks at it too
    val_steps: int
    val_step_size: float
    precision: str                  # fp32 (the papers) | bf16 (autocast, opt-in speed mode)
    point: str | None = None        # an ablation point, e.g. "lam~0.05"
    fr: str = "none"                # none | self (FR) | wa (FR/WA)
    swa: bool = False
    awp: bool = False
    sk: bool = False
    adversarial: bool = False       # the objective crafts training attacks
    steps: int = 10
    step_size: float = 2 / 255
    bn_mode: str = "eval"
    val_limit: int | None = None
    train_limit: int | None = None
    channels_last: str = "auto"
    compile: bool = False
    test_curve_limit: int = 0
    init: str | None = None         # pretrained start: "torchvision" or a checkpoint path (config train.init)
    arch_options: dict = field(default_factory=dict)
    processes: int = 1              # data-parallel processes on one node, one GPU each (1 = a plain run)
    sync_bn: bool = True            # with processes > 1: BatchNorm statistics over the global batch
    fr_lambda: float = 0.1
    fr_distance: str = "l1"
    fr_fft: str = "batch2d"
    wa_bn: str = "reestimate"       # FR/WA teacher's BatchNorm statistics: reestimate | average
    trades_beta: float = 6.0
    mart_beta: float = 6.0
    sk_gamma: float = 1.0
    sk_lambda: float = 0.1
    sk_scope: str = "kernel"
    sk_clip: float | None = None
    sk_max_exponent: float | None = None   # the H controls only: each exponent of R clamped (None = the paper's R)
    grad_clip: float | None = None         # L2 bound of the data term's gradient (everything but R); None = off
    lpf_bandwidth: int = 16
    awp_gamma: float = 0.01
    awp_warmup: int = 0

    @property
    def first_decay(self) -> int:
        """Epoch index (0-based) at which the learning rate first drops; FR, WA and SWA start there."""
        return self.milestones[0] if self.milestones else self.epochs

    @property
    def name(self) -> str:
        run = f"{self.method}/{self.point}" if self.point else self.method
        return f"{self.dataset}/{self.arch}/{run}/seed{self.seed}"

    def lr_at(self, epoch: int) -> float:
        return self.lr * 0.1 ** sum(epoch >= m for m in self.milestones)

    def record(self) -> dict:
        """The values this run uses (plain JSON types): the rule's params and the checkpoint's ``spec``."""
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        return {k: v for k, v in d.items() if k not in USED_BY or USED_BY[k](self)}

    def prefix_key(self) -> dict:
        """What must agree for a run to continue another run's first-decay checkpoint."""
        return {k: v for k, v in self.record().items() if k not in BRANCH_ONLY}


def spec_from_record(d: dict) -> RunSpec:
    known = {f.name for f in fields(RunSpec)}
    d = {k: v for k, v in d.items() if k in known}
    d["milestones"] = tuple(d["milestones"])
    return RunSpec(**d)
