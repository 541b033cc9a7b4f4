"""KID (facefill.metrics.kid) against piq.KID and a direct double-loop formula, its subset sampling,
and its behaviour on same-distribution and shifted features."""

import numpy as np
import pytest
import torch

from facefill.errors import FacefillError
from facefill.metrics.kid import kid, kid_subsets, mmd2_unbiased


def direct_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD^2 of Binkowski et al. written out pair by pair (no matrices)."""
    d = x.shape[1]

    def k(a, b):
        return (float(np.dot(a, b)) / d + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def features(n, d=2048, shift=0.0, seed=0):
    """Non-negative, Inception-like features (ReLU outputs averaged: mean ~0.3)."""
    rng = np.random.default_rng(seed)
    return np.abs(rng.normal(shift, 0.4, (n, d)))


def test_whole_set_kid_equals_piq_and_the_direct_formula():
    piq = pytest.importorskip("piq")
    x, y = features(40, seed=1), features(40, shift=0.05, seed=2)
    ours, std = kid(x, y)  # 40 <= 1000: one subset, the whole of both sets
    ref = float(piq.KID()(torch.from_numpy(x), torch.from_numpy(y)))  # float64, gamma 1/D, coef0 1, degree 3
    direct = direct_mmd2(x, y)
    print(f"facefill {ours!r} piq {ref!r} direct {direct!r}")
    assert std == 0.0 and kid_subsets(40, 40) == (1, 40)
    assert ours == pytest.approx(ref, rel=1e-12, abs=1e-15)
    assert ours == pytest.approx(direct, rel=1e-10)
    assert ours > 1e-4  # a real difference, not a value that is 0 for any input


def test_unequal_sizes_use_the_general_estimator():
    x, y = features(7, d=16, seed=3), features(11, d=16, shift=0.2, seed=4)
    assert mmd2_unbiased(x, y) == pytest.approx(direct_mmd2(x, y), rel=1e-10)
    assert mmd2_unbiased(y, x) == pytest.approx(mmd2_unbiased(x, y), rel=1e-12)


def test_subsets_are_seeded_and_average_to_the_whole_set_value():
    """E[subset MMD^2] = the whole-set value (each term is a U-statistic or a plain mean), so the
    mean over many subsets must approach it; a biased estimator would not."""
    x, y = features(40, d=32, seed=5), features(40, d=32, shift=0.1, seed=6)
    whole = mmd2_unbiased(x, y)
    mean, std = kid(x, y, subsets=2000, subset_size=8, seed=0)
    assert kid_subsets(40, 40, 2000, 8) == (2000, 8)
    assert std > 0
    assert abs(mean - whole) < 4 * std / np.sqrt(2000), (mean, whole, std)
    assert kid(x, y, subsets=20, subset_size=8, seed=0) == kid(x, y, subsets=20, subset_size=8, seed=0)
    assert kid(x, y, subsets=20, subset_size=8, seed=0) != kid(x, y, subsets=20, subset_size=8, seed=1)
    assert kid(x[:30], y, subset_size=1000) != (mmd2_unbiased(x[:30], y[:30]), 0.0)  # y subsets vary: 100 draws
    assert kid_subsets(30, 40) == (100, 30)


def test_kernels_computed_once_give_the_per_subset_values(monkeypatch):
    import facefill.metrics.kid as kid_module

    x, y = features(30, d=16, seed=9), features(25, d=16, shift=0.1, seed=10)
    once = kid(x, y, subsets=5, subset_size=10)
    monkeypatch.setattr(kid_module, "GRAM_LIMIT", 0)  # each subset's kernels computed on their own
    per_subset = kid(x, y, subsets=5, subset_size=10)
    assert once[1] > 0 and once == pytest.approx(per_subset, rel=1e-12)


def test_same_distribution_is_near_zero_and_a_shift_raises_it():
    both = features(400, d=64, seed=7)
    a, b = both[:200], both[200:]  # one sample split in two
    same, same_std = kid(a, b, subset_size=100)
    shifted, _ = kid(a, features(200, d=64, shift=0.3, seed=8), subset_size=100)
    assert abs(same) < 3 * same_std + 1e-3, (same, same_std)
    assert shifted > 20 * max(abs(same), same_std), (same, shifted)
    # a set against itself: 2 (S - m tr K) / (m^2 (m - 1)) <= 0 for a positive semi-definite kernel
    assert mmd2_unbiased(a, a) <= 0


def test_bad_inputs_are_refused():
    with pytest.raises(FacefillError, match="at least 2"):
        kid(features(1, d=4), features(5, d=4))
    with pytest.raises(ValueError, match="one dimension"):
        kid(features(5, d=4), features(5, d=8))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        kid(np.zeros((2, 3, 4)), np.zeros((2, 3, 4)))
