"""Laplacian-pyramid blending (Burt and Adelson, 1983), batched, on any device.

Pyramids are Burt and Adelson's (and OpenCV's ``pyrDown``/``pyrUp``): blur with the 5x5 binomial
kernel (kornia's ``filter2d``, reflect-101 borders) and keep every other pixel; expand by
inserting zeros and blurring with 4x the kernel. (kornia's own ``pyrdown``/``pyrup`` resample
bilinearly instead, which shifts each level by half a pixel; against an OpenCV blend that costs
about 3/255 mean error, the decimating version matches it to rounding.) Each side is first
padded (reflect) to a multiple of ``2^(levels-1)`` so every level halves exactly; the result is
cropped back. Level ``k`` of the output is ``m_k * L_k(fg) + (1 - m_k) * L_k(bg)`` with
``m_k`` the Gaussian pyramid of the (optionally feathered) mask; collapsing sums the levels back
up. ``collapse(laplacian_pyramid(x, n)) == x`` to float precision, for any size.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from kornia.filters import filter2d, gaussian_blur2d
from torch import nn

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])


def _blur(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """5x5 binomial blur, reflect-101 borders; ``gain`` scales the result."""
    k = torch.outer(_BINOMIAL, _BINOMIAL).to(device=x.device, dtype=x.dtype)[None] * (gain / 256.0)
    return filter2d(x, k, border_type="reflect")


def pyrdown(x: torch.Tensor) -> torch.Tensor:
    """Blur (5x5 binomial) and decimate: ``(B, C, H, W)`` -> ``(B, C, ceil(H/2), ceil(W/2))``."""
    return _blur(x)[..., ::2, ::2]


def pyrup(x: torch.Tensor) -> torch.Tensor:
    """Insert zeros and blur with 4x the kernel: ``(B, C, H, W)`` -> ``(B, C, 2H, 2W)``."""
    b, c, h, w = x.shape
    up = x.new_zeros(b, c, 2 * h, 2 * w)
    up[..., ::2, ::2] = x
    return _blur(up, 4.0)


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def gaussian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    out = [x]
    for _ in range(levels - 1):
        out.append(pyrdown(out[-1]))
    return out


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """``(B, C, H, W)`` with H, W multiples of ``2^(levels-1)`` -> ``levels`` band-pass images
    (finest first) whose last entry is the coarsest Gaussian level."""
    gauss = gaussian_pyramid(x, levels)
    return [g - pyrup(gauss[i + 1]) for i, g in enumerate(gauss[:-1])] + [gauss[-1]]


def collapse(pyramid: list[torch.Tensor]) -> torch.Tensor:
    """Inverse of :func:`laplacian_pyramid`."""
    x = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        x = pyrup(x) + band
    return x


def laplacian_blend(foreground: torch.Tensor, background: torch.Tensor, mask: torch.Tensor,
                    levels: int = 5, feather: float = 0.0) -> torch.Tensor:
    """Blend ``foreground`` over ``background`` where ``mask`` is 1.

    Args:
        foreground, background: ``(B, C, H, W)``, any range (same for both), any H, W.
        mask: ``(B, 1, H, W)`` (or ``(B, C, H, W)``) in [0, 1]; 1 = foreground.
        levels: pyramid levels (1 = plain alpha blending).
        feather: Gaussian sigma in pixels applied to the mask first (0 = none).
    Returns ``(B, C, H, W)``, same dtype and range.
    """
    if foreground.shape != background.shape:
        raise ValueError(f"foreground {tuple(foreground.shape)} and background {tuple(background.shape)} differ")
    if mask.shape[0] != foreground.shape[0] or mask.shape[-2:] != foreground.shape[-2:]:
        raise ValueError(f"mask {tuple(mask.shape)} does not fit images {tuple(foreground.shape)}")
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    h, w = foreground.shape[-2:]
    mask = mask.to(foreground.dtype)
    if feather > 0:
        k = 2 * int(3 * feather) + 1
        mask = gaussian_blur2d(mask, (k, k), (feather, feather), border_type="replicate")
    mult = 2 ** (levels - 1)
    fg, bg, m = (_pad_to_multiple(t, mult) for t in (foreground, background, mask))
    lf, lb, gm = laplacian_pyramid(fg, levels), laplacian_pyramid(bg, levels), gaussian_pyramid(m, levels)
    out = collapse([mk * a + (1 - mk) * b for a, b, mk in zip(lf, lb, gm)])
    return out[..., :h, :w]


class LaplacianBlend(nn.Module):
    """:func:`laplacian_blend` as a module: ``LaplacianBlend(levels, feather)(fg, bg, mask)``."""

    def __init__(self, levels: int = 5, feather: float = 0.0) -> None:
        super().__init__()
        self.levels = levels
        self.feather = feather

    def forward(self, foreground: torch.Tensor, background: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return laplacian_blend(foreground, background, mask, self.levels, self.feather)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, feather={self.feather}"


def opencv_laplacian_blend(foreground: np.ndarray, background: np.ndarray, mask: np.ndarray, levels: int = 5) -> np.ndarray:
    """The same blend with OpenCV's ``pyrDown``/``pyrUp`` on one ``(H, W, C)`` float32 image pair and
    an ``(H, W)`` mask: the CPU reference the tests and ``benchmarks/blend.py`` compare against."""
    def gauss(x):
        out = [x]
        for _ in range(levels - 1):
            out.append(cv2.pyrDown(out[-1]))
        return out

    def lap(x):
        g = gauss(x)
        return [g[i] - cv2.pyrUp(g[i + 1], dstsize=(g[i].shape[1], g[i].shape[0])) for i in range(levels - 1)] + [g[-1]]

    bands = [mk[..., None] * a + (1 - mk[..., None]) * b for a, b, mk in zip(lap(foreground), lap(background), gauss(mask))]
    x = bands[-1]
    for band in reversed(bands[:-1]):
        x = cv2.pyrUp(x, dstsize=(band.shape[1], band.shape[0])) + band
    return x
