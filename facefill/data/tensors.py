"""The one home of image <-> tensor conversions and of the generator's masked input.

Conventions used everywhere in facefill:

* images on disk and in NumPy: ``(H, W, 3) uint8`` RGB (a batch: ``(B, H, W, 3)``);
* images in models: ``(B, 3, H, W) float32`` in ``[-1, 1]`` ("signed") or ``[0, 1]`` ("unit");
* masks: ``(B, 1, H, W)`` float in ``[0, 1]``, 1 = face (kept), 0 = context (hallucinated).

Float -> uint8 always rounds to nearest (``round``), never truncates, so a round trip
``to_uint8(from_uint8(x)) == x`` holds exactly.
"""

from __future__ import annotations

import numpy as np
import torch

#: What the generator sees outside the face: -1 (black in [-1, 1]). The generator was trained
#: with this value, so ``mask.fill`` (the colour ``facefill mask`` paints into its PNGs for
#: people to look at) never reaches the model: hallucinate rebuilds the input from the mask.
MASKED_VALUE = -1.0


def from_uint8(images: np.ndarray | list[np.ndarray], device: str | torch.device = "cpu",
               signed: bool = True) -> torch.Tensor:
    """``(H, W, 3)`` or ``(B, H, W, 3) uint8`` -> ``(B, 3, H, W) float32`` in [-1, 1]
    (``signed``) or [0, 1]."""
    arr = np.stack(images) if isinstance(images, list) else images
    if arr.ndim == 3:
        arr = arr[None]
    x = torch.from_numpy(np.ascontiguousarray(arr)).to(device).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1 if signed else x / 255.0


def to_uint8(x: torch.Tensor, signed: bool = True) -> np.ndarray:
    """``(B, 3, H, W)`` (or ``(3, H, W)``) float in [-1, 1] (``signed``) or [0, 1] -> ``(B, H, W, 3)``
    (or ``(H, W, 3)``) uint8, clamped and rounded to nearest. C-contiguous: a strided view would
    be misread by libraries that take the raw buffer (dlib's detector found no face in such a
    view in about one process in four)."""
    x = x.detach().float()
    x = (x.clamp(-1, 1) + 1) * 127.5 if signed else x.clamp(0, 1) * 255
    x = x.round().to(torch.uint8)
    perm = (0, 2, 3, 1) if x.dim() == 4 else (1, 2, 0)
    return np.ascontiguousarray(x.permute(*perm).cpu().numpy())


def masks_from_numpy(masks: np.ndarray | list[np.ndarray], device: str | torch.device = "cpu") -> torch.Tensor:
    """``(H, W)`` or ``(B, H, W)`` float masks in [0, 1] -> ``(B, 1, H, W) float32``."""
    arr = np.stack(masks) if isinstance(masks, list) else masks
    if arr.ndim == 2:
        arr = arr[None]
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).to(device)[:, None]


def masked_input(images: torch.Tensor, masks: torch.Tensor, fill: float = MASKED_VALUE) -> torch.Tensor:
    """The generator's input: ``(B, 3, H, W)`` in [-1, 1] with the context (``mask == 0``) set
    to ``fill``; a soft mask blends linearly. ``masks``: ``(B, 1, H, W)`` in [0, 1]."""
    return images * masks + fill * (1 - masks)


def apply_mask_uint8(image: np.ndarray, mask: np.ndarray, fill: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """``(H, W, 3) uint8`` image, ``(H, W)`` mask in [0, 1] -> masked ``uint8``, outside = ``fill``
    (what ``facefill mask`` writes for people to look at)."""
    m = mask[..., None].astype(np.float32)
    out = image.astype(np.float32) * m + np.asarray(fill, np.float32) * (1 - m)
    return (out + 0.5).clip(0, 255).astype(np.uint8)


def signed_from_uint8_tensor(x: torch.Tensor) -> torch.Tensor:
    """``(..., 3, H, W) uint8`` tensor (on any device) -> the same shape, ``float32`` in [-1, 1]:
    the values :func:`from_uint8` gives for the same pixels, without a trip through NumPy
    (training data kept on the GPU)."""
    return x.float() / 127.5 - 1
