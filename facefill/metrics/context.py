"""Metrics over the hallucinated region only: the context, i.e. the pixels outside the face mask.

Whole-image scores reward keeping the face (which facefill copies bit-exactly), so they say
little about the hallucination itself. These score only what was generated.

Conventions (batched torch):

- ``pred``, ``real``: ``(B, 3, H, W)`` float in ``value_range`` (default ``(0, 1)``; pass
  ``(-1, 1)`` for generator-space tensors). Both are mapped to [0, 1] first, so every value below
  is on the [0, 1] scale whatever the input range: a context L1 of 0.1 is 10 % of full range.
- ``face_mask``: ``(B, 1, H, W)`` (or ``(B, H, W)``) in [0, 1], 1 = face. A pixel is context when
  ``face_mask <= 0.5``, the complement of what ``keep_face`` pastes back (``mask > 0.5``).
- Returns a ``(B,)`` tensor, one score per image; NaN for an image with no context pixel.

:func:`context_ssim` uses exactly facefill's SSIM (:mod:`facefill.metrics.ssim`, ``SSIM_SETTINGS``: piq's
Gaussian 11x11 window, sigma 1.5, k1 0.01, k2 0.03, data range 1, no downsampling, "valid"
filtering, so the map covers the window centres ``[5, H-5) x [5, W-5)``, channels averaged). The
map is averaged over the context window *centres*. With ``window="centre"`` (the default) a window
centred on a context pixel near the face counts even though it straddles the mask edge and so
sees some face pixels; with ``window="inside"`` only windows lying entirely in the context count
(the mask is dilated by the window radius first). With an all-context mask, ``window="centre"``
equals whole-image ``piq.ssim`` with the same settings.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from facefill.errors import FacefillError
from facefill.metrics.ssim import SSIM_SETTINGS

WINDOWS = ("centre", "inside")


def _prepare(pred: torch.Tensor, real: torch.Tensor, face_mask: torch.Tensor,
             value_range: tuple[float, float]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if pred.shape != real.shape or pred.dim() != 4:
        raise ValueError(f"pred and real must both be (B, C, H, W); got {tuple(pred.shape)} and {tuple(real.shape)}")
    if face_mask.dim() == 3:
        face_mask = face_mask[:, None]
    b, _, h, w = pred.shape
    if face_mask.shape != (b, 1, h, w):
        raise ValueError(f"face_mask must be (B, 1, H, W) = {(b, 1, h, w)}; got {tuple(face_mask.shape)}")
    lo, hi = value_range
    if hi <= lo:
        raise ValueError(f"value_range must be (low, high) with low < high; got {value_range}")
    scale = 1.0 / (hi - lo)
    dtype = torch.promote_types(pred.dtype, torch.float32)  # float64 stays float64
    x = (pred.to(dtype) - lo) * scale
    y = (real.to(dtype) - lo) * scale
    context = (face_mask.to(x.device) <= 0.5).to(x.dtype)
    return x, y, context


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per image: sum(values * weights) / sum(weights) over all but the batch dim (NaN if 0/0)."""
    dims = tuple(range(1, values.dim()))
    return (values * weights).sum(dims) / weights.sum(dims)


def context_l1(pred: torch.Tensor, real: torch.Tensor, face_mask: torch.Tensor,
               value_range: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """Mean absolute difference over the context pixels and the 3 channels, on the [0, 1] scale.
    ``(B,)``; lower is better."""
    x, y, context = _prepare(pred, real, face_mask, value_range)
    diff = (x - y).abs().mean(1, keepdim=True)  # channel mean, then the masked spatial mean
    return _weighted_mean(diff, context)


def ssim_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """piq's per-pixel SSIM with ``SSIM_SETTINGS`` for ``(B, C, H, W)`` in [0, 1], channels averaged:
    ``(B, 1, H - k + 1, W - k + 1)``, entry ``(i, j)`` for the window centred at ``(i + k//2, j + k//2)``."""
    from facefill.runtime import import_piq

    import_piq()  # a torchvision that does not fit torch: one line, not piq's traceback
    from piq.functional import gaussian_filter

    k, sigma = SSIM_SETTINGS["kernel_size"], SSIM_SETTINGS["kernel_sigma"]
    if x.shape[-1] < k or x.shape[-2] < k:
        raise FacefillError(f"images must be at least {k}x{k} for SSIM; got {x.shape[-1]}x{x.shape[-2]}")
    c1 = SSIM_SETTINGS["k1"] ** 2
    c2 = SSIM_SETTINGS["k2"] ** 2
    x = x / SSIM_SETTINGS["data_range"]
    y = y / SSIM_SETTINGS["data_range"]
    n = x.shape[1]
    kernel = gaussian_filter(k, sigma, device=x.device, dtype=x.dtype).repeat(n, 1, 1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel, stride=1, padding=0, groups=n)

    mu_x, mu_y = blur(x), blur(y)
    mu_xx, mu_yy, mu_xy = mu_x ** 2, mu_y ** 2, mu_x * mu_y
    sigma_xx = blur(x * x) - mu_xx
    sigma_yy = blur(y * y) - mu_yy
    sigma_xy = blur(x * y) - mu_xy
    cs = (2.0 * sigma_xy + c2) / (sigma_xx + sigma_yy + c2)
    ss = (2.0 * mu_xy + c1) / (mu_xx + mu_yy + c1) * cs
    return ss.mean(1, keepdim=True)


def context_ssim(pred: torch.Tensor, real: torch.Tensor, face_mask: torch.Tensor,
                 value_range: tuple[float, float] = (0.0, 1.0), window: str = "centre") -> torch.Tensor:
    """SSIM map averaged over the context window centres (see the module doc for ``window``).
    ``(B,)``; higher is better, 1 = identical context."""
    if window not in WINDOWS:
        raise FacefillError(f"window must be one of {', '.join(WINDOWS)}; got {window!r}")
    x, y, context = _prepare(pred, real, face_mask, value_range)
    smap = ssim_map(x, y)
    k = SSIM_SETTINGS["kernel_size"]
    if window == "centre":
        r = k // 2
        weights = context[..., r:context.shape[-2] - r, r:context.shape[-1] - r]
    else:  # the whole window in the context: no face pixel anywhere in it
        weights = 1.0 - F.max_pool2d(1.0 - context, k, stride=1)
    return _weighted_mean(smap, weights)
