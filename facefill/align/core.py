"""Align one photo: detect faces, warp each so its eye centres land on fixed positions.

:func:`align_image` returns, per face, the ``(size, size, 3) uint8`` crop, its 68 landmarks in
aligned pixels, the source->aligned matrix and a validity mask (which output pixels came from
inside the photo). The folder driver is :mod:`facefill.pipeline.align`; the files it writes
are described in :mod:`facefill.align.sidecar`.

**Large photos.** A photo whose long side exceeds :data:`DETECT_MAX_SIDE` is searched for faces
on a copy shrunk to that size (area averaging), and the landmarks are scaled back; each crop is
then cut from the full photo: only the region the output square covers is read, shrunk by the
integer factor the warp needs (area averaging, as :func:`facefill.align.warp.warp_images` does),
and warped. A 10000x10000 photo then costs seconds and a few hundred MB instead of minutes and
gigabytes. Faces smaller than about 1/40 of the long side can be missed; pass
``detect_max=0`` to search the full photo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from facefill.data.tensors import from_uint8, to_uint8
from facefill.align.landmarks import Face, LandmarkBackend, eye_centres
from facefill.data.io import image_size, read_image

#: Photos with a longer side than this are searched for faces on a shrunk copy (see above).
DETECT_MAX_SIDE = 2000
from facefill.align.sidecar import SIDECAR_VERSION
from facefill.align.warp import similarity_from_eyes, transform_points, warp_images
from facefill.config import AlignConfig
from facefill.errors import FacefillError, NoFaceError


@dataclass(frozen=True)
class AlignedFace:
    image: np.ndarray  # (size, size, 3) uint8 RGB
    landmarks: np.ndarray  # (68, 2) in aligned pixels
    matrix: np.ndarray  # (2, 3) source -> aligned
    face: Face  # detection in source pixels
    valid: np.ndarray | None = None  # (size, size) bool: True where the pixel came from the photo
    photo_size: tuple[int, int] | None = None  # (height, width) of the photo the matrix maps from

    def sidecar(self, source: str, backend: str, cfg: AlignConfig) -> dict:
        return {
            "version": SIDECAR_VERSION,
            "source": source,
            "backend": backend,
            "size": cfg.size,
            "left_eye": list(cfg.left_eye),
            "right_eye": list(cfg.right_eye),
            "score": self.face.score,
            "box": [float(v) for v in self.face.box],
            "matrix": self.matrix.tolist(),
            "landmarks": np.round(self.landmarks, 3).tolist(),
            "valid_fraction": round(float(self.valid.mean()), 4) if self.valid is not None else 1.0,
            **({"photo_size": [int(v) for v in self.photo_size]} if self.photo_size is not None else {}),
        }


def align_image(
    image: np.ndarray,
    backend: LandmarkBackend,
    cfg: AlignConfig = AlignConfig(),
    faces: str = "largest",
    device: str | torch.device = "cpu",
    detect_max: int = DETECT_MAX_SIDE,
) -> list[AlignedFace]:
    """Detect faces in ``(H, W, 3) uint8 RGB`` and return aligned crops (largest first).

    ``faces``: ``largest`` (one crop) or ``all``. ``detect_max``: search a photo whose long side
    is longer than this on a copy shrunk to it (0: always the full photo). Raises NoFaceError
    when nothing is found.
    """
    h, w = image.shape[:2]
    shrink = detect_max / max(h, w) if detect_max and max(h, w) > detect_max else 1.0
    if shrink < 1.0:
        small = cv2.resize(image, (max(1, round(w * shrink)), max(1, round(h * shrink))), interpolation=cv2.INTER_AREA)
        sx, sy = w / small.shape[1], h / small.shape[0]
        # pixel centres: x_full = (x_small + 0.5) * sx - 0.5
        found = [Face((f.landmarks + 0.5) * (sx, sy) - 0.5,
                      (f.box[0] * sx, f.box[1] * sy, f.box[2] * sx, f.box[3] * sy), f.score)
                 for f in backend.detect(small)]
    else:
        found = backend.detect(image)
    if not found:
        raise NoFaceError("no face found")
    found = sorted(found, key=lambda f: -f.area)
    if faces == "largest":
        found = found[:1]
    elif faces != "all":
        raise FacefillError(f"faces must be 'largest' or 'all', got {faces!r}")
    eyes = torch.from_numpy(np.stack([eye_centres(f.landmarks) for f in found]))
    matrices = similarity_from_eyes(eyes, cfg.size, cfg.left_eye, cfg.right_eye)
    if shrink < 1.0:
        crops, valid = zip(*(_warp_region(image, m, cfg.size, device) for m in matrices.numpy()))
        return [AlignedFace(c, transform_points(f.landmarks, m), m, f, ok, (h, w))
                for c, ok, m, f in zip(crops, valid, matrices.numpy(), found)]
    src = from_uint8(image, device, signed=False)
    src = torch.cat([src, torch.ones_like(src[:, :1])], dim=1)  # 4th channel: 1 inside the photo
    src = src.expand(len(found), -1, -1, -1)
    out = warp_images(src, matrices.to(device), cfg.size)
    crops = to_uint8(out[:, :3], signed=False)
    valid = (out[:, 3] > 0.999).cpu().numpy()
    result = []
    for crop, ok, m, face in zip(crops, valid, matrices.numpy(), found):
        result.append(AlignedFace(crop, transform_points(face.landmarks, m), m, face, ok, (h, w)))
    return result


def _to_full_resolution(face: AlignedFace, k: int, dims: tuple[int, int]) -> AlignedFace:
    """``face`` found and cut in a photo decoded at 1/``k`` size, with its matrix, landmarks and
    box in the full photo's pixels (reduced pixel ``x_r = (x + 0.5) / k - 0.5``). ``dims``: the
    full photo's ``(height, width)`` as stored; swapped when EXIF turned the decode."""
    m = face.matrix
    lin = m[:, :2] / k
    shift = m[:, 2] + m[:, :2] @ np.full(2, 0.5 / k - 0.5)
    f = face.face
    full = Face((f.landmarks + 0.5) * k - 0.5, tuple(float(v) * k for v in f.box), f.score)
    stored = (math.ceil(dims[0] / k), math.ceil(dims[1] / k))
    photo = tuple(dims) if face.photo_size is None or tuple(face.photo_size) == stored else tuple(dims[::-1])
    return AlignedFace(face.image, face.landmarks, np.concatenate([lin, shift[:, None]], 1), full, face.valid, photo)


