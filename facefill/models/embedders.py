"""Pretrained networks for the identity and perceptual losses and the match score, offline.

* :class:`FaceEmbedder` -- dlib's face-recognition ResNet ported to PyTorch
  (:mod:`facefill.models.dlib_resnet`) behind dlib's face-chip crop done with kornia
  (:mod:`facefill.models.chip`): images + landmarks -> 128-d descriptors, differentiable.
* Perceptual backbones (:func:`build_backbone`): frozen networks returning intermediate feature
  maps: ``efficientnet-lite0`` (default; ImageNet weights ship in a registry package, so it works
  offline and in CI), ``vgg19`` (the classic choice; torchvision's weights, never downloaded) or
  ``dlib-resnet`` (face-specific features).

The losses built on them live in :mod:`facefill.losses` (``IdentityLoss`` in
:mod:`~facefill.losses.identity`, ``PerceptualLoss`` in :mod:`~facefill.losses.perceptual`).
Every weight file is found by :func:`facefill.weights.find`.

Images are ``(B, 3, H, W)`` RGB in [-1, 1] (the generator's range) everywhere in this module.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facefill.config import PERCEPTUAL_BACKBONES
from facefill.errors import ConfigError, WeightsNotFoundError
from facefill.models.chip import TEMPLATE_5, extract_chips
from facefill.models.dlib_resnet import DlibFaceResNet, load_dlib_resnet
from facefill.models.efficientnet_lite import IMAGENET_MEAN, IMAGENET_STD, load_efficientnet_lite0
from facefill.runtime import import_torchvision
from facefill.weights import find

#: relu1_2, relu2_2, relu3_4, relu4_4, relu5_4 in torchvision's ``vgg19().features``.
VGG19_TAPS = (3, 8, 17, 26, 35)
BACKBONES = PERCEPTUAL_BACKBONES  # the one list, in facefill.config
DEFAULT_BACKBONE = "efficientnet-lite0"


def to_255(images: torch.Tensor) -> torch.Tensor:
    return (images + 1.0) * 127.5


def canonical_landmarks(size: int, left_eye: tuple[float, float], right_eye: tuple[float, float]) -> np.ndarray:
    """dlib's 5-point template placed so that its eye centres sit at ``left_eye``/``right_eye``
    (fractions of ``size``, the eye on the image's left first): a ``(5, 2)`` landmark set for
    aligned faces that have no landmarks of their own."""
    t = np.array(TEMPLATE_5)
    src = np.stack([t[2:4].mean(0), t[0:2].mean(0)])  # image-left eye, image-right eye
    dst = np.array([left_eye, right_eye]) * size
    s, d = src[1] - src[0], dst[1] - dst[0]
    z = complex(*d) / complex(*s)
    rot = np.array([[z.real, -z.imag], [z.imag, z.real]])
    return (t - src[0]) @ rot.T + dst[0]


class FaceEmbedder(nn.Module):
    """Images in [-1, 1] + landmarks -> dlib's 128-d face descriptors.

    ``forward(images (B, 3, H, W), landmarks (B, 5 or 68, 2) in those images' pixels)`` cuts
    dlib's 150x150 chip (padding 0.25) with kornia and runs the ported ResNet. Gradients flow to
    the images. ``landmarks=None`` uses :func:`canonical_landmarks` for eye-aligned faces.
    """

    def __init__(self, net: DlibFaceResNet | None = None,
                 eyes: tuple[tuple[float, float], tuple[float, float]] = ((0.40, 0.45), (0.60, 0.45))) -> None:
        super().__init__()
        self.net = net if net is not None else load_dlib_resnet()
        self.eyes = eyes

    def chips(self, images: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        if landmarks is None:
            lm = canonical_landmarks(images.shape[-1], *self.eyes)
            landmarks = torch.as_tensor(lm, dtype=images.dtype, device=images.device).expand(images.shape[0], 5, 2)
        return extract_chips(to_255(images), landmarks.to(images.device))

    def forward(self, images: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self.chips(images, landmarks))


# ------------------------------------------------------------------------------ backbones


class _Backbone(nn.Module):
    """Images in [-1, 1] -> list of feature maps. Frozen, eval mode."""

    def freeze(self) -> "_Backbone":
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    def train(self, mode: bool = True) -> "_Backbone":  # a frozen backbone stays in eval mode
        return super().train(False)


class EfficientNetFeatures(_Backbone):
    def __init__(self, path: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.net = load_efficientnet_lite0(path)
        self.freeze()

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.net.features((images + 1) / 2)


class VGG19Features(_Backbone):
    """torchvision's VGG19 ``features`` up to relu5_4, ImageNet weights from ``path``, else
    :func:`facefill.weights.find` of ``vgg19`` (``$FACEFILL_VGG19``, else torch hub's cache).
    Nothing is downloaded: a missing file is a WeightsNotFoundError saying where to put it."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        super().__init__()
        file = find("vgg19", path)
        try:
            state = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several unrelated types for corrupt or foreign files
            raise WeightsNotFoundError(f"{file}: not torchvision VGG19 weights ({exc.__class__.__name__})") from None
        if not isinstance(state, dict) or "features.0.weight" not in state:  # before building the 143M-parameter net
            raise WeightsNotFoundError(f"{file}: not torchvision VGG19 weights (no features.0.weight)")
        vgg = import_torchvision().models.vgg19()
        try:
            vgg.load_state_dict(state)
        except Exception as exc:
            raise WeightsNotFoundError(f"{file}: not torchvision VGG19 weights ({exc})") from None
        self.features = vgg.features[: VGG19_TAPS[-1] + 1]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.freeze()

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = ((images + 1) / 2 - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in VGG19_TAPS:
                out.append(x)
        return out


class DlibResNetFeatures(_Backbone):
    """The ported face ResNet's maps after the stem and each stage, on the whole image resized to
    150x150 (the context around the face counts too, so no chip crop here)."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.net = load_dlib_resnet(path)
        self.freeze()

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = F.interpolate(to_255(images), size=(150, 150), mode="bilinear", align_corners=False)
        return self.net.features(x)[1]


def build_backbone(name: str, path: str | os.PathLike | None = None) -> _Backbone:
    """One of :data:`BACKBONES`, with its weights (``path`` overrides where they are read from)."""
    if name == "efficientnet-lite0":
        return EfficientNetFeatures(path)
    if name == "vgg19":
        return VGG19Features(path)
    if name == "dlib-resnet":
        return DlibResNetFeatures(path)
    raise ConfigError(f"unknown perceptual backbone {name!r}; choose one of {', '.join(BACKBONES)}")
