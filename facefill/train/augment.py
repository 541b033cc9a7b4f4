"""Training augmentation: a random similarity warp and colour jitter, exactly reproducible.

:func:`augment` applies one random similarity transform (scale, rotation about the image centre,
shift) to an aligned photo, its 68 landmarks and its validity mask together, then jitters the
photo's colours (brightness, contrast, saturation, hue). The random numbers come from a
``torch.Generator`` seeded with a hash of ``(seed, epoch, index)``, so an item gets the same
augmentation whatever the worker, the batch order or a resume: what makes ``--resume`` exact.

Conventions, shared with :mod:`facefill.align.warp` and :mod:`facefill.train.data`:

- ``image``: ``(3, H, W)`` or ``(B, 3, H, W)`` float in [-1, 1].
- ``landmarks``: ``(68, 2)`` or ``(B, 68, 2)`` ``(x, y)`` pixels, integer = pixel centre.
- ``valid``: ``(1, H, W)`` or ``(B, 1, H, W)``, 1 = the pixel came from the photo (None = all 1).
- The warp is bilinear (kornia ``warp_affine``, ``align_corners=True``); the landmarks go through
  the same ``(2, 3)`` source->output matrix. An output pixel stays valid only when every source
  pixel bilinear sampling reads for it is valid and inside the frame; the others get ``valid = 0``
  and image value -1 (black, as alignment pads), so losses can ignore them.
- Colour jitter touches valid image pixels only: brightness multiplies by ``b``, contrast blends
  with the mean grey level of the valid pixels by ``c``, saturation blends with each pixel's grey
  by ``s`` (torchvision's definitions), hue rotates by ``h`` of a full turn (kornia
  ``adjust_hue``); applied in that order on [0, 1], clamped after each.
- Disabled (``AugmentConfig()`` has both switches off) returns the inputs unchanged.

Every item draws the same eight numbers in the same order whatever is switched on, so turning
colour jitter on does not change the geometry an item gets.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Sequence

import torch

from facefill.config import AugmentConfig  # noqa: F401  (defined once, in config; re-exported here)

#: pixels whose warped validity is below this had at least one invalid or outside source tap
VALID_THRESHOLD = 0.999


@dataclass(frozen=True)
class AugmentParams:
    """One item's draw. The identity is ``AugmentParams()``."""

    scale: float = 1.0
    angle: float = 0.0  # degrees
    shift_x: float = 0.0  # fraction of the width
    shift_y: float = 0.0  # fraction of the height
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    hue: float = 0.0  # fraction of a turn


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A CPU generator seeded by a hash of ``(seed, epoch, index)``: independent of any global state."""
    digest = hashlib.sha256(f"facefill.augment:{int(seed)}:{int(epoch)}:{int(index)}".encode()).digest()
    g = torch.Generator(device="cpu")
    g.manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))
    return g


def draw_params(cfg: AugmentConfig, seed: int, epoch: int, index: int) -> AugmentParams:
    """The augmentation of item ``index`` in ``epoch`` of a run seeded ``seed``."""
    u = torch.rand(8, generator=item_generator(seed, epoch, index), dtype=torch.float64).tolist()

    def sym(v: float, amount: float) -> float:  # uniform in [-amount, amount]
        return (2.0 * v - 1.0) * amount

    p = {}
    if cfg.geometric:
        lo, hi = cfg.scale
        p.update(scale=lo + u[0] * (hi - lo), angle=sym(u[1], cfg.rotate),
                 shift_x=sym(u[2], cfg.shift), shift_y=sym(u[3], cfg.shift))
    if cfg.color:
        p.update(brightness=1.0 + sym(u[4], cfg.brightness), contrast=1.0 + sym(u[5], cfg.contrast),
                 saturation=1.0 + sym(u[6], cfg.saturation), hue=sym(u[7], cfg.hue))
    return AugmentParams(**p)


def similarity_matrix(p: AugmentParams, height: int, width: int) -> torch.Tensor:
    """``(2, 3)`` float64 source->output pixel matrix: scale and rotate about the image centre
    ``((W - 1) / 2, (H - 1) / 2)``, then shift by ``(shift_x * W, shift_y * H)`` pixels."""
    a = math.radians(p.angle)
    cos, sin = p.scale * math.cos(a), p.scale * math.sin(a)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    tx = cx - (cos * cx - sin * cy) + p.shift_x * width
    ty = cy - (sin * cx + cos * cy) + p.shift_y * height
    return torch.tensor([[cos, -sin, tx], [sin, cos, ty]], dtype=torch.float64)


def transform_landmarks(landmarks: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """``(..., N, 2)`` points through ``(..., 2, 3)`` matrices, in the points' dtype."""
    m = matrix.to(torch.float64)
    pts = landmarks.to(torch.float64)
    out = pts @ m[..., :2].transpose(-1, -2) + m[..., None, :, 2]
    return out.to(landmarks.dtype)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of ``(B, 3, H, W)``, ``(B, 1, H, W)``."""
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def colour_jitter(image: torch.Tensor, params: Sequence[AugmentParams], valid: torch.Tensor) -> torch.Tensor:
    """Jitter ``(B, 3, H, W)`` images in [-1, 1] with one ``AugmentParams`` per item; pixels with
    ``valid < 0.5`` are returned unchanged."""
    from kornia.enhance import adjust_hue

    def col(name: str) -> torch.Tensor:
        return torch.tensor([getattr(p, name) for p in params], dtype=image.dtype,
                            device=image.device).view(-1, 1, 1, 1)

    keep = valid >= 0.5
    x = (image + 1) * 0.5
    x = (x * col("brightness")).clamp(0, 1)
    w = keep.to(x.dtype)
    grey = (_gray(x) * w).sum((1, 2, 3), keepdim=True) / w.sum((1, 2, 3), keepdim=True).clamp_min(1)
    c = col("contrast")
    x = (c * x + (1 - c) * grey).clamp(0, 1)
    s = col("saturation")
    x = (s * x + (1 - s) * _gray(x)).clamp(0, 1)
    if any(p.hue != 0 for p in params):  # decided from the draws on the host: no device read-back
        x = adjust_hue(x, col("hue").view(-1) * 2 * math.pi).clamp(0, 1)
    return torch.where(keep.expand_as(image), x * 2 - 1, image)


def augment(
    image: torch.Tensor,
    landmarks: torch.Tensor,
    valid: torch.Tensor | None = None,
    cfg: AugmentConfig = AugmentConfig(),
    *,
    seed: int,
    epoch: int,
    index: int | Sequence[int],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Augment one item (``image (3, H, W)``, ``landmarks (68, 2)``, ``valid (1, H, W)``, ``index``
    an int) or a batch (leading ``B``, ``index`` a sequence of B ints). Returns ``(image, landmarks,
    valid)`` in the input shapes; ``valid`` is float {0, 1} (a copy of the input, or ones, when
    nothing moves). See the module doc for the conventions."""
    single = image.dim() == 3
    if single:
        image, landmarks = image[None], landmarks[None]
        valid = valid[None] if valid is not None else None
        indices = [int(index)]
    else:
        indices = [int(i) for i in index]
    b, c, h, w = image.shape
    if c != 3 or landmarks.shape[0] != b or landmarks.shape[-1] != 2 or len(indices) != b:
        raise ValueError(f"augment: image {tuple(image.shape)}, landmarks {tuple(landmarks.shape)} and "
                         f"{len(indices)} indices do not describe the same batch")
    if valid is None:
        valid = torch.ones(b, 1, h, w, dtype=image.dtype, device=image.device)
    elif valid.shape != (b, 1, h, w):
        raise ValueError(f"augment: valid must be {(b, 1, h, w)}, got {tuple(valid.shape)}")
    valid = (valid >= 0.5).to(image.dtype)

    if cfg.enabled:
        params = [draw_params(cfg, seed, epoch, i) for i in indices]
        if cfg.geometric:
            m = torch.stack([similarity_matrix(p, h, w) for p in params])
            from kornia.geometry.transform import warp_affine

            stacked = torch.cat([(image + 1) * valid, valid], dim=1)  # 0 outside: black, invalid
            out = warp_affine(stacked, m.to(device=image.device, dtype=image.dtype), dsize=(h, w),
                              mode="bilinear", padding_mode="zeros", align_corners=True)
            valid = (out[:, 3:] > VALID_THRESHOLD).to(image.dtype)
            image = torch.where(valid.bool().expand_as(image), out[:, :3] - 1, torch.full_like(image, -1.0))
            landmarks = transform_landmarks(landmarks, m.to(landmarks.device))
        if cfg.color:
            image = colour_jitter(image, params, valid)
    if single:
        return image[0], landmarks[0], valid[0]
    return image, landmarks, valid
