"""One conditional PatchGAN discriminator per scale, used by both training regimes.

Choice: PatchGAN (pix2pix) rather than a DCGAN-style single logit. The hallucinated context is
texture (hair, clothes, background) whose realism is local, and a patch critic gives a dense
signal that works the same from 8x8 to 128x128. Each critic is *conditional*: it sees the image
concatenated with the face mask at its scale (6 channels), so it judges whether the context fits
that face, not just whether it looks like some face.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from facefill.models.generator import SCALES, pyramid, scaled


class PatchDiscriminator(nn.Module):
    """``(B, C_in, N, N)`` in [-1, 1] -> logits ``(B, 1, h, w)`` (one per patch).

    min(3, log2(N/4)) stride-2 4x4 convs (64, 128, 256 filters x width), a stride-1 4x4 conv
    (512 x width), then a 3x3 conv to one logit map; leaky ReLU 0.2, no normalisation.
    """

    def __init__(self, resolution: int, width: float = 1.0, in_channels: int = 6) -> None:
        super().__init__()
        self.resolution = resolution
        n_down = max(1, min(3, int(math.log2(resolution // 4))))
        layers: list[nn.Module] = []
        prev = in_channels
        for i in range(n_down):
            c = scaled(64 * 2**i, width)
            layers += [nn.Conv2d(prev, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            prev = c
        c = scaled(512, width)
        layers += [nn.Conv2d(prev, c, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(c, 1, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MultiScaleDiscriminator(nn.Module):
    """``{N: image}`` (and the masked input) -> ``{N: patch logits}``; critics named ``d8 .. d128``."""

    def __init__(
        self, width: float = 1.0, scales: tuple[int, ...] = SCALES, conditional: bool = True
    ) -> None:
        super().__init__()
        self.scales = tuple(scales)
        self.conditional = conditional
        in_ch = 6 if conditional else 3
        self.critics = nn.ModuleDict({f"d{n}": PatchDiscriminator(n, width, in_ch) for n in scales})

    def forward(
        self, images: dict[int, torch.Tensor], masked: torch.Tensor
    ) -> dict[int, torch.Tensor]:
        conds = pyramid(masked, tuple(images)) if self.conditional else {}
        out = {}
        for n, img in images.items():
            x = torch.cat([img, conds[n]], dim=1) if self.conditional else img
            out[n] = self.critics[f"d{n}"](x)
        return out


__all__ = ["PatchDiscriminator", "MultiScaleDiscriminator"]
