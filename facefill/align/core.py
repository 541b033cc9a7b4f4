"""Align one photo: detect faces, warp each so its eye centres land on fixed positions.

:func:`align_image` returns, per face, the ``(size, size, 3) uint8`` crop, its 68 landmarks in
aligned pixels, the source->aligned matrix and a validity mask (which output pixels came from
inside the photo). The folder driver is :mod:`facefill.pipeline.align`; the files it writes
are described in :mod:`facefill.align.sidecar`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from facefill.data.tensors import from_uint8, to_uint8
from facefill.align.landmarks import Face, LandmarkBackend, eye_centres
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
        }


def align_image(
    image: np.ndarray,
    backend: LandmarkBackend,
    cfg: AlignConfig = AlignConfig(),
    faces: str = "largest",
    device: str | torch.device = "cpu",
) -> list[AlignedFace]:
    """Detect faces in ``(H, W, 3) uint8 RGB`` and return aligned crops (largest first).

    ``faces``: ``largest`` (one crop) or ``all``. Raises NoFaceError when nothing is found.
    """
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
    src = from_uint8(image, device, signed=False)
    src = torch.cat([src, torch.ones_like(src[:, :1])], dim=1)  # 4th channel: 1 inside the photo
    src = src.expand(len(found), -1, -1, -1)
    out = warp_images(src, matrices.to(device), cfg.size)
    crops = to_uint8(out[:, :3], signed=False)
    valid = (out[:, 3] > 0.999).cpu().numpy()
    result = []
    for crop, ok, m, face in zip(crops, valid, matrices.numpy(), found):
        result.append(AlignedFace(crop, transform_points(face.landmarks, m), m, face, ok))
    return result
