"""SSIM as facefill reports it: piq's, on [0, 1] RGB, Gaussian 11x11 window with sigma 1.5,
k1 0.01, k2 0.03, data range 1, no downsampling, averaged over channels."""

from __future__ import annotations

import torch

SSIM_SETTINGS = {"kernel_size": 11, "kernel_sigma": 1.5, "k1": 0.01, "k2": 0.03, "data_range": 1.0, "downsample": False}


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM ``(B,)`` in [-1, 1] of ``(B, 3, H, W)`` images in [0, 1]."""
    from facefill.runtime import import_piq

    return import_piq().ssim(x, y, reduction="none", **SSIM_SETTINGS)
