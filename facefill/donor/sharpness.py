"""Sharpness matching: a donor sharper than the query is blurred to match it, a softer one sharpened.

The warp's bilinear resampling softens every donor a little, and 76 of the 99 validation faces'
best donors came out softer than the face pasted into them: a sharp face framed by soft hair and
clothes, which the border's realism score sees (seam-kid 0.0029 -> 0.0027, KID 0.0009 -> 0.0002
with sharpening; docs/donor.md). A softer donor gets an unsharp mask of its 1 px blur.

The Gaussians are separable convolutions with reflected borders, as kornia's ``gaussian_blur2d``
(``border_type="reflect"``) computes them, with the taps built once per sigma and every trial
sigma run as one convolution with a bank of kernels (kornia rebuilds its kernels on every call,
which cost more than the convolutions on 128 px crops).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

#: Gaussian sigmas tried when matching the donor's sharpness to the query's.
BLUR_SIGMAS = (0.0, 0.5, 0.8, 1.1, 1.5, 2.0)

#: unsharp-mask amounts tried when the donor is softer than the query: ``donor + a (donor - blur)``,
#: the blur a Gaussian of 1 px (of a 128 px crop)
SHARPEN_AMOUNTS = (0.25, 0.5, 0.75, 1.0)

#: the sigma and radius of the 1-px blur that high-frequency energy is measured against
_HF_SIGMA, _HF_RADIUS = 1.0, 2


def _radius(sigma: float) -> int:
    """The half-width of the blur kernel for ``sigma`` (``2 * ceil(2.5 sigma) + 1`` taps)."""
    return int(math.ceil(2.5 * sigma))


@lru_cache(maxsize=64)
def _taps(sigmas: tuple[float, ...], radius: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``(len(sigmas), 2 radius + 1)`` normalised Gaussian taps (kornia's: ``2 ceil(2.5 sigma) + 1``
    taps, padded with zeros to ``radius``); sigma 0 is the identity."""
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    rows = []
    for s in sigmas:
        r = _radius(s) if s > 0 else 0
        g = torch.exp(-x ** 2 / (2 * s * s)) * (x.abs() <= r) if s > 0 else (x == 0).double()
        rows.append(g / g.sum())
    return torch.stack(rows).to(device, dtype)


def _separable(x: torch.Tensor, taps: torch.Tensor, radius: int) -> torch.Tensor:
    """Each channel of ``x (B, C, H, W)`` convolved with each row of ``taps (K, 2 radius + 1)``
    along both axes, borders reflected: ``(B, C * K, H, W)``, channel ``c * K + k``."""
    c, k = x.shape[1], taps.shape[0]
    p = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    w = taps.repeat(c, 1)[:, None]  # (C K, 1, taps)
    p = F.conv2d(p, w[:, :, None, :], groups=c)  # along rows
    return F.conv2d(p, w[:, :, :, None], groups=c * k)  # along columns


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``x (B, C, H, W)`` blurred with a Gaussian of ``sigma`` px (reflected borders)."""
    r = _radius(sigma)
    return _separable(x, _taps((sigma,), r, x.device, x.dtype), r)


def _high_freq(y: torch.Tensor, m: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Mean absolute difference of each channel of ``y (B, C, H, W)`` (luma) from its 1-px blur
    (``scale`` px: S / 128) over ``m (B, 1, H, W)``: ``(B, C)``."""
    radius = _HF_RADIUS if scale == 1.0 else int(math.ceil(_HF_RADIUS * scale))
    hf = (y - _separable(y, _taps((_HF_SIGMA * scale,), radius, y.device, y.dtype), radius)).abs()
    return (hf * m).sum((2, 3)) / m.sum((2, 3)).clamp_min(1)


def match_sharpness(donor: torch.Tensor, query: torch.Tensor, region: torch.Tensor,
                    scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Blur each donor ``(B, 3, H, W)`` with the sigma in :data:`BLUR_SIGMAS`, or sharpen it by an
    amount of :data:`SHARPEN_AMOUNTS`, whose high-frequency energy over ``region (B, 1, H, W)``
    is closest to the query's. Energies are measured on the luma of each region's bounding box;
    the chosen filter is applied to the whole image (sharpened values clipped to [0, 1]);
    ``scale`` (S / 128) multiplies the sigmas. Returns ``(donor', sigma (B,))`` on the donors'
    device, ``sigma`` the blur's, or minus the sharpening amount. Each image is matched alone
    (its own box; a batched convolution rounds differently), so the result does not depend on
    the batch."""
    outs, sigmas = zip(*(_match_one(donor[i:i + 1], query[i:i + 1], region[i:i + 1], scale) for i in range(len(donor))))
    return torch.cat(outs), torch.tensor(sigmas, dtype=donor.dtype, device=donor.device)


def _match_one(donor: torch.Tensor, query: torch.Tensor, region: torch.Tensor, scale: float = 1.0
               ) -> tuple[torch.Tensor, float]:
    """:func:`match_sharpness` of one image (batch of 1): ``(donor', sigma)``."""
    sigmas = BLUR_SIGMAS if scale == 1.0 else tuple(s * scale for s in BLUR_SIGMAS)
    ys, xs = torch.nonzero(region[0, 0], as_tuple=True)
    if len(ys) == 0:
        return donor, 0.0
    box = (slice(None), slice(None), slice(int(ys.min()), int(ys.max()) + 1), slice(int(xs.min()), int(xs.max()) + 1))
    r, luma = region[box], donor.mean(1, keepdim=True)[box]
    target = _high_freq(query.mean(1, keepdim=True)[box], r, scale)[0, 0]
    radius = _radius(max(sigmas))
    trials = _separable(luma, _taps(sigmas, radius, luma.device, luma.dtype), radius)  # (1, n, h, w)
    trials[:, sigmas.index(0.0)] = luma[:, 0]  # the unblurred donor, exactly
    energy = _high_freq(trials, r, scale)[0]
    if target > energy[sigmas.index(0.0)]:  # softer than the face: the sharpened trials too
        sharp = luma + torch.tensor(SHARPEN_AMOUNTS, dtype=luma.dtype, device=luma.device)[None, :, None, None] * (
            luma - _blur(luma, scale))
        energy = torch.cat([energy, _high_freq(sharp, r, scale)[0]])
    best = int((energy - target).abs().argmin())
    if best >= len(sigmas):
        a = SHARPEN_AMOUNTS[best - len(sigmas)]
        return (donor + a * (donor - _blur(donor, scale))).clamp(0, 1), -a
    sigma = sigmas[best]
    return (_blur(donor, sigma) if sigma > 0 else donor.clone()), sigma
