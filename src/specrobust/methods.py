"""Method slugs: a base objective plus plug-ins (pure Python, so the Snakefile can parse them without torch).

``pgd_at`` (base), ``pgd_at_fr`` (+ FR, the model itself as teacher), ``pgd_at_fr_wa`` (+ FR/WA, a weight-averaged
teacher; the later paper calls it SAR). Names follow ``reference/paper_numbers.csv``.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError

BASES = ("natural", "pgd_at")              # implemented in objectives.OBJECTIVES
ADVERSARIAL_BASES = ("pgd_at",)
PLUGINS = {"_fr_wa": "wa", "_fr": "self"}   # longest suffix first


@dataclass(frozen=True)
class Method:
    slug: str
    base: str          # objective name
    fr: str = "none"   # "none" | "self" (FR) | "wa" (FR/WA)


def parse_method(slug: str, key: str = "method") -> Method:
    base, fr = slug, "none"
    for suffix, kind in PLUGINS.items():
        if slug.endswith(suffix):
            base, fr = slug[: -len(suffix)], kind
            break
    if base not in BASES:
        raise ConfigError(f"{key}: unknown method {slug!r}; a method is a base objective "
                          f"({', '.join(BASES)}) optionally followed by _fr or _fr_wa")
    if fr != "none" and base not in ADVERSARIAL_BASES:
        raise ConfigError(f"{key}: {slug!r} adds FR to {base!r}, but FR aligns clean and adversarial outputs and "
                          f"needs an adversarial base ({', '.join(ADVERSARIAL_BASES)})")
    return Method(slug, base, fr)
