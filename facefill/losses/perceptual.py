"""Perceptual loss: scale-normalised L1 of a frozen backbone's features.

* :class:`PerceptualLoss` -- on a backbone of :func:`facefill.models.embedders.build_backbone`
  (the networks live in ``models``).
* :class:`PerceptualTerm` -- the training objective's term; ``loss.perceptual`` names the backbone.

Images are ``(B, 3, N, N)`` RGB in [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facefill.config import PERCEPTUAL_BACKBONES
from facefill.errors import ConfigError
from facefill.models.embedders import DEFAULT_BACKBONE, build_backbone


class PerceptualLoss(nn.Module):
    """Mean over layers of the L1 distance between backbone features of ``fake`` and ``real``,
    each divided by the mean magnitude of the real features at that layer, so layers and
    backbones weigh alike (an unrelated image scores about 1).

    Images smaller than ``min_size`` (the 8..32 px scales of the cascade) are upsampled
    bilinearly first so that every tapped layer still has spatial extent. ``layer_weights``
    defaults to equal weights.
    """

    def __init__(self, backbone: str | nn.Module = DEFAULT_BACKBONE, layer_weights: tuple[float, ...] | None = None,
                 min_size: int = 64) -> None:
        super().__init__()
        self.backbone = build_backbone(backbone) if isinstance(backbone, str) else backbone
        self.layer_weights = layer_weights
        self.min_size = min_size

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        if fake.shape != real.shape:
            raise ValueError(f"fake {tuple(fake.shape)} and real {tuple(real.shape)} differ in shape")
        if fake.shape[-1] < self.min_size:
            size = (self.min_size, self.min_size)
            fake = F.interpolate(fake, size=size, mode="bilinear", align_corners=False)
            real = F.interpolate(real, size=size, mode="bilinear", align_corners=False)
        f_fake = self.backbone(fake)
        with torch.no_grad():
            f_real = self.backbone(real)
        weights = self.layer_weights or (1.0,) * len(f_fake)
        if len(weights) != len(f_fake):
            raise ConfigError(f"{len(weights)} layer weights for {len(f_fake)} layers")
        total = sum(w * (a - b).abs().mean() / (b.abs().mean() + 1e-6) for w, a, b in zip(weights, f_fake, f_real))
        return total / sum(weights)


class PerceptualTerm(nn.Module):
    """``forward(fake, real)`` -> scalar, images ``(B, 3, N, N)`` in [-1, 1]. ``net`` replaces
    the backbone-backed loss (tests)."""

    def __init__(self, backbone: str = DEFAULT_BACKBONE, net: nn.Module | None = None) -> None:
        super().__init__()
        if backbone not in PERCEPTUAL_BACKBONES:
            raise ConfigError(f"loss.perceptual must be one of {', '.join(PERCEPTUAL_BACKBONES)}, not {backbone!r}")
        if net is None:
            net = PerceptualLoss(backbone)
        self.net = net

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return self.net(fake, real)
