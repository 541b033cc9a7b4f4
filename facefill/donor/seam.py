"""The seam correction: the step between the query's face and a donor's context, removed.

The difference between query and donor along the inside of the mask edge is spread smoothly
(normalised Gaussian convolution) and faded out over ``band`` pixels outside the mask: a membrane
correction that removes the brightness step at the forehead and the outline along the jaw without
touching anything farther out (no halos). Face pixels are never changed.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from kornia.filters import gaussian_blur2d


def distance_outside(masks: np.ndarray) -> np.ndarray:
    """``(B, S, S)`` face masks -> ``(B, S, S) float32`` Euclidean distance (pixels) of each
    context pixel to the nearest face pixel (0 inside the face). OpenCV, on the CPU."""
    out = np.zeros(masks.shape, np.float32)
    for i, m in enumerate(masks):
        out[i] = cv2.distanceTransform((m < 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    return out


def face_distance(masks: torch.Tensor) -> torch.Tensor:
    """:func:`distance_outside` of ``(B, 1, S, S)`` masks, ``(B, 1, S, S)`` on their device."""
    return torch.from_numpy(distance_outside(masks[:, 0].cpu().numpy()))[:, None].to(masks.device)


def erode(masks: torch.Tensor, px: int) -> torch.Tensor:
    """Binary erosion of ``(B, 1, H, W)`` {0, 1} masks by a ``(2 px + 1)`` square."""
    return -F.max_pool2d(-masks, 2 * px + 1, 1, px) if px > 0 else masks


def seam_correction(query: torch.Tensor, donor: torch.Tensor, masks: torch.Tensor, dist: torch.Tensor,
                    band: int, sigma: float = 1.0, wide: float = 3.0) -> torch.Tensor:
    """The additive correction for the donor's context, ``(B, 3, H, W)``: the query - donor
    difference on the face's 2-px inner rim, spread by normalised Gaussian convolution and faded
    to 0 at ``band`` px outside the face (smoothstep). Zero inside the face and beyond the band.

    Near the rim the spread uses ``sigma`` (local: it follows the rim closely); where that
    kernel no longer reaches (a few px out), it blends into the spread at ``wide``, whose kernel
    covers the whole band, so the correction fades smoothly instead of stopping short."""
    rim = masks - erode(masks, 2)
    diff = (query - donor) * rim

    def spread(s: float, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        num = gaussian_blur2d(diff, (k, k), (s, s), border_type="constant")
        den = gaussian_blur2d(rim, (k, k), (s, s), border_type="constant")
        return num / den.clamp_min(1e-12), den

    near, den_near = spread(sigma, 2 * math.ceil(4 * sigma) + 1)
    far, den_far = spread(wide, 2 * (band + 3) + 1)  # reaches past the band
    w = (den_near / 1e-2).clamp(0, 1)
    t = (1 - dist / band).clamp(0, 1)
    fade = t * t * (3 - 2 * t) * (1 - masks) * (den_far > 1e-12)
    return (w * near + (1 - w) * far) * fade


def correct_seam(query: torch.Tensor, donor: torch.Tensor, masks: torch.Tensor, dist: torch.Tensor,
                 band: int) -> torch.Tensor:
    """``donor`` with :func:`seam_correction` added, in [0, 1]."""
    return (donor + seam_correction(query, donor, masks, dist, band)).clamp(0, 1)
