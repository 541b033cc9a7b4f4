"""The seam correction: the step between the query's face and a donor's context, removed.

The difference between query and donor along the inside of the mask edge is spread smoothly
(normalised Gaussian convolution) and faded out over ``band`` pixels outside the mask: a membrane
correction that removes the brightness step at the forehead and the outline along the jaw without
touching anything farther out. Only the query's skin along the edge is trusted (a beard, hair or
background kept in the mask would spread out as a pale or dark rim), and the correction lands on
the donor's skin only (its hair and clothes keep their own edge against the face): ``trust`` and
``accept`` (:func:`facefill.donor.colour.skin_maps`). Face pixels are never changed.

The Gaussians are kornia's ``gaussian_blur2d`` with zero (``"constant"``) borders, computed here
as one separable convolution of the numerator's 3 channels and the denominator's 1 together, with
kornia's own taps built once per (sigma, size): kornia rebuilds its kernels on every call, which
cost more than the convolutions on 128 px crops.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from kornia.filters import get_gaussian_kernel1d


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


def sliding_max(x: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """The maximum of every ``size`` consecutive entries of ``x`` along ``dim`` (that dim shrinks
    by ``size - 1``): windows doubled by shifted maxima, then one last overlapping shift, about
    ``2 log2(size)`` passes of the tensor where a sliding window takes ``size``. Exact: every
    window is covered by the union of the two windows compared last."""
    span, out = 1, x
    while 2 * span <= size:
        n = out.shape[dim] - span
        out = torch.maximum(out.narrow(dim, 0, n), out.narrow(dim, span, n))
        span *= 2
    if span < size:
        n = out.shape[dim] - (size - span)
        out = torch.maximum(out.narrow(dim, 0, n), out.narrow(dim, size - span, n))
    return out


def erode(masks: torch.Tensor, px: int) -> torch.Tensor:
    """Binary erosion of ``(B, 1, H, W)`` {0, 1} masks by a ``(2 px + 1)`` square, pixels outside
    the image not counting: ``-max_pool2d(-masks, 2 px + 1, 1, px)`` exactly, computed along
    rows, then columns (:func:`sliding_max`; max_pool2d's square window was slow on one CPU
    thread: about 5 ms at 256 px and over 60 at 512)."""
    if px <= 0:
        return masks
    k = 2 * px + 1
    grown = sliding_max(F.pad(-masks, (px, px, 0, 0), value=-math.inf), k, -1)
    return -sliding_max(F.pad(grown, (0, 0, px, px), value=-math.inf), k, -2)


@lru_cache(maxsize=32)
def _taps(sigma: float, size: int, channels: int, device: torch.device, dtype: torch.dtype
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """kornia's normalised Gaussian taps for ``sigma`` and ``size`` (odd), the ones its
    ``gaussian_blur2d`` builds, as depthwise weights for ``channels`` channels: along rows
    ``(channels, 1, 1, size)`` and along columns ``(channels, 1, size, 1)``."""
    w = get_gaussian_kernel1d(size, sigma, device=device, dtype=dtype).expand(channels, -1)[:, None]
    return w[:, :, None, :].contiguous(), w[:, :, :, None].contiguous()


def _blur(x: torch.Tensor, sigma: float, size: int) -> torch.Tensor:
    """Each channel of ``x (B, C, H, W)`` blurred with a ``size``-tap Gaussian of ``sigma`` px along
    rows, then columns, zero borders: kornia's ``gaussian_blur2d(x, (size, size), (sigma, sigma),
    border_type="constant")``, up to float rounding."""
    rows, cols = _taps(sigma, size, x.shape[1], x.device, x.dtype)
    r = size // 2  # padded before each pass, as kornia does (faster here than conv2d's own padding)
    x = F.conv2d(F.pad(x, (r, r, 0, 0)), rows, groups=x.shape[1])
    return F.conv2d(F.pad(x, (0, 0, r, r)), cols, groups=x.shape[1])


def seam_correction(query: torch.Tensor, donor: torch.Tensor, masks: torch.Tensor, dist: torch.Tensor,
                    band: int, sigma: float = 1.5, wide: float = 3.0, trust: torch.Tensor | None = None,
                    accept: torch.Tensor | None = None, scale: float = 1.0, hold: torch.Tensor | None = None) -> torch.Tensor:
    """The additive correction for the donor's context, ``(B, 3, H, W)``: the query - donor
    difference on the face's 2-px inner rim, spread by normalised Gaussian convolution and faded
    to 0 at ``band`` px outside the face (smoothstep). Zero inside the face and beyond the band.
    ``trust (B, 1, H, W)`` in [0, 1] weighs each rim pixel (None: all 1); ``accept`` scales the
    correction on each donor pixel past the first 2 px (None: all 1), and on those 2 px too where
    ``hold (B, 1, H, W)`` is 1 (the donor's hair over the face's band: no pale edge along it).

    Near the rim the spread uses ``sigma`` (local: it follows the rim closely); where that
    kernel no longer reaches (a few px out), it blends into the spread at ``wide``, whose kernel
    covers the whole band, so the correction fades smoothly instead of stopping short.
    ``scale`` (S / 128) multiplies every distance: ``band``, ``sigma``, ``wide``, the rim and ring."""
    band, sigma, wide = band * scale, sigma * scale, wide * scale
    rim = masks - erode(masks, round(2 * scale))
    if trust is not None:
        rim = rim * trust
    both = torch.cat([(query - donor) * rim, rim], 1)  # numerator (3 channels) and denominator

    def spread(s: float, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        blurred = _blur(both, s, k)
        num, den = blurred[:, :3], blurred[:, 3:]
        return num / den.clamp_min(1e-12), den

    near, den_near = spread(sigma, 2 * math.ceil(4 * sigma) + 1)
    far, den_far = spread(wide, 2 * math.ceil(band + 3 * scale) + 1)  # reaches past the band
    w = (den_near / 1e-2).clamp(0, 1)
    t = (1 - dist / band).clamp(0, 1)
    fade = t * t * (3 - 2 * t) * (1 - masks) * (den_far > 1e-12)
    if accept is not None:
        ring = (3 - dist / scale).clamp(0, 1)  # the 2 px next to the face are always blended
        if hold is not None:
            ring = ring * (1 - hold)  # but for the donor's hair laid over the face's band
        fade = fade * (ring + (1 - ring) * accept)
    return (w * near + (1 - w) * far) * fade


def correct_seam(query: torch.Tensor, donor: torch.Tensor, masks: torch.Tensor, dist: torch.Tensor,
                 band: int, trust: torch.Tensor | None = None, accept: torch.Tensor | None = None,
                 scale: float = 1.0, hold: torch.Tensor | None = None) -> torch.Tensor:
    """``donor`` with :func:`seam_correction` added, in [0, 1]."""
    return (donor + seam_correction(query, donor, masks, dist, band, trust=trust, accept=accept, scale=scale,
                                    hold=hold)).clamp(0, 1)
