"""The per-scale objectives: every switched-on term at every scale, weighted by ``[loss]``.

``L_G = sum over scales N of  pixel * L_pixel + adv * L_adv + id * L_id + pc * L_pc + ssim * L_ssim``,
where the weights are ``loss.pixel``, ``loss.adv``, ``loss.id``, ``loss.pc`` and ``loss.ssim`` (0 =
the term is off and not computed). ``L_id``, ``L_pc`` and ``L_ssim`` apply from
``loss.feature_min_scale`` (32) up: at 8 and 16 px a face chip or ImageNet features carry no
information. ``L_ssim`` (:mod:`facefill.losses.structure`) scores the fake with the real face
pasted back, as ``hallucinate`` delivers it, so it needs the face mask.

Validity: every term that compares with the real photo ignores its invalid (padded) pixels.
The pixel loss averages over valid pixels; the critic, the identity and the perceptual networks
see the fake with its invalid pixels replaced by the real's (:func:`fill_invalid`), so that a
critic cannot tell a fake from the padding and no gradient reaches an invalid pixel.

Loss names are hierarchical: ``loss/G/pixel/64``, ``loss/G/adv/64``, ``loss/G/id/64``,
``loss/G/pc/64``, ``loss/G/ssim/64``, ``loss/G/total``, ``loss/D/adv/64``, ``loss/D/total``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from facefill.config import Config, LossConfig
from facefill.losses.adversarial import d_loss, g_loss
from facefill.losses.pixel import fill_invalid, pixel_loss
from facefill.losses.structure import structure_loss
from facefill.models.generator import pyramid

#: ``{N: image (B, 3, N, N)}`` -> ``{N: patch logits}``: the discriminator with its condition bound.
Critic = Callable[[dict[int, torch.Tensor]], dict[int, torch.Tensor]]


def scale_targets(real: torch.Tensor, valid: torch.Tensor | None, scales: tuple[int, ...]
                  ) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor] | None]:
    """The real photo ``(B, 3, S, S)`` and its validity ``(B, 1, S, S)`` (or None) area-resized
    to every scale: ``({N: real_N}, {N: valid_N} or None)``."""
    return pyramid(real, scales), (pyramid(valid, scales) if valid is not None else None)


def discriminator_loss(real_logits: dict[int, torch.Tensor], fake_logits: dict[int, torch.Tensor],
                       kind: str = "hinge") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Sum over scales of :func:`d_loss`; returns ``(total, {"loss/D/adv/N": .., "loss/D/total": ..})``,
    the terms as detached 0-dim tensors on the device (reading them back is the logger's job, once
    per log interval: a ``float()`` here would stall every step on the GPU)."""
    terms: dict[str, torch.Tensor] = {}
    total = None
    for n in real_logits:
        value = d_loss(real_logits[n].float(), fake_logits[n].float(), kind)
        terms[f"loss/D/adv/{n}"] = value.detach()
        total = value if total is None else total + value
    assert total is not None, "no scale to judge"
    terms["loss/D/total"] = total.detach()
    return total, terms


class GeneratorLoss(nn.Module):
    """``forward(fakes, real, landmarks, valid=None, critic=None, mask=None)`` -> ``(total, {name: value})``,
    each value a detached 0-dim tensor on the device (read back by the logger, not every step).

    ``fakes``: ``{N: (B, 3, N, N)}`` in [-1, 1]; ``real``: ``(B, 3, S, S)``; ``landmarks``:
    ``(B, 68, 2)`` pixels of ``real``; ``valid``: ``(B, 1, S, S)`` in [0, 1] or None (all valid);
    ``critic``: needed for the adversarial term (without one it is skipped); ``mask``: the face
    region ``(B, 1, S, S)`` in [0, 1], needed for the SSIM term. ``identity`` and
    ``perceptual`` (:class:`IdentityTerm`, :class:`PerceptualTerm`) are needed when their
    weight is > 0.
    """

    def __init__(self, cfg: LossConfig, identity: nn.Module | None = None,
                 perceptual: nn.Module | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        if self.on("id") and identity is None or self.on("pc") and perceptual is None:
            raise ValueError("identity/perceptual networks are needed for the switched-on terms")
        self.identity = identity if self.on("id") else None
        self.perceptual = perceptual if self.on("pc") else None

    def on(self, term: str) -> bool:
        """Whether ``term`` (pixel, adv, id, pc) has a weight > 0."""
        return self.cfg.weight(term) > 0

    def forward(self, fakes: dict[int, torch.Tensor], real: torch.Tensor, landmarks: torch.Tensor,
                valid: torch.Tensor | None = None, critic: Critic | None = None,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.cfg
        scales = tuple(fakes)
        if self.on("ssim") and mask is None:
            raise ValueError("loss.ssim > 0 needs the face mask (the batch's 'mask')")
        reals, valids = scale_targets(real, valid, scales)
        masks = pyramid(mask, scales) if self.on("ssim") else {}
        filled = {n: fill_invalid(fakes[n], reals[n], valids[n] if valids else None) for n in scales}
        logits = critic(filled) if critic is not None and self.on("adv") else None
        total = real.new_zeros(())
        terms: dict[str, torch.Tensor] = {}

        def add(term: str, n: int, value: torch.Tensor) -> None:
            nonlocal total
            total = total + cfg.weight(term) * value
            terms[f"loss/G/{term}/{n}"] = value.detach()

        for n in scales:
            if self.on("pixel"):
                add("pixel", n, pixel_loss(fakes[n], reals[n], valids[n] if valids else None, cfg.pixel_kind))
            if logits is not None:
                add("adv", n, g_loss(logits[n].float(), cfg.gan))
            if n >= cfg.feature_min_scale:
                if self.identity is not None:
                    add("id", n, self.identity(filled[n], reals[n], landmarks, real.shape[-1]))
                if self.perceptual is not None:
                    add("pc", n, self.perceptual(filled[n], reals[n]))
                if self.on("ssim"):
                    add("ssim", n, structure_loss(filled[n], reals[n], masks[n]))
        terms["loss/G/total"] = total.detach()
        return total, terms


def build_generator_loss(cfg: Config, device: str | torch.device = "cpu") -> GeneratorLoss:
    """The generator objective of ``cfg``, loading the identity / perceptual networks only for
    the terms that are on."""
    from facefill.losses.identity import IdentityTerm
    from facefill.losses.perceptual import PerceptualTerm

    lc = cfg.loss
    identity = IdentityTerm(lc.identity, eyes=(cfg.align.left_eye, cfg.align.right_eye)) if lc.id > 0 else None
    perceptual = PerceptualTerm(lc.perceptual) if lc.pc > 0 else None
    return GeneratorLoss(lc, identity, perceptual).to(device)
