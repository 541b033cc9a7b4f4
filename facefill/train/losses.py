"""The four per-scale loss terms of the paper, each with a weight and an on/off switch.

``L = sum over scales N of  w_pixel L_pixel + w_adv L_adv + w_id L_id + w_pc L_pc``

* ``L_pixel``: mean L1 (or L2 with ``loss.pixel = "l2"``) between block N's output and the real
  photo area-resized to N x N.
* ``L_adv``: one conditional PatchGAN per scale. The GAN loss is ``loss.gan``: ``hinge``
  (default; stable with patch critics, as in SAGAN/BigGAN), ``nonsaturating`` (the original GAN's
  generator loss with softplus) or ``lsgan`` (least squares, targets 0/1).
* ``L_id``: :class:`~facefill.models.embedders.IdentityLoss` (1 - cosine of dlib-ResNet
  descriptors of dlib's face chip), at scales >= ``loss.feature_min_scale``.
* ``L_pc``: :class:`~facefill.models.embedders.PerceptualLoss` on ``loss.perceptual``'s features,
  at scales >= ``loss.feature_min_scale``. Below that (8, 16 px) a face chip or ImageNet features
  carry no information, so the terms are skipped there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facefill.config import LossConfig
from facefill.errors import ConfigError
from facefill.models.generator import pyramid

GAN_LOSSES = ("hinge", "nonsaturating", "lsgan")


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    if kind == "nonsaturating":
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    if kind == "lsgan":
        return 0.5 * ((real_logits - 1) ** 2).mean() + 0.5 * (fake_logits ** 2).mean()
    raise ConfigError(f"loss.gan must be one of {', '.join(GAN_LOSSES)}, not {kind!r}")


def g_adv_loss(fake_logits: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "hinge":
        return -fake_logits.mean()
    if kind == "nonsaturating":
        return F.softplus(-fake_logits).mean()
    if kind == "lsgan":
        return 0.5 * ((fake_logits - 1) ** 2).mean()
    raise ConfigError(f"loss.gan must be one of {', '.join(GAN_LOSSES)}, not {kind!r}")


def scale_landmarks(landmarks: torch.Tensor, src: int, dst: int) -> torch.Tensor:
    """Pixel-centre landmarks of an ``src``-sized image in a ``dst``-sized resize of it."""
    return (landmarks + 0.5) * (dst / src) - 0.5


class GeneratorObjective(nn.Module):
    """Per-scale generator loss. ``forward`` returns ``(total, {name: value})`` with names like
    ``pixel@64``; a term that is switched off (``use_* = False`` or weight 0) is not computed."""

    def __init__(self, cfg: LossConfig, identity: nn.Module | None = None, perceptual: nn.Module | None = None) -> None:
        super().__init__()
        if cfg.pixel not in ("l1", "l2"):
            raise ConfigError(f"loss.pixel must be l1 or l2, not {cfg.pixel!r}")
        if cfg.gan not in GAN_LOSSES:
            raise ConfigError(f"loss.gan must be one of {', '.join(GAN_LOSSES)}, not {cfg.gan!r}")
        self.cfg = cfg
        self.identity = identity if self.on("id") else None
        self.perceptual = perceptual if self.on("pc") else None
        if self.on("id") and identity is None or self.on("pc") and perceptual is None:
            raise ValueError("identity/perceptual networks are needed for the switched-on terms")

    def on(self, term: str) -> bool:
        return bool(getattr(self.cfg, f"use_{term}")) and getattr(self.cfg, f"w_{term}") > 0

    def forward(self, outputs: dict[int, torch.Tensor], real: torch.Tensor, landmarks: torch.Tensor,
                fake_logits: dict[int, torch.Tensor] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.cfg
        targets = pyramid(real, tuple(outputs))
        total = real.new_zeros(())
        terms: dict[str, float] = {}

        def add(name: str, weight: float, value: torch.Tensor) -> None:
            nonlocal total
            total = total + weight * value
            terms[name] = float(value.detach())

        for n, out in outputs.items():
            if self.on("pixel"):
                diff = out - targets[n]
                add(f"pixel@{n}", cfg.w_pixel, diff.abs().mean() if cfg.pixel == "l1" else (diff ** 2).mean())
            if self.on("adv") and fake_logits is not None and n in fake_logits:
                add(f"adv@{n}", cfg.w_adv, g_adv_loss(fake_logits[n], cfg.gan))
            if n >= cfg.feature_min_scale:
                if self.identity is not None:
                    lm = scale_landmarks(landmarks, real.shape[-1], n)
                    add(f"id@{n}", cfg.w_id, self.identity(out, targets[n], lm))
                if self.perceptual is not None:
                    add(f"pc@{n}", cfg.w_pc, self.perceptual(out, targets[n]))
        return total, terms
