"""Perceptual loss: scale-normalised L1 of a frozen backbone's features
(:class:`facefill.models.embedders.PerceptualLoss`), ``loss.perceptual`` names the backbone."""

from __future__ import annotations

import torch
from torch import nn

from facefill.config import PERCEPTUAL_BACKBONES
from facefill.errors import ConfigError


class PerceptualTerm(nn.Module):
    """``forward(fake, real)`` -> scalar, images ``(B, 3, N, N)`` in [-1, 1]. ``net`` replaces
    the backbone-backed loss (tests)."""

    def __init__(self, backbone: str = "efficientnet-lite0", net: nn.Module | None = None) -> None:
        super().__init__()
        if backbone not in PERCEPTUAL_BACKBONES:
            raise ConfigError(f"loss.perceptual must be one of {', '.join(PERCEPTUAL_BACKBONES)}, not {backbone!r}")
        if net is None:
            from facefill.models.embedders import PerceptualLoss

            net = PerceptualLoss(backbone)
        self.net = net

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return self.net(fake, real)
