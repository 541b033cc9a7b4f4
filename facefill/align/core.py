"""Align photos: detect faces, warp each so its eye centres land on fixed positions.

Outputs ``(size, size, 3) uint8`` crops and, per crop, a JSON sidecar with the landmarks in
aligned coordinates, the source->aligned matrix and the detector score.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from facefill.align.landmarks import Face, LandmarkBackend, eye_centres, get_backend
from facefill.align.warp import similarity_from_eyes, transform_points, warp_images
from facefill.config import AlignConfig
from facefill.data.batch import BatchReport, Progress, run_batch
from facefill.data.io import list_images, mirror_path, read_image, write_image
from facefill.errors import FacefillError, NoFaceError

SIDECAR_VERSION = 1


@dataclass(frozen=True)
class AlignedFace:
    image: np.ndarray  # (size, size, 3) uint8 RGB
    landmarks: np.ndarray  # (68, 2) in aligned pixels
    matrix: np.ndarray  # (2, 3) source -> aligned
    face: Face  # detection in source pixels

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
    src = torch.from_numpy(image).to(device).permute(2, 0, 1).float().div(255)
    src = src.unsqueeze(0).expand(len(found), -1, -1, -1)
    out = warp_images(src, matrices.to(device), cfg.size)
    out = (out.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    result = []
    for crop, m, face in zip(out, matrices.numpy(), found):
        result.append(AlignedFace(crop, transform_points(face.landmarks, m), m, face))
    return result


def sidecar_path(image_path: Path) -> Path:
    return image_path.with_suffix(".json")


def align_folder(
    src: Path,
    dst: Path,
    backend: str | LandmarkBackend = "dlib",
    cfg: AlignConfig = AlignConfig(),
    faces: str = "largest",
    overwrite: bool = False,
    device: str = "cpu",
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> BatchReport:
    """Align every image under ``src`` into ``dst`` (sub-folders mirrored, ``.png`` + ``.json``).

    With ``faces="all"`` the crops of one photo are named ``<stem>_0.png``, ``<stem>_1.png``...
    Existing outputs are kept unless ``overwrite`` (so an interrupted run resumes).
    """
    src, dst = Path(src), Path(dst)
    inputs = list_images(src)
    if not inputs:
        raise FacefillError(f"no images (jpg, png, webp, bmp, tif) found in {src}")
    engine = get_backend(backend) if isinstance(backend, str) else backend

    def work(path: Path) -> list[Path] | None:
        base = mirror_path(path, src, dst)
        first = base if faces == "largest" else base.with_name(f"{base.stem}_0.png")
        if not overwrite and first.exists() and sidecar_path(first).exists():
            return None
        try:
            aligned = align_image(read_image(path), engine, cfg, faces, device)
        except NoFaceError:
            raise NoFaceError(f"{path}: no face found; it needs a visible frontal face "
                              "(try --landmarks fan, or --upsample 2 for small faces)") from None
        written = []
        for i, face in enumerate(aligned):
            out = base if faces == "largest" else base.with_name(f"{base.stem}_{i}.png")
            write_image(out, face.image)
            rel = str(path.relative_to(src)) if src.is_dir() else path.name
            sidecar_path(out).write_text(json.dumps(face.sidecar(rel, engine.name, cfg)))
            written.append(out)
        return written

    return run_batch(inputs, work, progress, should_stop)


def read_sidecar(image_path: Path) -> dict | None:
    """The alignment sidecar next to an aligned image, or None."""
    path = sidecar_path(Path(image_path))
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
