"""Paired significance of an accuracy difference: hand-computed McNemar tables, the paired bootstrap interval, and
refusal of results over different test images."""
import math

import numpy as np
import pytest

from specrobust.stats import align, mcnemar_exact, paired_difference, paired_from_npz


def table(b, c, both=0, neither=0):
    """Correctness arrays with b images only A gets right, c only B, ``both`` right for both, ``neither`` for none."""
    a = [1] * b + [0] * c + [1] * both + [0] * neither
    bb = [0] * b + [1] * c + [1] * both + [0] * neither
    return np.array(a, bool), np.array(bb, bool)


def test_identical_models_differ_by_nothing():
    a = np.random.default_rng(0).random(500) < 0.7
    r = paired_difference(a, a.copy())
    assert (r["diff"], r["ci95"], r["p_mcnemar"], r["b"], r["c"], r["n"]) == (0.0, [0.0, 0.0], 1.0, 0, 0, 500)
    assert not r["significant"]


def test_mcnemar_exact_by_hand():
    assert mcnemar_exact(0, 6) == pytest.approx(2 * 0.5 ** 6)            # 0.03125
    assert mcnemar_exact(6, 0) == pytest.approx(0.03125)
    assert mcnemar_exact(3, 10) == pytest.approx(2 * (1 + 13 + 78 + 286) / 2 ** 13)  # 0.0923
    assert mcnemar_exact(1, 1) == 1.0 and mcnemar_exact(5, 5) == 1.0      # capped at 1
    assert mcnemar_exact(0, 0) == 1.0
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_mcnemar_stays_exact_for_large_counts():
    # 2 P(X <= 4900), X ~ Bin(10000, 1/2): z = (4900.5 - 5000) / 50 = -1.99 -> about 0.0466 (normal approximation)
    p = mcnemar_exact(4900, 5100)
    assert 0.04 < p < 0.055 and math.isfinite(p)
    assert mcnemar_exact(100_000, 100_000) == 1.0
    assert mcnemar_exact(0, 1000) == pytest.approx(2.0 ** -999, rel=1e-9)  # 2 * 0.5^1000, no underflow to 0
    scipy_stats = pytest.importorskip("scipy.stats")
    for b, c in ((4900, 5100), (37, 61), (0, 12), (250, 180)):
        assert mcnemar_exact(b, c) == pytest.approx(scipy_stats.binomtest(b, b + c, 0.5).pvalue, rel=1e-9)


def test_small_table_is_significant_and_signed():
    a, b = table(0, 6, both=10, neither=4)                       # B right on 6 more images out of 20
    r = paired_difference(a, b)
    assert (r["b"], r["c"], r["n"]) == (0, 6, 20)
    assert r["diff"] == pytest.approx(-30.0) and r["acc_a"] == 50.0 and r["acc_b"] == 80.0
    assert r["p_mcnemar"] == pytest.approx(0.03125)
    assert r["ci95"][1] < 0 and r["significant"]
    assert paired_difference(b, a)["diff"] == pytest.approx(30.0)


def test_interval_contains_the_difference_and_shrinks_with_n():
    small = paired_difference(*table(30, 10, both=100, neither=60))      # n = 200, diff 10 points
    big = paired_difference(*table(300, 100, both=1000, neither=600))    # n = 2000, same rates
    for r in (small, big):
        assert r["diff"] == pytest.approx(10.0) and r["ci95"][0] < 10.0 < r["ci95"][1]
    width = lambda r: r["ci95"][1] - r["ci95"][0]  # noqa: E731
    assert width(big) < width(small) / 2.5         # ~ 1/sqrt(10) of it
    # the bootstrap interval matches the paired normal interval: sd of the per-image difference / sqrt(n)
    d = np.r_[np.ones(300), -np.ones(100), np.zeros(1600)]
    assert width(big) == pytest.approx(2 * 1.96 * 100 * d.std() / math.sqrt(2000), rel=0.05)


def test_interval_covers_the_true_difference_of_the_population():
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(40):                                        # true accuracies 60% and 55%: 5 points apart
        u = rng.random(1000)
        a, b = u < 0.60, (u < 0.50) | ((u >= 0.60) & (u < 0.65))
        lo, hi = paired_difference(a, b, n_boot=2000, seed=int(rng.integers(1 << 30)))["ci95"]
        covered += lo <= 5.0 <= hi
    assert covered >= 34                                       # 95% nominal coverage: 38 of 40 expected


def test_seeded_and_reproducible():
    a, b = table(12, 5, both=50, neither=33)
    assert paired_difference(a, b, seed=3) == paired_difference(a, b, seed=3)


def test_aligned_by_test_index():
    rng = np.random.default_rng(2)
    a, b = rng.random(300) < 0.6, rng.random(300) < 0.5
    idx = rng.permutation(10_000)[:300]
    perm = rng.permutation(300)
    ref = paired_difference(a, b)
    shuffled = paired_difference(a, b[perm], idx, idx[perm])       # B's file lists the same images in another order
    assert shuffled == ref
    assert np.array_equal(align(a, b[perm], idx, idx[perm])[1], b)


@pytest.mark.parametrize("kwargs,match", [
    ({"index_b": np.arange(1, 5)}, "different images: 1 only in A"),
    ({"index_b": np.array([0, 1, 2, 2])}, "repeats test images"),
    ({"index_b": None}, "both models or of neither"),
])
def test_different_images_are_refused(kwargs, match):
    a, b = np.array([1, 0, 1, 1], bool), np.array([1, 1, 0, 1], bool)
    with pytest.raises(ValueError, match=match):
        paired_difference(a, b, **{"index_a": np.arange(4), **kwargs})


def test_malformed_inputs_are_refused():
    with pytest.raises(ValueError, match="different images: 3 vs 4"):
        paired_difference(np.ones(3, bool), np.ones(4, bool))
    with pytest.raises(ValueError, match="0/1"):
        paired_difference(np.array([0, 2]), np.array([0, 1]))
    with pytest.raises(ValueError, match="one-dimensional"):
        paired_difference(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="no test images"):
        paired_difference(np.zeros(0, bool), np.zeros(0, bool))


def test_from_evaluation_files(tmp_path):
    a, b = table(9, 2, both=20, neither=9)
    idx = np.arange(100, 140)
    np.savez(tmp_path / "a.npz", test_index=idx, correct=a)
    np.savez(tmp_path / "b.npz", test_index=idx[::-1], correct=b[::-1])
    r = paired_from_npz(tmp_path / "a.npz", tmp_path / "b.npz")
    assert (r["b"], r["c"], r["n"]) == (9, 2, 40) and r["p_mcnemar"] == pytest.approx(mcnemar_exact(9, 2))
    np.savez(tmp_path / "c.npz", correct=b)
    with pytest.raises(ValueError, match="lacks 'correct' or 'test_index'"):
        paired_from_npz(tmp_path / "a.npz", tmp_path / "c.npz")