def align_file(path, backend: LandmarkBackend, cfg: AlignConfig = AlignConfig(), faces: str = "largest",
               device: str | torch.device = "cpu", detect_max: int = DETECT_MAX_SIDE) -> list[AlignedFace]:
    """:func:`align_image` of the photo file ``path``. A JPEG at least twice as large as
    ``detect_max`` is decoded at 1/2, 1/4 or 1/8 size (its long side still >= ``detect_max``),
    which takes a fraction of the time and memory of a full decode. Its crops are cut from that
    decode when none of them magnifies it (the warp would shrink the full photo at least as much);
    otherwise the photo is decoded whole. Sidecar matrices and landmarks are always in the full
    photo's pixels."""
    k = 1
    dims = image_size(path) if detect_max and Path(path).suffix.lower() in (".jpg", ".jpeg") else None
    if dims is not None:
        k = next((c for c in (8, 4, 2) if max(dims) / c >= detect_max), 1)
    if k > 1:
        found = align_image(read_image(path, reduce=k), backend, cfg, faces, device, detect_max)
        if all(math.sqrt(abs(np.linalg.det(f.matrix[:, :2]))) <= 1.0 for f in found):
            return [_to_full_resolution(f, k, dims) for f in found]
    return align_image(read_image(path), backend, cfg, faces, device, detect_max)


def _warp_region(image: np.ndarray, matrix: np.ndarray, size: int, device) -> tuple[np.ndarray, np.ndarray]:
    """One aligned crop of a large photo: ``(size, size, 3) uint8`` and its ``(size, size)`` bool
    validity, from only the part of ``image`` that the output square covers, shrunk first by the
    integer factor ``r = floor(1 / scale)`` with area averaging (the shrink ``warp_images``
    would apply to the whole photo)."""
    m = np.asarray(matrix, np.float64)
    scale = math.sqrt(abs(np.linalg.det(m[:, :2])))
    r = max(1, int(math.floor(1.0 / scale))) if scale > 0 else 1
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
    corners = np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]], np.float64)
    src = corners @ inv[:, :2].T + inv[:, 2]
    h, w = image.shape[:2]
    margin = 2 * r + 2
    x0 = max(0, int(math.floor(src[:, 0].min())) - margin) // r * r
    y0 = max(0, int(math.floor(src[:, 1].min())) - margin) // r * r
    x1 = min(w, int(math.ceil(src[:, 0].max())) + margin)
    y1 = min(h, int(math.ceil(src[:, 1].max())) + margin)
    if x1 <= x0 or y1 <= y0:  # the square lies wholly outside the photo
        return np.zeros((size, size, 3), np.uint8), np.zeros((size, size), bool)
    region = image[y0:y1, x0:x1]
    if r >= 2:
        hh, ww = region.shape[0] // r, region.shape[1] // r
        region = cv2.resize(region[: hh * r, : ww * r], (ww, hh), interpolation=cv2.INTER_AREA)
    # region pixel x' sits at photo x = x0 + r x' + (r - 1) / 2
    lin = m[:, :2] * r
    shift = m[:, 2] + m[:, :2] @ np.array([x0 + (r - 1) / 2, y0 + (r - 1) / 2])
    local = torch.from_numpy(np.concatenate([lin, shift[:, None]], 1))[None]
    src_t = from_uint8(np.ascontiguousarray(region), device, signed=False)
    src_t = torch.cat([src_t, torch.ones_like(src_t[:, :1])], dim=1)
    out = warp_images(src_t, local.to(device), size)
    return to_uint8(out[:, :3], signed=False)[0], (out[0, 3] > 0.999).cpu().numpy()
