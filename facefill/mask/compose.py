"""Paste the real face back over a hallucination: the one home of the bit-exact face.

:func:`paste_face` is what every way of filling context ends with (the model's ``keep_face``
through :func:`compose`, the classical baselines, donor context): every pixel with
``mask > 0.5`` is the input's, bit for bit. :func:`compose` adds a seam feathered outside the mask.
"""

from __future__ import annotations

import cv2
import numpy as np


def paste_face(face: np.ndarray, generated: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``generated`` with every pixel where ``mask > 0.5`` taken from ``face``, bit for bit.
    ``face``, ``generated``: ``(..., H, W, 3) uint8`` of one shape; ``mask``: ``(..., H, W)`` in
    [0, 1] (or bool; 1 = face) with the same leading dimensions. Returns a new array."""
    inside = mask > 0.5 if np.asarray(mask).dtype != np.bool_ else np.asarray(mask)
    out = np.array(generated, copy=True)
    out[inside] = face[inside]
    return out


def compose(face: np.ndarray, generated: np.ndarray, mask: np.ndarray, feather: int) -> np.ndarray:
    """Paste ``face`` over ``generated`` (both ``(H, W, 3) uint8``): every pixel with
    ``mask > 0.5`` (``(H, W)`` in [0, 1]) is the face's, bit for bit. Outside, within ``feather``
    px of the mask, the face's nearest edge colour is blended into the hallucination with a weight
    falling linearly to 0, so the seam is soft without touching a face pixel."""
    inside = mask > 0.5
    out = paste_face(face, generated, inside)
    if feather <= 0 or not inside.any() or inside.all():
        return out
    outside = (~inside).astype(np.uint8)
    dist, labels = cv2.distanceTransformWithLabels(outside, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(inside)
    lookup = np.zeros(labels.max() + 1, np.int64)
    lookup[labels[ys, xs]] = np.arange(len(ys))
    band = (~inside) & (dist <= feather)
    nearest = lookup[labels[band]]
    w = (1.0 - dist[band] / (feather + 1.0))[:, None]
    edge = face[ys[nearest], xs[nearest]].astype(np.float32)
    out[band] = (w * edge + (1 - w) * generated[band].astype(np.float32) + 0.5).astype(np.uint8)
    return out
