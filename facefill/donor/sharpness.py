"""Sharpness matching: a donor sharper than the query is blurred to match it (never sharpened)."""

from __future__ import annotations

import math

import torch
from kornia.filters import gaussian_blur2d

#: Gaussian sigmas tried when matching the donor's sharpness to the query's.
BLUR_SIGMAS = (0.0, 0.5, 0.8, 1.1, 1.5, 2.0)


def _high_freq(y: torch.Tensor, m: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Mean absolute difference of luma ``y (B, 1, H, W)`` from its 1-px blur (``scale`` px) over ``m``: ``(B,)``."""
    k = 2 * math.ceil(2 * scale) + 1
    hf = (y - gaussian_blur2d(y, (k, k), (scale, scale), border_type="reflect")).abs()
    return (hf * m).sum((1, 2, 3)) / m.sum((1, 2, 3)).clamp_min(1)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    k = 2 * int(math.ceil(2.5 * sigma)) + 1
    return gaussian_blur2d(x, (k, k), (sigma, sigma), border_type="reflect")


def match_sharpness(donor: torch.Tensor, query: torch.Tensor, region: torch.Tensor,
                    scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Blur each donor ``(B, 3, H, W)`` with the sigma in :data:`BLUR_SIGMAS` whose high-frequency
    energy over ``region (B, 1, H, W)`` is closest to the query's (never sharpen). Energies are
    measured on the luma of the region's bounding box; the chosen blur is applied to the whole
    image; ``scale`` (S / 128) multiplies the sigmas. Returns ``(donor', sigma (B,))``, on the donors' device."""
    sigmas = [s * scale for s in BLUR_SIGMAS]
    ys, xs = torch.nonzero(region.amax((0, 1)), as_tuple=True)
    if len(ys) == 0:
        return donor, torch.zeros(len(donor), dtype=donor.dtype, device=donor.device)
    box = (slice(None), slice(None), slice(int(ys.min()), int(ys.max()) + 1), slice(int(xs.min()), int(xs.max()) + 1))
    r, luma = region[box], donor.mean(1, keepdim=True)[box]
    target = _high_freq(query.mean(1, keepdim=True)[box], r, scale)
    energy = torch.stack([_high_freq(luma if s == 0 else _blur(luma, s), r, scale) for s in sigmas], 1)  # (B, n)
    pick = (energy - target[:, None]).abs().argmin(1)
    out = donor.clone()
    for j in pick.unique().tolist():
        if sigmas[j] > 0:
            sel = pick == j
            out[sel] = _blur(donor[sel], sigmas[j])
    return out, torch.tensor(sigmas, dtype=donor.dtype, device=donor.device)[pick]
