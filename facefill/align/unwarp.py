"""Put aligned faces back into their photo: the inverse of the eye-centre warp (``facefill paste``).

Each face is an aligned crop ``(S, S, 3) uint8`` (a ``hallucinate`` output), its ``(2, 3)``
source->aligned matrix ``M`` (the sidecar's), its face mask and its validity map (where the crop
came from inside the photo). :func:`paste_faces` warps every crop back at the photo's resolution
(``cv2.warpAffine`` with ``WARP_INVERSE_MAP``: photo pixel ``p`` reads the crop at ``M p``,
bilinear; a crop with 2x or more pixels than its footprint is area-shrunk first) and composites
it over the photo with premultiplied alpha:

* alpha is 1 inside the crop's valid area, falling linearly to 0 over ``feather`` pixels of a
  128 px crop (``feather * S / 128`` crop pixels: the same share of the face at every size)
  towards the crop's edge and towards padding (where the crop left the photo), so the new
  context meets the photo with a soft edge and padding is never pasted;
* outside every crop's footprint the photo is untouched (alpha is exactly 0 there);
* inside every face mask warped back (bilinear, > 0.5) the photo's own pixels are kept, bit for
  bit, at full resolution, also where another face's context would cover them.

Pixel convention as :mod:`facefill.align.warp`: integer coordinates are pixel centres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Face:
    """One aligned crop to put back: ``image`` ``(S, S, 3) uint8``, ``matrix`` ``(2, 3)``
    photo->crop, ``mask`` ``(S, S)`` in {0, 1} (1 = the face, kept from the photo), ``valid``
    ``(S, S)`` in {0, 1} (0 = padding) or None (all valid)."""

    image: np.ndarray
    matrix: np.ndarray
    mask: np.ndarray
    valid: np.ndarray | None = None


def crop_validity(matrix: np.ndarray, size: int, photo_hw: tuple[int, int]) -> np.ndarray:
    """``(size, size) bool``: the crop pixels whose source point lies inside the photo
    (``[0, W-1] x [0, H-1]``), i.e. the pixels alignment did not pad."""
    inv = np.linalg.inv(np.vstack([np.asarray(matrix, np.float64), [0, 0, 1]]))[:2]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    h, w = photo_hw
    eps = 1e-6
    return (sx >= -eps) & (sx <= w - 1 + eps) & (sy >= -eps) & (sy <= h - 1 + eps)


def edge_alpha(valid: np.ndarray, feather: float) -> np.ndarray:
    """``(S, S) float32`` in [0, 1]: 0 on invalid pixels, rising linearly over ``feather`` px
    from the crop's border and from invalid pixels (``feather`` 0: 1 on every valid pixel)."""
    padded = np.pad(valid.astype(np.uint8), 1)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    return np.clip(dist / (feather + 1.0), 0.0, 1.0).astype(np.float32) * (valid > 0)


def footprint_box(matrix: np.ndarray, size: int, photo_hw: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)``: the photo pixels the crop's square covers (with a 2 px margin),
    clipped to the photo; None when it lies outside."""
    inv = np.linalg.inv(np.vstack([np.asarray(matrix, np.float64), [0, 0, 1]]))[:2]
    corners = np.array([[-1, -1], [size, -1], [-1, size], [size, size]], np.float64)
    src = corners @ inv[:, :2].T + inv[:, 2]
    h, w = photo_hw
    x0, y0 = max(0, int(math.floor(src[:, 0].min())) - 2), max(0, int(math.floor(src[:, 1].min())) - 2)
    x1, y1 = min(w, int(math.ceil(src[:, 0].max())) + 3), min(h, int(math.ceil(src[:, 1].max())) + 3)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _shrink(planes: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A crop with r >= 2 of its pixels per photo pixel, area-averaged by r (the matrix adjusted:
    shrunk pixel ``x'`` sits at crop ``x = r x' + (r - 1) / 2``), so warping back does not alias."""
    m = np.asarray(matrix, np.float64)
    scale = math.sqrt(abs(np.linalg.det(m[:, :2])))
    r = int(math.floor(scale)) if scale >= 2 else 1
    if r < 2:
        return planes, m
    s = planes.shape[0] // r
    small = cv2.resize(planes[: s * r, : s * r], (s, s), interpolation=cv2.INTER_AREA)
    return small.reshape(s, s, -1), np.concatenate([m[:, :2] / r, (m[:, 2:] - (r - 1) / 2) / r], 1)


def paste_faces(photo: np.ndarray, faces: list[Face], feather: float = 8.0) -> np.ndarray:
    """``photo`` ``(H, W, 3) uint8`` with every face's crop put back (see the module docstring);
    ``feather``: the soft edge's width in pixels of a 128 px crop (scaled with each crop's size S,
    so a 256 px crop's edge covers as much of the photo). Returns a new ``(H, W, 3) uint8`` array."""
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise ValueError(f"photo must be (H, W, 3) uint8, got {photo.shape} {photo.dtype}")
    h, w = photo.shape[:2]
    out = photo.copy()
    keep: list[tuple[tuple[int, int, int, int], np.ndarray]] = []
    for face in faces:
        size = face.image.shape[0]
        if face.image.shape != (size, size, 3) or face.mask.shape != (size, size):
            raise ValueError(f"face image must be (S, S, 3) with an (S, S) mask, got {face.image.shape}, {face.mask.shape}")
        box = footprint_box(face.matrix, size, (h, w))
        if box is None:
            continue
        valid = crop_validity(face.matrix, size, (h, w))
        if face.valid is not None:
            valid &= face.valid > 0.5
        alpha = edge_alpha(valid, feather * size / 128)
        planes = np.concatenate([face.image.astype(np.float32) * alpha[..., None], alpha[..., None],
                                 (face.mask > 0.5).astype(np.float32)[..., None]], 2)
        planes, m = _shrink(planes, face.matrix)
        x0, y0, x1, y1 = box
        local = np.concatenate([m[:, :2], (m[:, 2] + m[:, :2] @ np.array([x0, y0], np.float64))[:, None]], 1)
        back = np.stack([cv2.warpAffine(np.ascontiguousarray(planes[..., c]), local, (x1 - x0, y1 - y0),
                                        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT,
                                        borderValue=0) for c in range(planes.shape[2])], -1)
        region = out[y0:y1, x0:x1].astype(np.float32)
        a = np.clip(back[..., 3:4], 0.0, 1.0)
        mixed = back[..., :3] + (1.0 - a) * region
        out[y0:y1, x0:x1] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
        keep.append((box, back[..., 4] > 0.5))
    for (x0, y0, x1, y1), inside in keep:  # the photo's own face pixels, whatever was pasted over them
        out[y0:y1, x0:x1][inside] = photo[y0:y1, x0:x1][inside]
    return out
