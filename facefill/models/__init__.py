"""Models: the multi-scale generator, per-scale discriminators, and builders from a Config."""

from __future__ import annotations

from facefill.config import Config
from facefill.models.discriminator import MultiScaleDiscriminator, PatchDiscriminator
from facefill.models.generator import (
    SCALES,
    WIDTHS,
    CascadedGenerator,
    GeneratorBlock,
    ProgressiveGenerator,
    Upscaler,
)


def build_generator(cfg: Config) -> CascadedGenerator:
    """The generator the config describes (progressive regime -> ProgressiveGenerator)."""
    g = cfg.generator
    cls = ProgressiveGenerator if cfg.train.regime == "progressive" else CascadedGenerator
    return cls(width=g.width, scales=g.scales, mask_skip=g.mask_skip, slope=g.slope)


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
    "ProgressiveGenerator",
    "Upscaler",
    "build_discriminator",
    "build_generator",
]
