"""Fréchet distance between Gaussians fitted to Inception features, and the real set's cache
(``evaluate --real-stats``: FID statistics plus, since KID, the features themselves).

``FID = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``, computed in float64 with PyTorch.
``tr((S1 S2)^(1/2))`` is the sum of the square roots of the eigenvalues of ``S1 S2`` (real and
non-negative for covariance matrices; tiny negative round-off is clipped to 0).
"""

from __future__ import annotations

import json
import os
import zipfile
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


def save_stats(path: str | os.PathLike, mu: np.ndarray, sigma: np.ndarray, source: str, n: int,
               features: np.ndarray | None = None, meta: dict | None = None) -> Path:
    """Write the real set's FID statistics (mean ``(D,)``, covariance ``(D, D)``), the network
    ``source`` and ``n``, plus its ``(N, D)`` features for KID (float32) and ``meta`` (what the
    statistics were computed from, JSON), as an ``.npz`` at exactly ``path`` (no suffix added),
    atomically."""
    import io

    from facefill.data.io import write_bytes

    arrays = {"mu": mu, "sigma": sigma, "source": np.array(source), "n": np.array(n)}
    if features is not None:
        arrays["features"] = np.asarray(features, np.float32)
    if meta is not None:
        arrays["meta"] = np.array(json.dumps(meta))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return write_bytes(path, buf.getvalue())


def _open_stats(path: str | os.PathLike):
    """The open .npz of a :func:`save_stats` file. Anything else is a one-line FacefillError: numpy
    itself would try a file that is not a zip as a pickle, and advise ``allow_pickle=``."""
    bad = f"{path}: not a feature-statistics file written by 'facefill evaluate'"
    fix = "; give --real-stats a file an earlier evaluate wrote there, or a new path to write them to"
    try:
        with open(path, "rb") as fh:
            head = fh.read(6)
    except OSError as exc:
        raise FacefillError(f"{bad} ({exc.strerror or exc}){fix}") from None
    if not head.startswith(b"PK\x03\x04"):
        what = "a single .npy array" if head == b"\x93NUMPY" else "not a NumPy .npz archive"
        raise FacefillError(f"{bad} ({what}){fix}")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise FacefillError(f"{bad} (a damaged .npz: {str(exc).splitlines()[0][:100] if str(exc) else exc}){fix}") from None


def load_stats(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, str]:
    """Mean, covariance and network source from a :func:`save_stats` file (any version)."""
    try:
        with _open_stats(path) as d:
            return d["mu"], d["sigma"], str(d["source"]) if "source" in d else ""
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
        raise FacefillError(f"{path}: not a feature-statistics file written by 'facefill evaluate' ({exc})") from None


def load_meta(path: str | os.PathLike) -> dict:
    """The ``meta`` a :func:`save_stats` file was written with ({} for files written without)."""
    try:
        with _open_stats(path) as d:
            meta = json.loads(str(d["meta"])) if "meta" in d.files else {}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        meta = exc
    if not isinstance(meta, dict):
        raise FacefillError(f"{path}: its record of the real images is damaged ({str(meta)[:80]}); delete it to "
                            "recompute it")
    return meta


def has_features(path: str | os.PathLike) -> bool:
    """Whether a :func:`save_stats` file holds the features (files written before KID do not)."""
    with _open_stats(path) as d:
        return "features" in d.files


def load_features(path: str | os.PathLike) -> np.ndarray:
    """The ``(N, D)`` float32 features of a :func:`save_stats` file (FacefillError if it has none)."""
    try:
        with _open_stats(path) as d:
            return d["features"]
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
        raise FacefillError(f"{path}: holds no features ({exc}); delete it to recompute it") from None
