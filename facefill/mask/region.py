"""The face region of an aligned photo, from its 68 landmarks, and the masked image.

The region is the convex hull of all 68 landmarks (jaw line below, eyebrows above: brows to chin,
cheek to cheek, as in the paper). :func:`face_mask` rasterises it, optionally grown (or eroded)
and feathered. The same function makes masks on the fly during training; :func:`mask_face` masks a
photo as ``facefill mask`` writes it (``hallucinate`` masks photos on the fly with it). The folder
driver is :func:`facefill.pipeline.mask.mask_folder`; applying a mask to pixels is in
:mod:`facefill.data.tensors`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from facefill.align.landmarks import LandmarkBackend
from facefill.align.sidecar import read_sidecar
from facefill.config import MaskConfig
from facefill.data.tensors import apply_mask_uint8
from facefill.errors import NoFaceError


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


def face_region(image: np.ndarray, landmarks: np.ndarray, cfg: MaskConfig = MaskConfig()) -> np.ndarray:
    """The face region ``cfg`` keeps of an aligned photo ``(S, S, 3) uint8``: ``(S, S) float32``
    in [0, 1], soft over ``cfg.feather`` px: the grown hull (:func:`face_mask`), or with
    ``cfg.region == "refined"`` the grown hull without the background, hair or hat in its outer
    band (:func:`facefill.mask.refine.refine_face_mask`)."""
    if cfg.region == "hull":
        return face_mask(landmarks, image.shape[:2], cfg.grow, cfg.feather)
    from facefill.mask.refine import refine_face_mask

    hull = face_mask(landmarks, image.shape[:2], cfg.grow, 0)
    out = refine_face_mask(image, hull, landmarks).astype(np.float32) / 255.0
    if cfg.feather > 0:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=cfg.feather / 2.0)
    return out


def mask_face(image: np.ndarray, landmarks: np.ndarray, cfg: MaskConfig = MaskConfig()) -> tuple[np.ndarray, np.ndarray]:
    """One aligned photo ``(S, S, 3) uint8`` masked as ``mask`` writes it: the masked photo
    (context filled with ``cfg.fill``, the edge feathered over ``cfg.feather`` px) and the binary
    mask ``(S, S) uint8`` (255 = face: :func:`face_region`, where it is >= 0.5)."""
    soft = face_region(image, landmarks, cfg)
    return apply_mask_uint8(image, soft, cfg.fill), ((soft >= 0.5) * 255).astype(np.uint8)


def mask_settings(cfg: MaskConfig) -> dict:
    """The ``"mask"`` entry ``mask`` adds to a sidecar (``region`` only when not the hull, so the
    hull's entry reads as before)."""
    entry = {"grow": cfg.grow, "feather": cfg.feather, "fill": list(cfg.fill)}
    return entry if cfg.region == "hull" else {**entry, "region": cfg.region}


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


def check_aligned(path: Path, image: np.ndarray, landmarks: np.ndarray, side: dict | None,
                  eyes: tuple[tuple[float, float], tuple[float, float]] = ((0.40, 0.45), (0.60, 0.45)),
                  tolerance: float = 0.08, size: int | None = None) -> None:
    """Refuse a photo that 'facefill align' did not make: with a sidecar, the image must have the
    sidecar's size; without one, it must be ``size`` x ``size`` (align's output size; None: any
    square) with its eye centres within ``tolerance`` (a fraction of the side) of the aligned eye
    positions ``eyes`` (fractions of the side) and as far apart as alignment puts them."""
    from facefill.align.landmarks import eye_centres
    from facefill.errors import ImageError

    h, w = image.shape[:2]
    fix = "run 'facefill align RAW_DIR ALIGNED_DIR' first and mask ALIGNED_DIR"
    if side is not None and "size" in side:
        if (h, w) != (side["size"], side["size"]):
            raise ImageError(f"{path}: {w}x{h}, but its alignment sidecar says {side['size']}x{side['size']}; {fix}")
        return
    if h != w:
        raise ImageError(f"{path}: {w}x{h} is not an aligned face (not square, no sidecar); {fix}")
    if size is not None and w != size:
        raise ImageError(f"{path}: {w}x{h} is not an aligned face (no sidecar, and aligned crops are "
                         f"{size}x{size}: align.size); {fix}")
    found = eye_centres(np.asarray(landmarks, np.float64)) / w
    target = np.asarray(eyes, np.float64)
    spread = abs(np.linalg.norm(found[1] - found[0]) - np.linalg.norm(target[1] - target[0]))
    err = max(np.abs(found - target).max(), spread)
    if err > tolerance:
        raise ImageError(f"{path}: not an aligned face (its eyes are {err * 100:.0f}% of the width away from the "
                         f"aligned positions, and it has no sidecar); {fix}")
