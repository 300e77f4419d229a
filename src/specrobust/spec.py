"""The run spec: one record (dataset, arch, method, seed, schedule, attack, plug-ins) read by every stage."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .config import number, section, train_section
from .errors import ConfigError
from .methods import parse_method


@dataclass(frozen=True)
class RunSpec:
    dataset: str
    arch: str
    method: str
    base: str
    fr: str
    seed: int
    swa: bool
    awp: bool
    sk: bool
    epochs: int
    lr: float
    milestones: tuple
    momentum: float
    weight_decay: float
    batch_size: int
    augment: str
    eps: float
    step_size: float
    steps: int
    bn_mode: str
    fr_lambda: float
    fr_distance: str
    fr_fft: str
    val_steps: int
    val_limit: int | None
    train_limit: int | None
    precision: str
    channels_last: str
    compile: bool
    device: str
    trades_beta: float = 6.0
    mart_beta: float = 6.0
    sk_gamma: float = 1.0
    sk_lambda: float = 0.1
    sk_scope: str = "kernel"
    lpf_bandwidth: int = 16
    awp_gamma: float = 0.01
    awp_warmup: int = 0
    test_curve_limit: int = 0
    init: str | None = None         # pretrained start: "torchvision" or a checkpoint path (config train.init)
    arch_options: dict = field(default_factory=dict)

    @property
    def first_decay(self) -> int:
        """Epoch index (0-based) at which the learning rate first drops; FR and WA start there."""
        return self.milestones[0] if self.milestones else self.epochs

    def lr_at(self, epoch: int) -> float:
        return self.lr * 0.1 ** sum(epoch >= m for m in self.milestones)

    def prefix_key(self) -> dict:
        """Fields that must agree for a run to branch from another run's checkpoint at the first decay."""
        d = asdict(self)  # test_curve_limit only measures, it never changes the weights
        for k in ("method", "fr", "fr_lambda", "fr_distance", "fr_fft", "swa", "test_curve_limit"):
            d.pop(k, None)
        return d

    def as_dict(self) -> dict:
        return asdict(self)


HYPER = ("trades_beta", "mart_beta", "sk_gamma", "sk_lambda", "sk_scope", "lpf_bandwidth", "awp_gamma", "awp_warmup",
         "test_curve_limit")


def run_spec(config: dict, dataset: str, arch: str, method: str, seed: int) -> RunSpec:
    """Resolve config (defaults, then ``datasets.<name>`` overrides) into the spec of one training run."""
    from .data import dataset_info

    info = dataset_info(dataset)
    m = parse_method(method)
    train = train_section(config, dataset, method)
    fr = section(config, "fr", dataset, method)
    milestones = tuple(int(e) for e in train["milestones"])
    if list(milestones) != sorted(milestones) or any(not 0 < e < train["epochs"] for e in milestones):
        raise ConfigError(f"train.milestones {list(milestones)} must be increasing epochs inside "
                          f"(0, train.epochs={train['epochs']}) for {dataset}")
    spec = RunSpec(
        dataset=dataset, arch=arch, method=method, base=m.base, fr=m.fr, seed=int(seed), swa=m.swa, awp=m.awp,
        sk=m.sk,
        epochs=int(train["epochs"]), lr=float(train["lr"]), milestones=milestones,
        momentum=float(train["momentum"]), weight_decay=float(train["weight_decay"]),
        batch_size=int(train["batch_size"]), augment=train.get("augment") or info.augment,
        eps=number(train["eps"], "train.eps"), step_size=number(train["step_size"], "train.step_size"),
        steps=int(train["steps"]), bn_mode=train["bn_mode"],
        fr_lambda=float(fr.get("lam", 0.1)), fr_distance=fr.get("distance", "l1"), fr_fft=fr.get("fft", "batch2d"),
        val_steps=int(train["val_steps"]), val_limit=train.get("val_limit"), train_limit=train.get("train_limit"),
        precision=train["precision"], channels_last=str(train["channels_last"]).lower(), compile=bool(train["compile"]),
        device=train["device"], init=train.get("init"), arch_options=dict(config.get("archs", {}).get(arch) or {}),
        **{k: type(getattr(RunSpec, k))(train[k]) for k in HYPER if k in train},
    )
    if (spec.fr != "none" or spec.swa) and not spec.milestones:
        raise ConfigError(f"method {method} needs train.milestones: FR, FR/WA and SWA start at the first decay")
    return spec


def spec_from_dict(d: dict) -> RunSpec:
    d = dict(d)
    d["milestones"] = tuple(d["milestones"])
    return RunSpec(**d)
