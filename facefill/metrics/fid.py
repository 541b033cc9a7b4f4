"""Fréchet distance between Gaussians fitted to Inception features, and cached feature statistics.

``FID = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``, computed in float64 with PyTorch.
``tr((S1 S2)^(1/2))`` is the sum of the square roots of the eigenvalues of ``S1 S2`` (real and
non-negative for covariance matrices; tiny negative round-off is clipped to 0).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from facefill.errors import FacefillError


def feature_stats(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(N, D)`` features -> mean ``(D,)`` and unbiased covariance ``(D, D)`` (float64)."""
    f = torch.as_tensor(np.asarray(features), dtype=torch.float64)
    if f.shape[0] < 2:
        raise FacefillError(f"FID needs at least 2 images per side, got {f.shape[0]}")
    return f.mean(0).numpy(), torch.cov(f.T).numpy()


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    m1, m2 = torch.as_tensor(mu1, dtype=torch.float64), torch.as_tensor(mu2, dtype=torch.float64)
    s1, s2 = torch.as_tensor(sigma1, dtype=torch.float64), torch.as_tensor(sigma2, dtype=torch.float64)
    eig = torch.linalg.eigvals(s1 @ s2)
    tr_sqrt = eig.real.clamp(min=0).sqrt().sum()
    return float(((m1 - m2) ** 2).sum() + torch.trace(s1) + torch.trace(s2) - 2 * tr_sqrt)


def save_stats(path: str | os.PathLike, mu: np.ndarray, sigma: np.ndarray, source: str, n: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, mu=mu, sigma=sigma, source=np.array(source), n=np.array(n))
    return path


def load_stats(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, str]:
    try:
        with np.load(path) as d:
            return d["mu"], d["sigma"], str(d["source"]) if "source" in d else ""
    except (OSError, KeyError, ValueError) as exc:
        raise FacefillError(f"{path}: not a feature-statistics file written by 'facefill evaluate' ({exc})") from None
