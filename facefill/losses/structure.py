"""The structure (SSIM) term, on the image a user gets: the real face pasted over the fake.

``facefill hallucinate`` keeps the real face (``--keep-face``, the default), so the face pixels the
generator draws are thrown away, and what ``facefill evaluate`` scores is the composite
``mask * real + (1 - mask) * fake``. This term is ``1 - SSIM`` of that composite against the real
photo, with the settings ``evaluate`` reports (:data:`facefill.metrics.ssim.SSIM_SETTINGS`). Its
gradient reaches only the context pixels, and most strongly those next to the face, where an 11x11
window sees both. An L1 term alone draws the median of the possible contexts, a flat blur with
little local contrast; SSIM also rewards the contrast and structure of the real context.
"""

from __future__ import annotations

import torch

from facefill.metrics.ssim import SSIM_SETTINGS
from facefill.runtime import import_piq


def keep_face(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``mask * real + (1 - mask) * fake``: ``(B, 3, N, N)`` images in [-1, 1], ``mask``
    ``(B, 1, N, N)`` in [0, 1] (1 = face)."""
    return mask * real + (1 - mask) * fake


def structure_loss(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``1 - mean SSIM`` of :func:`keep_face` against ``real``: a scalar in [0, 2], 0 when the
    context equals the real one. Images ``(B, 3, N, N)`` in [-1, 1] with N >= 11 (the window);
    ``mask`` ``(B, 1, N, N)`` in [0, 1]. Invalid (padding) pixels must already be the real's
    (:func:`facefill.losses.pixel.fill_invalid`)."""
    piq = import_piq()

    n = fake.shape[-1]
    if n < SSIM_SETTINGS["kernel_size"]:
        raise ValueError(f"the SSIM window is {SSIM_SETTINGS['kernel_size']} px; got {n} px images")
    composite = keep_face(fake, real, mask)
    x = ((composite + 1) / 2).clamp(0, 1)
    y = ((real + 1) / 2).clamp(0, 1)
    return 1 - piq.ssim(x, y, reduction="mean", **SSIM_SETTINGS)
