"""Pixel loss and the validity rule shared by every term that compares with the real photo.

Alignment pads a photo where the eye-centred frame reaches past its edge; those pixels carry no
information about the person, so no loss may reward or punish what the generator draws there.
"""

from __future__ import annotations

import torch

from facefill.config import PIXEL_KINDS
from facefill.errors import ConfigError


def fill_invalid(fake: torch.Tensor, real: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """``fake`` with its invalid pixels replaced by ``real``'s (the padding):
    ``valid * fake + (1 - valid) * real``. Images ``(B, 3, N, N)``, ``valid`` ``(B, 1, N, N)`` in
    [0, 1] or None (all valid: ``fake`` itself). No gradient reaches an invalid pixel."""
    if valid is None:
        return fake
    return valid * fake + (1 - valid) * real


def pixel_loss(fake: torch.Tensor, real: torch.Tensor, valid: torch.Tensor | None = None,
               kind: str = "l1") -> torch.Tensor:
    """Mean L1 (``kind="l1"``) or squared (``"l2"``) difference over the valid pixels.

    ``fake``, ``real``: ``(B, C, N, N)`` in [-1, 1]; ``valid``: ``(B, 1, N, N)`` weights in
    [0, 1] or None. Returns a scalar; a batch with no valid pixel gives 0.
    """
    if kind not in PIXEL_KINDS:
        raise ConfigError(f"loss.pixel_kind must be one of {', '.join(PIXEL_KINDS)}, not {kind!r}")
    diff = fake - real
    per_pixel = diff.abs() if kind == "l1" else diff.square()
    if valid is None:
        return per_pixel.mean()
    weight = valid.expand_as(per_pixel)
    return (per_pixel * weight).sum() / weight.sum().clamp_min(1e-8)
