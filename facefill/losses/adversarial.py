"""GAN losses on patch logits (any shape), ``loss.gan``:

* ``hinge`` (default; stable with patch critics, as in SAGAN/BigGAN):
  D ``relu(1 - r) + relu(1 + f)``, G ``-f``;
* ``nonsaturating`` (the original GAN with the non-saturating G loss):
  D ``softplus(-r) + softplus(f)``, G ``softplus(-f)``;
* ``lsgan`` (least squares, targets 1/0): D ``(r - 1)^2 / 2 + f^2 / 2``, G ``(f - 1)^2 / 2``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from facefill.config import GAN_KINDS
from facefill.errors import ConfigError


def _check(kind: str) -> None:
    if kind not in GAN_KINDS:
        raise ConfigError(f"loss.gan must be one of {', '.join(GAN_KINDS)}, not {kind!r}")


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "hinge") -> torch.Tensor:
    """The discriminator's loss (scalar): low when real logits are high and fake ones low."""
    _check(kind)
    if kind == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    if kind == "nonsaturating":
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    return 0.5 * ((real_logits - 1) ** 2).mean() + 0.5 * (fake_logits ** 2).mean()


def g_loss(fake_logits: torch.Tensor, kind: str = "hinge") -> torch.Tensor:
    """The generator's adversarial loss (scalar): low when the fake logits are high."""
    _check(kind)
    if kind == "hinge":
        return -fake_logits.mean()
    if kind == "nonsaturating":
        return F.softplus(-fake_logits).mean()
    return 0.5 * ((fake_logits - 1) ** 2).mean()
