"""Seam statistics: does the hallucinated context meet the kept face like a photo does?

FID at small N cannot see a thin outline along the jaw or a brightness step at the forehead;
these two numbers can. Both compare an output with the real photo it came from, over the face
mask's border, on the grey level (mean of R, G, B) of ``(H, W, 3) uint8`` images:

* :func:`seam_ratio`: mean gradient magnitude in a band ``width`` px on each side of the mask's
  border, in the output, divided by the same in the real photo. 1 is photographic; above 1 an
  outline or step; below 1 a seam smoother than real skin edges (a blur).
* :func:`forehead_step`: the brightness step across the mask's top edge (mean of ``depth`` rows
  just inside minus ``depth`` rows just outside, over the columns of the top edge), output minus
  real, in grey levels; its absolute value is what the eye sees as a band across the forehead.

Pixels outside the real photo (align's ``.valid.png`` = 0) are left out of both.

``seam-kid`` (:func:`seam_kid`) is a set score of the border alone, as the eye sees it: KID
(:mod:`facefill.metrics.kid`, the FID Inception's features) of square ``patch`` px patches
centred on ``points`` points spaced evenly along each face mask's border (:func:`border_points`,
:func:`border_patches`), outputs against real photos. It is **unpaired**: an output's border
patch would share its inside half, bit for bit, with its own real photo's patch, which biases KID
towards 0, so the faces are split into two halves ``A`` and ``B`` (seeded), and the score is the
mean of KID(outputs of A, real photos of B) and KID(outputs of B, real photos of A). The floor is
KID(real photos of A, real photos of B): the same N a side, the same way. Both are the mean (and
spread) over ``splits`` seeded splits. An output set as good as real photos scores the floor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import torch


def _grey(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, np.float32).mean(-1)


def _gradient(grey: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    return np.sqrt(gx * gx + gy * gy)


def border_band(mask: np.ndarray, width: int = 2) -> np.ndarray:
    """``(H, W)`` bool: pixels within ``width`` px of the border of ``mask`` (``(H, W)``, face > 0.5),
    on either side."""
    m = (np.asarray(mask) > 0.5).astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * width + 1, 2 * width + 1))
    return (cv2.dilate(m, k) - cv2.erode(m, k)).astype(bool)


def seam_ratio(output: np.ndarray, real: np.ndarray, mask: np.ndarray, valid: np.ndarray | None = None,
               width: int = 2) -> float:
    """Mean gradient magnitude over :func:`border_band` in ``output`` over that in ``real``
    (NaN when the band is empty or the real photo is flat there)."""
    band = border_band(mask, width)
    if valid is not None:
        band &= np.asarray(valid) > 0.5
    if not band.any():
        return float("nan")
    g_out, g_real = _gradient(_grey(output))[band].mean(), _gradient(_grey(real))[band].mean()
    return float(g_out / g_real) if g_real > 1e-6 else float("nan")


def forehead_step(output: np.ndarray, real: np.ndarray, mask: np.ndarray, valid: np.ndarray | None = None,
                  depth: int = 3, span: float = 0.5) -> float:
    """Step across the mask's top edge in ``output`` minus the same step in ``real``, grey levels.

    The top edge is the first face row of each column in the middle ``span`` of the mask's
    width (the forehead, not the temples). NaN when no column qualifies."""
    m = np.asarray(mask) > 0.5
    ok = np.ones_like(m) if valid is None else np.asarray(valid) > 0.5
    cols = np.nonzero(m.any(0))[0]
    if len(cols) == 0:
        return float("nan")
    lo, hi = np.percentile(cols, [50 * (1 - span), 50 * (1 + span)])
    go, gr = _grey(output), _grey(real)
    steps = []
    for x in cols[(cols >= lo) & (cols <= hi)]:
        top = int(np.argmax(m[:, x]))
        if top < depth or top + depth > m.shape[0] or not ok[top - depth:top + depth, x].all():
            continue
        inside, outside = slice(top, top + depth), slice(top - depth, top)
        steps.append((go[inside, x].mean() - go[outside, x].mean()) - (gr[inside, x].mean() - gr[outside, x].mean()))
    return float(np.mean(steps)) if steps else float("nan")


def border_points(mask: np.ndarray, count: int = 8) -> np.ndarray:
    """``(count, 2)`` int ``(y, x)`` pixels on the border of the largest region of ``mask``
    (``(H, W)``, face > 0.5), spaced evenly by arc length, the first the border point straight
    above the region's centroid, going round in OpenCV's contour order. Empty for an empty mask."""
    m = (np.asarray(mask) > 0.5).astype(np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return np.zeros((0, 2), np.int64)
    c = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)  # (x, y)
    centre = c.mean(0)
    above = np.where(c[:, 1] <= centre[1])[0]
    start = int(above[np.argmin(np.abs(c[above, 0] - centre[0]))]) if len(above) else 0
    c = np.roll(c, -start, axis=0)
    seg = np.linalg.norm(np.diff(np.vstack([c, c[:1]]), axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)[:-1]])
    at = np.searchsorted(arc, np.arange(count) * seg.sum() / count, side="right") - 1
    return np.round(c[at][:, ::-1]).astype(np.int64)


def border_patches(image: np.ndarray, points: np.ndarray, size: int = 32) -> np.ndarray:
    """``(P, size, size, C)`` patches of ``image`` (``(H, W, C)``) centred on ``points``
    (``(P, 2)`` ``(y, x)``), moved inside the image where a centre is nearer an edge than half a
    patch (an image smaller than ``size`` is an error)."""
    h, w = image.shape[:2]
    if h < size or w < size:
        raise ValueError(f"seam-kid patches of {size} px need images of at least {size}x{size}; got {w}x{h}")
    out = []
    for y, x in np.asarray(points).reshape(-1, 2):
        y0 = int(np.clip(y - size // 2, 0, h - size))
        x0 = int(np.clip(x - size // 2, 0, w - size))
        out.append(image[y0:y0 + size, x0:x0 + size])
    return np.stack(out) if out else np.zeros((0, size, size, image.shape[2]), image.dtype)


def split_faces(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint halves of ``n // 2`` face indices each (an odd face out), seeded."""
    order = np.random.default_rng(seed).permutation(n)
    half = n // 2
    return np.sort(order[:half]), np.sort(order[half:2 * half])


