"""Kernel Inception Distance (Binkowski et al., "Demystifying MMD GANs", 2018).

``KID`` is the unbiased estimate of the squared maximum mean discrepancy (MMD^2) between two sets
of features under the cubic polynomial kernel ``k(x, y) = (x . y / D + 1)^3``, ``D`` the feature
dimension (2048 for the FID Inception features). For sets ``X`` of ``m`` and ``Y`` of ``n`` rows:

``MMD^2 = sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (n (n - 1))
- 2 sum_{i, j} k(x_i, y_j) / (m n)``

(for ``m = n`` this is the estimator of the paper's code, clean-fid, torch-fidelity and
``piq.KID``: the cross term keeps its diagonal, since ``x_i`` and ``y_i`` are independent).
It is unbiased, so it can be negative when the two sets come from the same distribution.

As in the standard implementations, KID is the mean over ``subsets`` (100) random subsets of
``min(subset_size, m, n)`` rows (``subset_size`` 1000) drawn without replacement from each set,
and its spread is the (population) standard deviation over those subsets. Subsets come from
``numpy.random.default_rng(seed)``, so a result is reproducible. When both sets are no larger
than the subset size, every subset is the whole of both sets: one value is computed and the
standard deviation is 0 (:func:`kid_subsets` says so).

Computed in float64 with PyTorch on the CPU; reported unscaled (papers often quote KID x 10^3).
"""

from __future__ import annotations

import numpy as np
import torch

from facefill.errors import FacefillError

#: the standard number of subsets and their largest size (Binkowski et al.; clean-fid; torch-fidelity)
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
#: with at most this many kernel entries (float64: 8 bytes each) for all rows of both sets, the
#: kernel matrices are computed once and every subset indexes them (2,000 + 2,000 features of
#: 2048-d: 12M entries, 12 s instead of 34 s on 2 busy CPU cores); larger sets compute each
#: subset's kernels
GRAM_LIMIT = 25_000_000


def _as_features(f: torch.Tensor | np.ndarray, what: str) -> torch.Tensor:
    t = torch.as_tensor(f).detach().to("cpu", torch.float64)
    if t.dim() != 2:
        raise ValueError(f"{what} features must be (N, D); got shape {tuple(t.shape)}")
    if t.shape[0] < 2:
        raise FacefillError(f"KID needs at least 2 images per side, got {t.shape[0]} {what}")
    return t


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(x . y / D + 1)^3`` for every pair of rows: ``(m, D)``, ``(n, D)`` -> ``(m, n)``."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray) -> float:
    """Unbiased MMD^2 (the module formula) of ``(m, D)`` and ``(n, D)`` features, ``m, n >= 2``,
    over all rows of both: one KID subset."""
    x, y = _as_features(x, "first"), _as_features(y, "second")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"KID needs features of one dimension; got {x.shape[1]} and {y.shape[1]}")
    return _mmd2(polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y))


def _mmd2(k_xx: torch.Tensor, k_yy: torch.Tensor, k_xy: torch.Tensor) -> float:
    m, n = k_xy.shape
    xx = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    yy = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return float(xx + yy - 2 * k_xy.sum() / (m * n))


def kid_subsets(n_x: int, n_y: int, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE) -> tuple[int, int]:
    """How :func:`kid` samples sets of ``n_x`` and ``n_y`` rows: ``(number of subsets, rows per
    subset)``. The size is ``min(subset_size, n_x, n_y)``; the number is 1 when that is all of
    both sets (every subset would be the same, whatever the order)."""
    if subsets < 1 or subset_size < 2:
        raise FacefillError(f"KID needs at least 1 subset of at least 2 rows; got {subsets} of {subset_size}")
    size = min(subset_size, n_x, n_y)
    return (1 if size == n_x == n_y else subsets), size


def kid(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray, subsets: int = KID_SUBSETS,
        subset_size: int = KID_SUBSET_SIZE, seed: int = 0) -> tuple[float, float]:
    """KID of ``(N_x, D)`` and ``(N_y, D)`` feature sets (any real values; the FID Inception's
    2048-d features in facefill): ``(mean, std)`` of :func:`mmd2_unbiased` over the subsets
    :func:`kid_subsets` gives, drawn without replacement with ``numpy.random.default_rng(seed)``
    (per subset: rows of ``x``, then rows of ``y``). Lower is better; about 0 for one distribution."""
    x, y = _as_features(x, "first"), _as_features(y, "second")
    count, size = kid_subsets(x.shape[0], y.shape[0], subsets, subset_size)
    if count == 1:
        return mmd2_unbiased(x, y), 0.0
    n_x, n_y = x.shape[0], y.shape[0]
    grams = None
    if n_x * n_x + n_y * n_y + n_x * n_y <= GRAM_LIMIT:  # the same values, each kernel entry computed once
        grams = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(count):
        ix = torch.from_numpy(rng.choice(n_x, size, replace=False))
        iy = torch.from_numpy(rng.choice(n_y, size, replace=False))
        if grams is None:
            values.append(mmd2_unbiased(x[ix], y[iy]))
        else:
            k_xx, k_yy, k_xy = grams
            values.append(_mmd2(k_xx[ix][:, ix], k_yy[iy][:, iy], k_xy[ix][:, iy]))
    v = np.array(values, np.float64)
    return float(v.mean()), float(v.std())
