"""Pretrained networks for the identity and perceptual losses and the match score, offline.

* :class:`FaceEmbedder` -- dlib's face-recognition ResNet ported to PyTorch
  (:mod:`facefill.models.dlib_resnet`) behind dlib's face-chip crop done with kornia
  (:mod:`facefill.models.chip`): images + landmarks -> 128-d descriptors, differentiable.
* :class:`IdentityLoss` -- ``1 - cos(e(fake), e(real))`` (default), or dlib's Euclidean distance.
* :class:`PerceptualLoss` -- mean L1 distance of intermediate feature maps of a backbone:
  ``efficientnet-lite0`` (default; ImageNet weights ship in a registry package, so it works
  offline and in CI), ``vgg19`` (the classic choice; torchvision weights from the torch hub
  cache, or downloaded where the network allows) or ``dlib-resnet`` (face-specific features).

Images are ``(B, 3, H, W)`` RGB in [-1, 1] (the generator's range) everywhere in this module.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facefill.config import PERCEPTUAL_BACKBONES
from facefill.errors import ConfigError, FacefillError, WeightsNotFoundError
from facefill.models.chip import TEMPLATE_5, extract_chips
from facefill.models.dlib_resnet import DlibFaceResNet, load_dlib_resnet
from facefill.models.efficientnet_lite import (IMAGENET_MEAN, IMAGENET_STD, efficientnet_lite0_path,
                                               load_efficientnet_lite0)

VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_URL = "https://download.pytorch.org/models/" + VGG19_FILE
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


class IdentityLoss(nn.Module):
    """Identity distance between generated and real faces, averaged over the batch.

    ``distance="cosine"`` (default): ``1 - cos(e_fake, e_real)``, in [0, 2], scale-free and the
    same quantity the ``match`` metric reports. ``"euclidean"``: dlib's own distance (same person
    when < 0.6). ``real`` is the target and gets no gradient.
    """

    def __init__(self, embedder: FaceEmbedder | None = None, distance: str = "cosine") -> None:
        super().__init__()
        if distance not in ("cosine", "euclidean"):
            raise ConfigError(f"identity distance must be cosine or euclidean, not {distance!r}")
        self.embedder = embedder if embedder is not None else FaceEmbedder()
        self.distance = distance

    def forward(self, fake: torch.Tensor, real: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        e_fake = self.embedder(fake, landmarks)
        with torch.no_grad():
            e_real = self.embedder(real, landmarks)
        if self.distance == "cosine":
            return (1 - F.cosine_similarity(e_fake, e_real, dim=1)).mean()
        return (e_fake - e_real).norm(dim=1).mean()


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


def vgg19_path() -> Path:
    """Where torchvision keeps the VGG19 ImageNet weights: ``$TORCH_HOME/hub/checkpoints/``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


class VGG19Features(_Backbone):
    """torchvision's VGG19 ``features`` up to relu5_4. Weights: ``path``, else the torch hub cache,
    else a download when ``download=True`` (the network must allow it)."""

    def __init__(self, path: str | os.PathLike | None = None, download: bool = False) -> None:
        super().__init__()
        import torchvision

        file = Path(path) if path is not None else vgg19_path()
        if not file.is_file():
            if path is None and download:
                try:
                    torch.hub.load_state_dict_from_url(VGG19_URL, progress=False)
                except Exception as exc:
                    raise WeightsNotFoundError(f"VGG19 weights could not be downloaded ({exc}); "
                                               f"put {VGG19_FILE} from {VGG19_URL} in {file.parent}") from None
            else:
                raise WeightsNotFoundError(
                    f"VGG19 weights not found at {file}: download {VGG19_URL} into {file.parent} "
                    "(or pass the file's path), or use the efficientnet-lite0 backbone, which ships offline")
        try:
            state = torch.load(file, map_location="cpu", weights_only=True)
            vgg = torchvision.models.vgg19()
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


def build_backbone(name: str, path: str | os.PathLike | None = None, download: bool = False) -> _Backbone:
    """One of :data:`BACKBONES`, with its weights (``path`` overrides where they are read from)."""
    if name == "efficientnet-lite0":
        return EfficientNetFeatures(path)
    if name == "vgg19":
        return VGG19Features(path, download=download)
    if name == "dlib-resnet":
        return DlibResNetFeatures(path)
    raise ConfigError(f"unknown perceptual backbone {name!r}; choose one of {', '.join(BACKBONES)}")


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


