"""Paste the real face back over a hallucination, with a seam feathered outside the mask."""

from __future__ import annotations

import cv2
import numpy as np


def compose(face: np.ndarray, generated: np.ndarray, mask: np.ndarray, feather: int) -> np.ndarray:
    """Paste ``face`` over ``generated`` (both ``(H, W, 3) uint8``): every pixel with
    ``mask > 0.5`` (``(H, W)`` in [0, 1]) is the face's, bit for bit. Outside, within ``feather``
    px of the mask, the face's nearest edge colour is blended into the hallucination with a weight
    falling linearly to 0, so the seam is soft without touching a face pixel."""
    inside = mask > 0.5
    out = generated.copy()
    out[inside] = face[inside]
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
