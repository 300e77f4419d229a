"""Paired comparison of two models on the same test images: is A's accuracy really different from B's?

Per-image correctness of both models (the ``correct`` arrays of the evaluation's .npz files, aligned by
``test_index``) gives the accuracy difference, a paired bootstrap interval and McNemar's exact test. Pairing matters:
both models see the same images, so the uncertainty is in the images on which they disagree, and two independent
intervals (one per model) would be far too wide. numpy only.

``significant`` is one rule: McNemar's exact two-sided p < 0.05 AND the 95% bootstrap interval excludes 0. The two
nearly always agree; where they do not (a handful of discordant images) the claim is not made.
"""
from __future__ import annotations

import math

import numpy as np


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value of b vs c discordant pairs: 2 P(X <= min(b, c)), X ~ Binomial(b + c, 1/2),
    capped at 1. Summed in log space (lgamma + log-sum-exp), so it stays exact (to float rounding) for any count;
    no normal or chi-square approximation is used."""
    b, c = int(b), int(c)
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be non-negative, got b={b}, c={c}")
    m, k = b + c, min(b, c)
    if m == 0:
        return 1.0
    logs = np.array([math.lgamma(m + 1) - math.lgamma(i + 1) - math.lgamma(m - i + 1) for i in range(k + 1)])
    top = logs.max()
    log_tail = top + math.log(np.exp(logs - top).sum()) - m * math.log(2)
    return min(1.0, 2 * math.exp(log_tail))


def _as_correct(x, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one entry per test image), got shape {a.shape}")
    if a.dtype != bool and not np.isin(a, (0, 1)).all():
        raise ValueError(f"{name} must hold booleans or 0/1, got values like {a[~np.isin(a, (0, 1))][:3].tolist()}")
    return a.astype(bool)


def align(correct_a, correct_b, index_a=None, index_b=None) -> tuple[np.ndarray, np.ndarray]:
    """Both correctness arrays in the order of ``index_a``; refused (ValueError, one line) unless they cover
    exactly the same test images. Without indices, equal lengths are taken to mean the same images in order."""
    a, b = _as_correct(correct_a, "correct_a"), _as_correct(correct_b, "correct_b")
    if (index_a is None) != (index_b is None):
        raise ValueError("give the test indices of both models or of neither")
    if index_a is None:
        if len(a) != len(b):
            raise ValueError(f"the models were evaluated on different images: {len(a)} vs {len(b)} results")
        return a, b
    ia, ib = np.asarray(index_a).ravel(), np.asarray(index_b).ravel()
    for name, idx, arr in (("index_a", ia, a), ("index_b", ib, b)):
        if len(idx) != len(arr):
            raise ValueError(f"{name} has {len(idx)} entries for {len(arr)} results")
        if len(np.unique(idx)) != len(idx):
            raise ValueError(f"{name} repeats test images")
    if len(ia) != len(ib) or not np.array_equal(np.sort(ia), np.sort(ib)):
        only_a, only_b = np.setdiff1d(ia, ib), np.setdiff1d(ib, ia)
        raise ValueError(f"the models were evaluated on different images: {len(only_a)} only in A "
                         f"(e.g. {only_a[:3].tolist()}), {len(only_b)} only in B (e.g. {only_b[:3].tolist()})")
    order_b = np.argsort(ib)[np.searchsorted(np.sort(ib), ia)]  # position in b of each of a's images
    return a, b[order_b]


def paired_difference(correct_a, correct_b, index_a=None, index_b=None, n_boot: int = 10000, seed: int = 0) -> dict:
    """Accuracy of A minus accuracy of B, in points, on the same test images.

    Returns ``diff``, ``ci95`` (paired percentile bootstrap over images, ``n_boot`` resamples, seeded), ``p_mcnemar``
    (exact, two-sided), ``b`` (images A gets right and B wrong), ``c`` (the reverse), ``n``, ``acc_a``, ``acc_b`` and
    ``significant`` (p < 0.05 and the interval excludes 0). Resampling n images with replacement only changes how
    many of the b and c discordant images are drawn, so each resample is one multinomial draw of those counts: the
    same distribution as resampling indices, at a cost independent of n."""
    a, b = align(correct_a, correct_b, index_a, index_b)
    n = len(a)
    if n == 0:
        raise ValueError("no test images to compare")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    nb, nc = int(np.sum(a & ~b)), int(np.sum(~a & b))
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, [nb / n, nc / n, max(0.0, 1 - (nb + nc) / n)], size=n_boot)
    boot = 100 * (draws[:, 0] - draws[:, 1]) / n
    lo, hi = np.percentile(boot, [2.5, 97.5])
    p = mcnemar_exact(nb, nc)
    return {"diff": 100 * (nb - nc) / n, "ci95": [float(lo), float(hi)], "p_mcnemar": p, "b": nb, "c": nc, "n": n,
            "acc_a": 100 * float(a.mean()), "acc_b": 100 * float(b.mean()),
            "significant": bool(p < 0.05 and (lo > 0 or hi < 0))}


def paired_from_npz(path_a, path_b, **kw) -> dict:
    """``paired_difference`` of two evaluation .npz files (``correct`` and ``test_index``, as evaluation writes)."""
    with np.load(path_a) as fa, np.load(path_b) as fb:
        for path, f in ((path_a, fa), (path_b, fb)):
            if "correct" not in f or "test_index" not in f:
                raise ValueError(f"{path} lacks 'correct' or 'test_index' (not an evaluation's per-example file)")
        return paired_difference(fa["correct"], fb["correct"], fa["test_index"], fb["test_index"], **kw)
