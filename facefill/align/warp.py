"""Eye-centre similarity alignment, batched on kornia (runs on GPU as well as CPU).

Pixel convention: integer coordinates are pixel centres (as in OpenCV), so a matrix ``M`` here
can be handed to ``cv2.warpAffine`` unchanged and gives the same image.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from kornia.geometry.transform import warp_affine


def similarity_from_eyes(
    eyes: torch.Tensor, size: int, left_eye: tuple[float, float], right_eye: tuple[float, float]
) -> torch.Tensor:
    """Rotation + uniform scale + translation that sends the eye centres to their targets.

    Args:
        eyes: ``(B, 2, 2)`` source eye centres ``[[x, y] image-left, [x, y] image-right]``, pixels.
        size: output side in pixels.
        left_eye, right_eye: target positions as fractions of ``size`` (x, y).
    Returns:
        ``(B, 2, 3)`` float64 matrices mapping source pixels to output pixels.
    """
    eyes = eyes.to(torch.float64)
    s0 = torch.complex(eyes[:, 0, 0], eyes[:, 0, 1])
    s1 = torch.complex(eyes[:, 1, 0], eyes[:, 1, 1])
    t0 = complex((left_eye[0] * size), (left_eye[1] * size))
    t1 = complex((right_eye[0] * size), (right_eye[1] * size))
    if torch.any((s1 - s0).abs() < 1e-6):
        raise ValueError("the two eye centres coincide; cannot align")
    m = (t1 - t0) / (s1 - s0)
    c = t0 - m * s0
    row0 = torch.stack([m.real, -m.imag, c.real], dim=-1)
    row1 = torch.stack([m.imag, m.real, c.imag], dim=-1)
    return torch.stack([row0, row1], dim=1)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``(N, 2)`` points through a ``(2, 3)`` affine matrix."""
    return points @ matrix[:, :2].T + matrix[:, 2]


def warp_images(
    images: torch.Tensor, matrices: torch.Tensor, size: int, antialias: bool = True
) -> torch.Tensor:
    """Warp ``(B, C, H, W)`` float images with ``(B, 2, 3)`` source->output matrices to
    ``(B, C, size, size)``; bilinear, zeros outside the source.

    With ``antialias``, a source that shrinks by 2x or more is first area-downsampled by the
    integer factor r = floor(1/scale) (and the matrices adjusted), so large faces do not alias.
    """
    m = matrices.to(torch.float64)
    if antialias:
        scale = torch.sqrt(torch.abs(torch.det(m[:, :, :2]))).min().item()
        r = int(math.floor(1.0 / scale)) if scale > 0 else 1
        if r >= 2:
            h, w = images.shape[-2:]
            hh, ww = h // r, w // r
            images = F.avg_pool2d(images[..., : hh * r, : ww * r], r)
            # source pixel x = r * x' + (r - 1) / 2
            lin = m[:, :, :2] * r
            shift = m[:, :, 2] + m[:, :, :2].sum(-1) * (r - 1) / 2
            m = torch.cat([lin, shift[..., None]], dim=-1)
    return warp_affine(images, m.to(images.dtype), dsize=(size, size), mode="bilinear",
                       padding_mode="zeros", align_corners=True)
