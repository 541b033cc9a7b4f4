"""Fitting a donor's context to a query face: warp, padding, colour, sharpness, seam.

All image tensors are ``(B, 3, S, S) float32`` in [0, 1] RGB and masks ``(B, 1, S, S)`` in
{0, 1} (1 = the query's face). Steps, in order (:func:`fit_donors`):

1. **Warp** the donor onto the query's jaw line, brows and nose (:mod:`facefill.donor.warp`).
2. **Padding**: donor pixels that came from outside its photo (its ``.valid.png``, warped) are
   filled by mirroring the photo across the nearest edge (:func:`mirror_fill`), so the output is
   a whole image; donor choice already prefers donors with little padding.
3. **Colour**, locally (a black-and-white query gets a black-and-white donor): the donor's Lab statistics over the face region are moved to the query's,
   with a weight that is 1 on the donor's skin near the face (forehead, ears, neck) and fades
   with distance, and that is small on non-skin colours (hair, clothes, background), so those
   keep their own colours (:func:`skin_weight`).
4. **Sharpness**: where the query is softer than the donor, the donor is blurred with the
   Gaussian that best matches the two faces' high-frequency energy.
5. **Seam**: the difference between query and donor along the inside of the mask edge is spread
   smoothly (normalised Gaussian convolution) and faded out over ``band`` pixels outside the
   mask: a membrane correction that removes the brightness step at the forehead and the outline
   along the jaw without touching anything farther out (no halos). Face pixels are never changed.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from kornia.color import lab_to_rgb, rgb_to_lab
from kornia.filters import gaussian_blur2d

from facefill.donor.warp import warp_to_landmarks

#: Gaussian sigmas tried when matching the donor's sharpness to the query's.
BLUR_SIGMAS = (0.0, 0.5, 0.8, 1.1, 1.5, 2.0)


def distance_outside(masks: np.ndarray) -> np.ndarray:
    """``(B, S, S)`` face masks -> ``(B, S, S) float32`` Euclidean distance (pixels) of each
    context pixel to the nearest face pixel (0 inside the face)."""
    out = np.zeros(masks.shape, np.float32)
    for i, m in enumerate(masks):
        out[i] = cv2.distanceTransform((m < 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    return out


def mirror_fill(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill the invalid pixels of ``image`` (``(S, S, C)``, ``valid`` ``(S, S)`` bool) with the
    valid pixel mirrored across the nearest valid pixel (or that nearest pixel where the mirror
    falls outside the valid area). Returns a new array; an all-valid image is returned as is."""
    if valid.all() or not valid.any():
        return image
    _, labels = cv2.distanceTransformWithLabels((~valid).astype(np.uint8) * 255, cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    vy, vx = np.nonzero(valid)
    lookup = np.zeros(labels.max() + 1, np.int64)
    lookup[labels[vy, vx]] = np.arange(len(vy))
    iy, ix = np.nonzero(~valid)
    near = lookup[labels[iy, ix]]
    ny, nx = vy[near], vx[near]
    h, w = valid.shape
    my, mx = np.clip(2 * ny - iy, 0, h - 1), np.clip(2 * nx - ix, 0, w - 1)
    ok = valid[my, mx]
    out = image.copy()
    out[iy, ix] = np.where(ok[:, None], image[my, mx], image[ny, nx])
    return out


def _masked_stats(x: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel mean and std of ``x (B, C, H, W)`` over ``m (B, 1, H, W)``."""
    n = m.sum((2, 3)).clamp_min(1)
    mean = (x * m).sum((2, 3)) / n
    var = ((x - mean[..., None, None]) ** 2 * m).sum((2, 3)) / n
    return mean, var.clamp_min(1e-6).sqrt()


def erode(masks: torch.Tensor, px: int) -> torch.Tensor:
    """Binary erosion of ``(B, 1, H, W)`` {0, 1} masks by a ``(2 px + 1)`` square."""
    return -F.max_pool2d(-masks, 2 * px + 1, 1, px) if px > 0 else masks


def skin_weight(donor_lab: torch.Tensor, skin_mean: torch.Tensor, skin_std: torch.Tensor,
                dist: torch.Tensor, reach: float) -> torch.Tensor:
    """How much of the colour transfer a donor pixel gets, ``(B, 1, H, W)`` in [0, 1].

    ``donor_lab (B, 3, H, W)``; ``skin_mean``/``skin_std (B, 3)``: the donor face's Lab stats;
    ``dist (B, 1, H, W)``: pixels from the query's face. Skin-coloured pixels (within about 2.5
    std of the face colour in a and b) get the full weight out to about ``2 * reach``; other
    pixels only right next to the face (out to about ``reach / 2``)."""
    z = (donor_lab[:, 1:] - skin_mean[:, 1:, None, None]) / (2.5 * skin_std[:, 1:, None, None].clamp_min(2.0))
    z_l = (donor_lab[:, :1] - skin_mean[:, :1, None, None]) / (3.0 * skin_std[:, :1, None, None].clamp_min(5.0))
    skin = torch.exp(-0.5 * ((z ** 2).sum(1, keepdim=True) + z_l ** 2))
    far = torch.exp(-(dist / (2 * reach)) ** 2)
    near = 0.5 * torch.exp(-(dist / (reach / 2)) ** 2)
    return torch.maximum(skin * far, near).clamp(0, 1)


def _high_freq(y: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of luma ``y (B, 1, H, W)`` from its 1-px blur over ``m``: ``(B,)``."""
    hf = (y - gaussian_blur2d(y, (5, 5), (1.0, 1.0), border_type="reflect")).abs()
    return (hf * m).sum((1, 2, 3)) / m.sum((1, 2, 3)).clamp_min(1)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    k = 2 * int(math.ceil(2.5 * sigma)) + 1
    return gaussian_blur2d(x, (k, k), (sigma, sigma), border_type="reflect")


def match_sharpness(donor: torch.Tensor, query: torch.Tensor, region: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Blur each donor with the sigma in :data:`BLUR_SIGMAS` whose high-frequency energy over
    ``region`` is closest to the query's (never sharpen). Energies are measured on the luma of the
    region's bounding box; the chosen blur is applied to the whole image. Returns
    ``(donor', sigma (B,))``."""
    ys, xs = torch.nonzero(region.amax((0, 1)), as_tuple=True)
    if len(ys) == 0:
        return donor, torch.zeros(len(donor), dtype=donor.dtype)
    box = (slice(None), slice(None), slice(int(ys.min()), int(ys.max()) + 1), slice(int(xs.min()), int(xs.max()) + 1))
    r, luma = region[box], donor.mean(1, keepdim=True)[box]
    target = _high_freq(query.mean(1, keepdim=True)[box], r)
    energy = torch.stack([_high_freq(luma if s == 0 else _blur(luma, s), r) for s in BLUR_SIGMAS], 1)  # (B, n)
    pick = (energy - target[:, None]).abs().argmin(1)
    out = donor.clone()
    for j in pick.unique().tolist():
        if BLUR_SIGMAS[j] > 0:
            sel = pick == j
            out[sel] = _blur(donor[sel], BLUR_SIGMAS[j])
    return out, torch.tensor(BLUR_SIGMAS, dtype=donor.dtype)[pick]


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


def fit_donors(query: torch.Tensor, masks: torch.Tensor, query_landmarks: torch.Tensor,
               donor: torch.Tensor, donor_valid: torch.Tensor, donor_landmarks: torch.Tensor,
               band: int = 10, reach: float = 24.0) -> torch.Tensor:
    """One output per (query, donor) pair, ``(B, 3, S, S)`` in [0, 1]; inside the mask it is the
    query (exactly, up to float rounding: round to uint8 and paste the face, see
    :func:`facefill.donor.DonorHallucinator`).

    ``query (B, 3, S, S)`` in [0, 1] (context ignored); ``masks (B, 1, S, S)`` {0, 1};
    ``query_landmarks``, ``donor_landmarks``: ``(B, 68, 2)`` pixels; ``donor (B, 3, S, S)`` in
    [0, 1]; ``donor_valid (B, 1, S, S)`` 1 where the donor pixel is from its photo."""
    warped = warp_to_landmarks(torch.cat([donor, donor_valid], 1), donor_landmarks, query_landmarks)
    d, valid = warped[:, :3], warped[:, 3:] > 0.99
    if not bool(valid.all()):
        arr, ok = d.permute(0, 2, 3, 1).numpy(), valid[:, 0].numpy()
        d = torch.from_numpy(np.stack([mirror_fill(a, v) for a, v in zip(arr, ok)])).permute(0, 3, 1, 2)
    m = (masks > 0.5).to(query.dtype)
    dist = torch.from_numpy(distance_outside(m[:, 0].numpy()))[:, None]
    face = erode(m, 2)
    q_lab, d_lab = rgb_to_lab(query), rgb_to_lab(d.clamp(0, 1))
    q_mean, q_std = _masked_stats(q_lab, face)
    d_mean, d_std = _masked_stats(d_lab, face)
    grey = (q_std[:, 1:].amax(1) < 4) & (q_mean[:, 1:].abs().amax(1) < 4)  # a black-and-white photo
    if bool(grey.any()):  # its context must be black and white too
        d_lab = torch.cat([d_lab[:, :1], d_lab[:, 1:] * (~grey).to(d_lab.dtype)[:, None, None, None]], 1)
        d_mean, d_std = _masked_stats(d_lab, face)
    gain = (q_std / d_std).clamp(0.6, 1.6)
    moved = (d_lab - d_mean[..., None, None]) * gain[..., None, None] + q_mean[..., None, None]
    w = skin_weight(d_lab, d_mean, d_std, dist, reach)
    d = lab_to_rgb(d_lab + w * (moved - d_lab)).clamp(0, 1)
    d, _ = match_sharpness(d, query, face)
    d = (d + seam_correction(query, d, m, dist, band)).clamp(0, 1)
    return m * query + (1 - m) * d
