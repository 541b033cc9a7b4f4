"""The face region of an aligned photo, from its 68 landmarks, and the masked image.

The region is the convex hull of all 68 landmarks (jaw line below, eyebrows above: brows to chin,
cheek to cheek, as in the paper). :func:`face_mask` rasterises it, optionally grown (or eroded)
and feathered. The same function makes masks on the fly during training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from facefill.align.core import read_sidecar
from facefill.align.landmarks import LandmarkBackend, lazy_backend
from facefill.config import MaskConfig
from facefill.data.batch import BatchReport, Progress, run_batch
from facefill.data.io import MASK_SUFFIX, list_images, mirror_path, read_image, write_image
from facefill.errors import FacefillError, NoFaceError


def face_polygon(landmarks: np.ndarray) -> np.ndarray:
    """(68, 2) landmarks -> (K, 2) convex-hull polygon of the face region (float pixels)."""
    pts = np.asarray(landmarks, dtype=np.float32).reshape(-1, 2)
    return cv2.convexHull(pts).reshape(-1, 2)


def face_mask(landmarks: np.ndarray, size: int | tuple[int, int], grow: int = 0, feather: int = 0) -> np.ndarray:
    """Face-region mask ``(H, W) float32`` in [0, 1] (1 = face).

    Args:
        landmarks: (68, 2) pixel coordinates in the image the mask is for.
        size: ``S`` for a square image or ``(H, W)``.
        grow: pixels to dilate (> 0) or erode (< 0) the hull by.
        feather: width in pixels of a soft edge (Gaussian blur); 0 = hard edge.
    """
    h, w = (size, size) if isinstance(size, int) else size
    mask = np.zeros((h, w), np.uint8)
    poly = np.round(face_polygon(landmarks) * 16).astype(np.int32)  # 4 fractional bits
    cv2.fillConvexPoly(mask, poly, 255, lineType=cv2.LINE_8, shift=4)  # hard edge: exactly binary
    if grow:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(grow) + 1, 2 * abs(grow) + 1))
        mask = cv2.dilate(mask, k) if grow > 0 else cv2.erode(mask, k)
    out = mask.astype(np.float32) / 255.0
    if feather > 0:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=feather / 2.0)
    return out


def apply_mask(image: np.ndarray, mask: np.ndarray, fill: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """``(H, W, 3) uint8`` image, ``(H, W)`` mask in [0, 1] -> masked ``uint8``, outside = ``fill``."""
    m = mask[..., None].astype(np.float32)
    out = image.astype(np.float32) * m + np.asarray(fill, np.float32) * (1 - m)
    return (out + 0.5).clip(0, 255).astype(np.uint8)


def apply_mask_tensor(images: torch.Tensor, masks: torch.Tensor, fill: float | torch.Tensor = -1.0) -> torch.Tensor:
    """Batched: ``(B, 3, H, W)`` in [-1, 1], masks ``(B, 1, H, W)`` in [0, 1] -> masked images."""
    return images * masks + fill * (1 - masks)


def landmarks_for(path: Path, image: np.ndarray, backend: Callable[[], LandmarkBackend]) -> np.ndarray:
    """The (68, 2) landmarks of an aligned image: from its alignment sidecar, else detected with
    ``backend()`` (largest face). NoFaceError when neither gives any."""
    side = read_sidecar(path)
    if side is not None and "landmarks" in side:
        return np.asarray(side["landmarks"], dtype=np.float64)
    faces = backend().detect(image)
    if not faces:
        raise NoFaceError(f"{path}: no alignment sidecar (.json) and no face found when re-detecting; "
                          "run 'facefill align' on the raw photo first")
    return max(faces, key=lambda f: f.area).landmarks


def mask_folder(
    src: Path,
    dst: Path,
    cfg: MaskConfig = MaskConfig(),
    backend: str = "dlib",
    overwrite: bool = False,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> BatchReport:
    """Mask every aligned image under ``src`` into ``dst``: ``<name>.png`` (masked image),
    ``<name>.mask.png`` (binary mask, 255 = face) and ``<name>.json`` (the sidecar, landmarks
    kept). Landmarks come from the alignment sidecar, or are re-detected when there is none."""
    src, dst = Path(src), Path(dst)
    inputs = list_images(src)
    if not inputs:
        raise FacefillError(f"no images found in {src}; point mask at the output folder of 'facefill align'")
    engine = lazy_backend(backend)

    def work(path: Path) -> list[Path] | None:
        out = mirror_path(path, src, dst)
        mask_out = out.with_name(out.stem + MASK_SUFFIX)
        if not overwrite and out.exists() and mask_out.exists():
            return None
        image = read_image(path)
        landmarks = landmarks_for(path, image, engine)
        mask = face_mask(landmarks, image.shape[:2], cfg.grow, cfg.feather)
        write_image(out, apply_mask(image, mask, cfg.fill))
        write_image(mask_out, ((mask >= 0.5) * 255).astype(np.uint8))
        side = read_sidecar(path) or {"source": path.name, "landmarks": np.round(landmarks, 3).tolist()}
        side["mask"] = {"grow": cfg.grow, "feather": cfg.feather, "fill": list(cfg.fill)}
        out.with_suffix(".json").write_text(json.dumps(side))
        return [out, mask_out]

    return run_batch(inputs, work, progress, should_stop)
