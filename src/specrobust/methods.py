"""Method slugs: a base objective plus plug-ins (pure Python, so the Snakefile can parse them without torch).

Grammar: ``<base>[_fr | _fr_wa][_swa]`` where ``<base>`` is an objective (``natural``, ``pgd_at``, ``trades``,
``mart``, ``sk_l``, ``l_model``) or an alias that adds plug-ins active from the first epoch:
``awp`` (AT-AWP), ``trades_awp`` (TRADES-AWP), and the smooth-kernel paper's ``sk_v``/``sk_t``/``sk_a``/``sk_l``
(V, T, A, L) with a trailing ``r`` for the smoothness regularizer R(w) (``sk_vr``, ``sk_tr``, ``sk_ar``, ``sk_lr``)
or ``h`` for its "H" control, R(w) with a negative lambda (``sk_vh``, ``sk_th``, ``sk_ah``, ``sk_lh``).
``_fr`` adds FR (the model itself as teacher), ``_fr_wa`` FR/WA (a weight-averaged teacher; SAR in the later paper),
``_swa`` evaluates the stochastic weight average (workshop paper). Names follow ``reference/paper_numbers.csv``.
FR, FR/WA and SWA start at the first LR decay, so runs that differ only in them share one prefix run.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError

BASES = ("natural", "pgd_at", "trades", "mart", "sk_l", "l_model")   # implemented in objectives.LOSSES
ADVERSARIAL_BASES = ("pgd_at", "trades", "mart", "sk_l")             # those that craft adversarial inputs
# alias -> (objective, awp, smooth-kernel regularizer); all are active from the first epoch
ALIASES = {
    "awp": ("pgd_at", True, False), "trades_awp": ("trades", True, False),
    "sk_v": ("natural", False, False), "sk_vr": ("natural", False, True),
    "sk_t": ("trades", False, False), "sk_tr": ("trades", False, True),
    "sk_a": ("pgd_at", False, False), "sk_ar": ("pgd_at", False, True),
    "sk_lr": ("sk_l", False, True),
    "sk_vh": ("natural", False, True), "sk_th": ("trades", False, True), "sk_ah": ("pgd_at", False, True),
    "sk_lh": ("sk_l", False, True),
}
H_CONTROLS = ("sk_vh", "sk_th", "sk_ah", "sk_lh")   # R(w) towards high-frequency kernels: train.sk_lambda < 0
FR_SUFFIXES = {"_fr_wa": "wa", "_fr": "self"}   # longest first


@dataclass(frozen=True)
class Method:
    slug: str
    base: str            # objective name
    fr: str = "none"     # "none" | "self" (FR) | "wa" (FR/WA)
    swa: bool = False    # evaluate the SWA model (from the first decay, BatchNorm re-estimated)
    awp: bool = False    # adversarial weight perturbation in every step
    sk: bool = False     # + lambda * R(w), the smooth-kernel regularizer
    prefix: str = ""     # slug of the run it shares its epochs before the first decay with

    @property
    def adversarial(self) -> bool:
        return self.base in ADVERSARIAL_BASES


def parse_method(slug: str, key: str = "method") -> Method:
    name, swa, fr = slug, False, "none"
    if name.endswith("_swa"):
        name, swa = name[: -len("_swa")], True
    for suffix, kind in FR_SUFFIXES.items():
        if name.endswith(suffix):
            name, fr = name[: -len(suffix)], kind
            break
    base, awp, sk = ALIASES.get(name, (name, False, False))
    if base not in BASES:
        raise ConfigError(f"{key}: unknown method {slug!r}; a method is a base objective "
                          f"({', '.join(BASES)}) or an alias ({', '.join(ALIASES)}), optionally followed by "
                          f"_fr or _fr_wa, then optionally _swa")
    if fr != "none" and base not in ADVERSARIAL_BASES:
        raise ConfigError(f"{key}: {slug!r} adds FR to {base!r}, but FR aligns clean and adversarial outputs and "
                          f"needs an adversarial base ({', '.join(ADVERSARIAL_BASES)})")
    return Method(slug, base, fr, swa, awp, sk, prefix=name)


def is_natural(slug: str) -> bool:
    """A model of ours trained with nothing that aims at robustness (natural, sk_v, the L-model), the reference that
    any sound attack must break; not the smoothness-regularized sk_vr, whose R(w) is meant to resist attacks.
    External checkpoints are not parsed as methods."""
    if slug.startswith("external_"):
        return False
    m = parse_method(slug)
    return not m.adversarial and not m.sk
