"""Models: the multi-scale generator, per-scale discriminators, and builders from a Config."""

from __future__ import annotations

from facefill.config import Config
from facefill.models.discriminator import MultiScaleDiscriminator, PatchDiscriminator
from facefill.models.generator import (
    SCALES,
    WIDTHS,
    CascadedGenerator,
    GeneratorBlock,
    Upscaler,
)


def build_generator(cfg: Config) -> CascadedGenerator:
    """The generator the config describes (the same class for both training regimes)."""
    g = cfg.generator
    return CascadedGenerator(width=g.width, scales=g.scales, mask_skip=g.mask_skip, slope=g.slope)


def build_discriminator(cfg: Config) -> MultiScaleDiscriminator:
    d = cfg.discriminator
    return MultiScaleDiscriminator(width=d.width, scales=cfg.generator.scales, conditional=d.conditional)


__all__ = [
    "SCALES",
    "WIDTHS",
    "CascadedGenerator",
    "GeneratorBlock",
    "MultiScaleDiscriminator",
    "PatchDiscriminator",
    "Upscaler",
    "build_discriminator",
    "build_generator",
]
