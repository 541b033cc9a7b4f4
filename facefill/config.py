"""Configuration: frozen dataclasses, named presets, TOML files and ``--set`` overrides.

A run's configuration is resolved in this order, later winning::

    preset (--preset)  ->  TOML file (--config)  ->  overrides (--set section.key=value)

Unknown sections or keys are an error (:class:`~facefill.errors.ConfigError`), never silently
ignored. The resolved configuration is written next to every run and inside every checkpoint
(:func:`to_dict` / :func:`from_dict`), so a model file can always be rebuilt from itself.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from facefill.errors import ConfigError


@dataclass(frozen=True)
class GeneratorConfig:
    """The multi-scale generator (see ``facefill.models.generator``).

    ``width`` multiplies every channel count of the paper's table (1.0 = the paper).
    ``mask_skip``: feed each block N > 8 the face mask at scale N concatenated with the
    upscaled output of the previous block (6 input channels) instead of only the upscaled
    output (3 channels, the paper's cascade).
    """

    width: float = 1.0
    scales: tuple[int, ...] = (8, 16, 32, 64, 128)
    mask_skip: bool = False
    slope: float = 0.1


@dataclass(frozen=True)
class DiscriminatorConfig:
    """One PatchGAN discriminator per scale, conditioned on the face mask at that scale."""

    width: float = 1.0
    conditional: bool = True


@dataclass(frozen=True)
class LossConfig:
    """Per-scale loss terms; a weight of 0 or ``use_* = False`` removes a term."""

    pixel: str = "l1"
    gan: str = "hinge"
    use_pixel: bool = True
    use_adv: bool = True
    use_id: bool = True
    use_pc: bool = True
    w_pixel: float = 10.0
    w_adv: float = 0.1
    w_id: float = 1.0
    w_pc: float = 1.0
    identity: str = "cosine"
    perceptual: str = "efficientnet-lite0"
    feature_min_scale: int = 32


@dataclass(frozen=True)
class TrainConfig:
    regime: str = "cascaded"
    batch_size: int = 32
    epochs: int = 50
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    ema_decay: float = 0.999
    seed: int = 0
    val_fraction: float = 0.05
    flip: bool = True
    num_workers: int = 2
    precision: str = "auto"
    compile: bool = False
    images_per_stage: int = 200_000
    max_steps: int = 0
    val_list: str = ""
    log_every: int = 10
    sample_every: int = 1000
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3


@dataclass(frozen=True)
class AlignConfig:
    """Eye-centre alignment: the eye centres land on ``left_eye`` / ``right_eye`` (x, y) given
    as fractions of the output ``size``. "Left" is the eye on the left of the image."""

    size: int = 128
    left_eye: tuple[float, float] = (0.40, 0.45)
    right_eye: tuple[float, float] = (0.60, 0.45)


@dataclass(frozen=True)
class MaskConfig:
    """Face-region mask: convex hull of the face landmarks, grown (>0) or eroded (<0) by
    ``grow`` pixels, edges feathered over ``feather`` pixels, outside filled with ``fill``."""

    grow: int = 0
    feather: int = 0
    fill: tuple[int, int, int] = (0, 0, 0)


@dataclass(frozen=True)
class Config:
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)


def _preset(width: float, mask_skip: bool, batch_size: int, **train: Any) -> Config:
    return Config(
        generator=GeneratorConfig(width=width, mask_skip=mask_skip),
        discriminator=DiscriminatorConfig(width=width),
        train=TrainConfig(batch_size=batch_size, **train),
    )


PRESETS: dict[str, Config] = {
    # Tests and smoke runs: seconds on CPU.
    "tiny": _preset(1 / 32, True, 4, num_workers=0, sample_every=10, checkpoint_every=10),
    # Trains on one GPU in minutes, runs fast on CPU; the shipped default model.
    "small": _preset(1 / 8, True, 32),
    # A middle size for real face sets at 128x128.
    "base128": _preset(1 / 4, True, 32),
    # Full width, exactly the paper's tables (about 300M generator parameters).
    "paper": _preset(1.0, False, 16),
}


def get_preset(name: str) -> Config:
    """The named preset; raises ConfigError listing the known names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}"
        ) from None


def to_dict(cfg: Config) -> dict[str, Any]:
    """Nested plain dict (tuples become lists) suitable for JSON, TOML and checkpoints."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin is tuple:
        args = typing.get_args(annotation)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item_types = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
        if len(item_types) != len(value):
            raise ConfigError(f"{where}: expected {len(item_types)} values, got {len(value)}")
        return tuple(_coerce(v, t, where) for v, t in zip(value, item_types))
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    raise ConfigError(f"{where}: unsupported type {annotation!r}")  # pragma: no cover


def _merge(obj: Any, updates: Mapping[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    changes = {}
    for key, value in updates.items():
        where = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(
                f"unknown config key {where!r}; known keys here: {', '.join(sorted(names))}"
            )
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: expected a table of settings, got {value!r}")
            changes[key] = _merge(current, value, prefix=f"{where}.")
        else:
            changes[key] = _coerce(value, hints[key], where)
    return dataclasses.replace(obj, **changes)


def merge(cfg: Config, updates: Mapping[str, Any]) -> Config:
    """A copy of ``cfg`` with nested ``updates`` applied; unknown keys raise ConfigError."""
    return _merge(cfg, updates)


def from_dict(data: Mapping[str, Any]) -> Config:
    """Rebuild a Config from :func:`to_dict` output (strict: unknown keys are errors)."""
    return merge(Config(), data)


def parse_set(items: list[str]) -> dict[str, Any]:
    """``["train.lr_g=1e-4", "generator.scales=[8,16]"]`` -> nested dict.

    Values are read as TOML values (numbers, true/false, [lists], "strings"); anything that is
    not valid TOML is taken as a bare string, so ``loss.pixel=l2`` works.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. train.lr_g=1e-4")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is set twice as value and table")
        node[parts[-1]] = value
    return out


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found; check the --config path") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def resolve(
    preset: str = "small",
    config_file: Path | None = None,
    overrides: list[str] | None = None,
) -> Config:
    """Preset, then TOML file, then ``--set`` overrides."""
    cfg = get_preset(preset)
    if config_file is not None:
        cfg = merge(cfg, load_toml(config_file))
    if overrides:
        cfg = merge(cfg, parse_set(overrides))
    return cfg


def dump_toml(cfg: Config) -> str:
    """The config as TOML text (readable by :func:`load_toml`)."""
    lines: list[str] = []
    for section, values in to_dict(cfg).items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {json.dumps(value)}")
        lines.append("")
    return "\n".join(lines)
