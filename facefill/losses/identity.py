"""Identity loss: the distance of dlib-ResNet descriptors of the generated and real face chips.

* :class:`IdentityLoss` -- ``1 - cos(e(fake), e(real))`` (default), or dlib's Euclidean distance,
  on a :class:`facefill.models.embedders.FaceEmbedder` (the network lives in ``models``).
* :class:`IdentityTerm` -- the training objective's term: landmarks rescaled to each block's scale.

Images are ``(B, 3, N, N)`` RGB in [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facefill.config import IDENTITY_KINDS
from facefill.errors import ConfigError
from facefill.models.embedders import FaceEmbedder


def scale_landmarks(landmarks: torch.Tensor, src: int, dst: int) -> torch.Tensor:
    """Pixel-centre landmarks ``(B, 68, 2)`` of an ``src``-sized image in a ``dst``-sized resize."""
    return (landmarks + 0.5) * (dst / src) - 0.5


class IdentityLoss(nn.Module):
    """Identity distance between generated and real faces, averaged over the batch.

    ``distance="cosine"`` (default): ``1 - cos(e_fake, e_real)``, in [0, 2], scale-free and the
    same quantity the ``match`` metric reports. ``"euclidean"``: dlib's own distance (same person
    when < 0.6). ``real`` is the target and gets no gradient. ``forward(fake, real, landmarks=None)``:
    images ``(B, 3, H, W)`` in [-1, 1], landmarks ``(B, 5 or 68, 2)`` pixels -> scalar.
    """

    def __init__(self, embedder: nn.Module | None = None, distance: str = "cosine") -> None:
        super().__init__()
        if distance not in IDENTITY_KINDS:
            raise ConfigError(f"identity distance must be one of {', '.join(IDENTITY_KINDS)}, not {distance!r}")
        self.embedder = embedder if embedder is not None else FaceEmbedder()
        self.distance = distance

    def forward(self, fake: torch.Tensor, real: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        e_fake = self.embedder(fake, landmarks)
        with torch.no_grad():
            e_real = self.embedder(real, landmarks)
        if self.distance == "cosine":
            return (1 - F.cosine_similarity(e_fake, e_real, dim=1)).mean()
        return (e_fake - e_real).norm(dim=1).mean()


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
            net = IdentityLoss(FaceEmbedder(eyes=eyes) if eyes else FaceEmbedder(), kind)
        self.net = net

    def forward(self, fake: torch.Tensor, real: torch.Tensor, landmarks: torch.Tensor, size: int) -> torch.Tensor:
        return self.net(fake, real, scale_landmarks(landmarks, size, fake.shape[-1]))
