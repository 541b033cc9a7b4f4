"""Putting a person in front of a new background: the math of ``replace-bg``.

:func:`fit_background` sizes a background to an image; :func:`composite` blends a batch of
same-sized images over their backgrounds with :func:`facefill.blend.laplacian_blend`, then
(:func:`keep_inside`) puts the person's own pixels back away from the seam, because the pyramid's
coarse bands would tint the person with the background's colours.
"""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np
import torch

from facefill.blend.laplacian import laplacian_blend
from facefill.data.tensors import from_uint8, masks_from_numpy, to_uint8


def fit_background(bg: np.ndarray, h: int, w: int) -> np.ndarray:
    """Resize ``bg`` ``(H', W', 3) uint8`` to cover ``h x w`` (keeping its aspect ratio) and
    centre-crop it: ``(h, w, 3) uint8``."""
    bh, bw = bg.shape[:2]
    s = max(h / bh, w / bw)
    nh, nw = max(h, round(bh * s)), max(w, round(bw * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    r = cv2.resize(bg, (nw, nh), interpolation=interp)
    y, x = (nh - h) // 2, (nw - w) // 2
    return r[y:y + h, x:x + w]


def keep_inside(image: np.ndarray, blended: np.ndarray, mask: np.ndarray, keep: int) -> np.ndarray:
    """``image`` where the foreground ``mask`` ``(H, W)`` in [0, 1] is more than ``keep`` px from
    its edge, ``blended`` outside it, and a linear ramp across those ``keep`` px (weight
    ``min(1, d / (keep + 1))``); all images ``(H, W, 3) uint8``."""
    d = cv2.distanceTransform((mask > 0.5).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    w = np.minimum(1.0, d / (keep + 1))[..., None]  # keep=0: 1 inside (d >= 1), 0 outside
    out = (image.astype(np.float32) * w + blended.astype(np.float32) * (1 - w) + 0.5).astype(np.uint8)
    exact = w[..., 0] >= 1.0
    out[exact] = image[exact]
    return out


def max_levels(h: int, w: int) -> int:
    """The most pyramid levels an ``h x w`` image supports (the coarsest level >= 1 px)."""
    return int(math.floor(math.log2(max(1, min(h, w))))) + 1


def composite(images: Sequence[np.ndarray], backgrounds: Sequence[np.ndarray], masks: Sequence[np.ndarray],
              levels: int = 5, feather: float = 1.0, keep: int = 4,
              device: str | torch.device = "cpu") -> list[np.ndarray]:
    """Each image ``(H, W, 3) uint8`` over its background (same size) where its foreground mask
    ``(H, W) float32`` in [0, 1] is 1: one batched Laplacian blend on ``device`` (``levels``
    bands, mask blurred with sigma ``feather`` px), then :func:`keep_inside` with ``keep``.
    All images share one size. Returns ``(H, W, 3) uint8`` images."""
    fg = from_uint8(np.stack(images), device, signed=False)  # the blend is linear: any scale gives the same
    bg = from_uint8(np.stack(backgrounds), device, signed=False)
    blended = to_uint8(laplacian_blend(fg, bg, masks_from_numpy(list(masks), device), levels, feather), signed=False)
    return [keep_inside(i, b, mk, keep) for i, b, mk in zip(images, blended, masks)]
