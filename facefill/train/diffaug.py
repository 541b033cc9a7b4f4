"""Differentiable augmentation of the discriminator's inputs (DiffAugment, Zhao et al. 2020).

A discriminator trained on a few hundred faces memorises them and stops giving the generator
useful gradients. DiffAugment shows it every image, real and fake alike, through random,
differentiable transforms; the generator's gradient flows back through them. Policies
(``discriminator.diffaug``, any subset):

* ``color``: brightness ``+U(-0.5, 0.5)``, saturation ``x U(0, 2)``, contrast ``x U(0.5, 1.5)``;
* ``translation``: a shift of up to 1/8 of the side in each direction, zero (mid-grey) padding;
* ``cutout``: a square of half the side set to zero, anywhere in the image.

Every image of one call (all scales, and the conditioning masked input) gets the same draw per
sample, in normalised coordinates, so the pyramid and the condition stay aligned with each other.
Draws come from torch's global RNG, which training checkpoints save and restore.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from facefill.config import DIFFAUG_POLICIES as POLICIES  # the known names, in the order applied

TRANSLATION = 1 / 8
CUTOUT = 1 / 2


def _colour(x: torch.Tensor, bright: torch.Tensor, sat: torch.Tensor, contrast: torch.Tensor) -> torch.Tensor:
    x = x + bright
    m = x.mean(1, keepdim=True)
    x = (x - m) * sat + m
    m = x.mean((1, 2, 3), keepdim=True)
    return (x - m) * contrast + m


def _translate(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    theta = torch.zeros(x.shape[0], 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = shift.to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _cutout(x: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    n = x.shape[-1]
    u = (torch.arange(n, device=x.device, dtype=x.dtype) + 0.5) / n  # pixel centres in (0, 1)
    cx, cy = centre[:, 0, None].to(x.dtype), centre[:, 1, None].to(x.dtype)
    inside_x = (u[None] - cx).abs() < CUTOUT / 2  # (B, N)
    inside_y = (u[None] - cy).abs() < CUTOUT / 2
    hole = inside_y[:, :, None] & inside_x[:, None, :]  # (B, N, N)
    return x * (~hole)[:, None].to(x.dtype)


def diff_augment(images: dict[int, torch.Tensor], cond: torch.Tensor, policy: tuple[str, ...]
                 ) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
    """Augment ``images`` (``{N: (B, 3, N, N)}`` in [-1, 1]) and the condition ``cond``
    (``(B, C, S, S)``) with one draw per sample; returns them in the same form. An empty
    ``policy`` returns the inputs unchanged."""
    unknown = set(policy) - set(POLICIES)
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {sorted(unknown)}; known: {', '.join(POLICIES)}")
    if not policy:
        return images, cond
    b, dev = cond.shape[0], cond.device
    items = [*images.values(), cond]
    if "color" in policy:
        draw = torch.rand(3, b, 1, 1, 1, device=dev)
        bright, sat, contrast = draw[0] - 0.5, draw[1] * 2, draw[2] + 0.5
        items = [_colour(x, bright, sat, contrast) for x in items]
    if "translation" in policy:
        shift = (torch.rand(b, 2, device=dev) * 2 - 1) * (2 * TRANSLATION)  # normalised [-1, 1] units
        items = [_translate(x, shift) for x in items]
    if "cutout" in policy:
        centre = torch.rand(b, 2, device=dev)
        items = [_cutout(x, centre) for x in items]
    return dict(zip(images, items[:-1])), items[-1]


__all__ = ["POLICIES", "diff_augment"]
