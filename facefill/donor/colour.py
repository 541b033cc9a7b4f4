"""Colour transfer from the query face onto a donor's context (CIE Lab, on the donors' device).

The donor's Lab statistics over the face region are moved to the query's, with a weight that is 1
on the donor's skin near the face (forehead, ears, neck) and fades with distance, and that is
small on non-skin colours (hair, clothes, background), so those keep their own colours
(:func:`skin_weight`). A black-and-white query gets a black-and-white donor.
"""

from __future__ import annotations

import torch
from kornia.color import lab_to_rgb, rgb_to_lab


def masked_stats(x: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel mean and std of ``x (B, C, H, W)`` over ``m (B, 1, H, W)``."""
    n = m.sum((2, 3)).clamp_min(1)
    mean = (x * m).sum((2, 3)) / n
    var = ((x - mean[..., None, None]) ** 2 * m).sum((2, 3)) / n
    return mean, var.clamp_min(1e-6).sqrt()


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


def transfer_colour(donor: torch.Tensor, query: torch.Tensor, face: torch.Tensor, dist: torch.Tensor,
                    reach: float) -> torch.Tensor:
    """The donors ``(B, 3, S, S)`` in [0, 1] with the queries' face colour carried onto their skin.
    ``query (B, 3, S, S)`` in [0, 1]; ``face (B, 1, S, S)``: the face region the statistics are
    taken over (the mask eroded); ``dist (B, 1, S, S)``: pixels from the query's face."""
    q_lab, d_lab = rgb_to_lab(query), rgb_to_lab(donor.clamp(0, 1))
    q_mean, q_std = masked_stats(q_lab, face)
    d_mean, d_std = masked_stats(d_lab, face)
    grey = (q_std[:, 1:].amax(1) < 4) & (q_mean[:, 1:].abs().amax(1) < 4)  # a black-and-white photo
    if bool(grey.any()):  # its context must be black and white too
        d_lab = torch.cat([d_lab[:, :1], d_lab[:, 1:] * (~grey).to(d_lab.dtype)[:, None, None, None]], 1)
        d_mean, d_std = masked_stats(d_lab, face)
    gain = (q_std / d_std).clamp(0.6, 1.6)
    moved = (d_lab - d_mean[..., None, None]) * gain[..., None, None] + q_mean[..., None, None]
    w = skin_weight(d_lab, d_mean, d_std, dist, reach)
    return lab_to_rgb(d_lab + w * (moved - d_lab)).clamp(0, 1)
