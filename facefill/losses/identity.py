"""Identity loss: the distance of dlib-ResNet descriptors of the generated and real face chips
(:class:`facefill.models.embedders.IdentityLoss`), landmarks rescaled to each block's scale."""

from __future__ import annotations

import torch
from torch import nn

from facefill.config import IDENTITY_KINDS
from facefill.errors import ConfigError


def scale_landmarks(landmarks: torch.Tensor, src: int, dst: int) -> torch.Tensor:
    """Pixel-centre landmarks ``(B, 68, 2)`` of an ``src``-sized image in a ``dst``-sized resize."""
    return (landmarks + 0.5) * (dst / src) - 0.5


class IdentityTerm(nn.Module):
    """``forward(fake, real, landmarks, size)`` -> scalar; ``fake``/``real`` ``(B, 3, N, N)`` in
    [-1, 1], ``landmarks`` ``(B, 68, 2)`` pixels of the ``size``-sized photo. ``kind``:
    ``cosine`` (1 - cos, in [0, 2]) or ``euclidean`` (dlib's distance). ``net`` replaces the
    embedder-backed loss (tests)."""

    def __init__(self, kind: str = "cosine", eyes: tuple[tuple[float, float], tuple[float, float]] | None = None,
                 net: nn.Module | None = None) -> None:
        super().__init__()
        if kind not in IDENTITY_KINDS:
            raise ConfigError(f"loss.identity must be one of {', '.join(IDENTITY_KINDS)}, not {kind!r}")
        if net is None:
            from facefill.models.embedders import FaceEmbedder, IdentityLoss

            net = IdentityLoss(FaceEmbedder(eyes=eyes) if eyes else FaceEmbedder(), kind)
        self.net = net

    def forward(self, fake: torch.Tensor, real: torch.Tensor, landmarks: torch.Tensor, size: int) -> torch.Tensor:
        return self.net(fake, real, scale_landmarks(landmarks, size, fake.shape[-1]))