def seam_kid(gen: torch.Tensor | np.ndarray, real: torch.Tensor | np.ndarray, faces: np.ndarray,
             splits: int = 10, seed: int = 0) -> dict[str, float]:
    """seam-kid (module doc) of border patch features: ``gen`` and ``real`` ``(P, D)``, row ``i``
    of both from face ``faces[i]`` at the same border point. Returns ``{"score", "score_std",
    "floor", "floor_std", "n"}`` (``n``: patches a side in each KID); means and population standard
    deviations over ``splits`` splits (:func:`split_faces` with seeds ``seed .. seed + splits - 1``)."""
    import torch

    from facefill.metrics.kid import kid

    gen, real = torch.as_tensor(gen), torch.as_tensor(real)
    faces = np.asarray(faces)
    ids = np.unique(faces)
    if len(ids) < 4:
        from facefill.errors import FacefillError

        raise FacefillError(f"seam-kid needs at least 4 faces (two halves of 2); got {len(ids)}")
    scores, floors, n = [], [], 0
    for s in range(splits):
        a, b = split_faces(len(ids), seed + s)
        rows_a = torch.from_numpy(np.isin(faces, ids[a]))
        rows_b = torch.from_numpy(np.isin(faces, ids[b]))
        n = int(rows_a.sum())
        scores.append(0.5 * (kid(gen[rows_a], real[rows_b], seed=s)[0] + kid(gen[rows_b], real[rows_a], seed=s)[0]))
        floors.append(kid(real[rows_a], real[rows_b], seed=s)[0])
    return {"score": float(np.mean(scores)), "score_std": float(np.std(scores)),
            "floor": float(np.mean(floors)), "floor_std": float(np.std(floors)), "n": n}
