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
"""

from __future__ import annotations

import cv2
import numpy as np


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
