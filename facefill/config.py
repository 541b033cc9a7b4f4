"""Configuration: frozen dataclasses, named presets, TOML files and ``--set`` overrides.

A run's configuration is resolved in this order, later winning::

    preset (--preset)  ->  TOML file (--config)  ->  overrides (--set section.key=value)

Unknown sections or keys are an error (:class:`~facefill.errors.ConfigError`), never silently
ignored. The resolved configuration is written next to every run and inside every checkpoint
(:func:`to_dict` / :func:`from_dict`), so a model file can always be rebuilt from itself.

Longer than the ~250 lines other modules keep to, on purpose: the one schema (every section, its
allowed values and checks), the presets, the migration of older stored configs and the TOML /
``--set`` parsing belong in one place that a reader can check against the docs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from facefill.errors import ConfigError
from facefill.runtime import PRECISIONS


#: Allowed values of the enumerated settings, checked when a config is built (not mid-run).
PIXEL_KINDS = ("l1", "l2")
GAN_KINDS = ("hinge", "nonsaturating", "lsgan")
IDENTITY_KINDS = ("cosine", "euclidean")
PERCEPTUAL_BACKBONES = ("efficientnet-lite0", "vgg19", "dlib-resnet")
REGIMES = ("cascaded", "progressive")
#: ``train.data_on_device`` and ``train.fused_adam``: auto decides per device (docs/training.md).
ON_OFF_AUTO = ("auto", "on", "off")
#: DiffAugment policies, in the order facefill.train.diffaug applies them.
DIFFAUG_POLICIES = ("color", "translation", "cutout")
#: The loss terms, by their key in ``[loss]`` (each holds the term's weight).
LOSS_TERMS = ("pixel", "adv", "id", "pc", "ssim")
#: ``hallucinate --method``: the generator, donor context, and the classical baselines
#: (:data:`facefill.baselines.METHODS`). The one list; the CLI and the pipeline import it.
HALLUCINATE_METHODS = ("model", "donor", "telea", "ns", "mean")


def _one_of(where: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{where} must be one of {', '.join(allowed)}, not {value!r}")


def _positive(where: str, value: float, zero_ok: bool = False) -> None:
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        raise ConfigError(f"{where} must be {'>= 0' if zero_ok else '> 0'}, not {value!r}")


def _within(where: str, value: float, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> None:
    """``lo <= value <= hi`` (``<`` on an open end); NaN is never within."""
    if not (lo < value if lo_open else lo <= value) or not (value < hi if hi_open else value <= hi):
        interval = f"{'(' if lo_open else '['}{lo!r}, {hi!r}{')' if hi_open else ']'}"
        raise ConfigError(f"{where} must be in {interval}, not {value!r}")


#: The generator's scales: they double from 8 up to at most 128 (facefill.models.generator).
SCALES = (8, 16, 32, 64, 128)
#: train.seed seeds numpy too, which takes 32-bit seeds.
MAX_SEED = 2**32 - 1


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

    def __post_init__(self) -> None:
        _positive("generator.width", self.width)
        _positive("generator.slope", self.slope, zero_ok=True)
        if not self.scales or tuple(self.scales) != SCALES[:len(self.scales)]:
            raise ConfigError(f"generator.scales must double from 8 up to at most 128, e.g. [8, 16, 32, 64, 128]; "
                              f"got {list(self.scales)!r}")


@dataclass(frozen=True)
class DiscriminatorConfig:
    """One PatchGAN discriminator per scale, conditioned on the face mask at that scale.

    ``diffaug``: DiffAugment policies applied to every input of D, real and fake
    (:mod:`facefill.train.diffaug`): any of ``color``, ``translation``, ``cutout``; empty = off.
    """

    width: float = 1.0
    conditional: bool = True
    diffaug: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _positive("discriminator.width", self.width)
        for name in self.diffaug:
            _one_of("discriminator.diffaug", name, DIFFAUG_POLICIES)
        if len(set(self.diffaug)) != len(self.diffaug):
            raise ConfigError(f"discriminator.diffaug names a policy twice: {list(self.diffaug)!r}")


@dataclass(frozen=True)
class LossConfig:
    """Per-scale loss terms. ``pixel``, ``adv``, ``id``, ``pc`` and ``ssim`` are the terms'
    weights; a weight of 0 switches the term off (it is then not computed at all). ``ssim`` (not
    in the paper, off by default) is ``1 - SSIM`` of the fake with the real face pasted back
    (:mod:`facefill.losses.structure`).

    ``pixel_kind``: ``l1`` or ``l2``. ``gan``: ``hinge``, ``nonsaturating`` or ``lsgan``.
    ``identity``: ``cosine`` (1 - cos) or ``euclidean`` (dlib's distance) of dlib-ResNet
    descriptors. ``perceptual``: the feature backbone. ``feature_min_scale``: the smallest
    scale that gets the identity, perceptual and SSIM terms.
    """

    pixel: float = 10.0
    adv: float = 0.1
    id: float = 1.0
    pc: float = 1.0
    ssim: float = 0.0
    pixel_kind: str = "l1"
    gan: str = "hinge"
    identity: str = "cosine"
    perceptual: str = "efficientnet-lite0"
    feature_min_scale: int = 32

    def __post_init__(self) -> None:
        for term in LOSS_TERMS:
            _positive(f"loss.{term}", getattr(self, term), zero_ok=True)
        _one_of("loss.pixel_kind", self.pixel_kind, PIXEL_KINDS)
        _one_of("loss.gan", self.gan, GAN_KINDS)
        _one_of("loss.identity", self.identity, IDENTITY_KINDS)
        _one_of("loss.perceptual", self.perceptual, PERCEPTUAL_BACKBONES)
        if self.ssim > 0 and self.feature_min_scale < 16:
            raise ConfigError(f"loss.ssim needs loss.feature_min_scale >= 16 (the SSIM window is 11 px), "
                              f"got {self.feature_min_scale}")

    def weight(self, term: str) -> float:
        """The weight of ``term`` (one of :data:`LOSS_TERMS`); 0 means off."""
        return float(getattr(self, term))


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
    val_every: int = 0
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
    data_on_device: str = "auto"
    data_budget_mb: int = 2048
    fused_adam: str = "auto"
    channels_last: bool = False

    def __post_init__(self) -> None:
        _one_of("train.regime", self.regime, REGIMES)
        _one_of("train.precision", self.precision, PRECISIONS)
        _one_of("train.data_on_device", self.data_on_device, ON_OFF_AUTO)
        _one_of("train.fused_adam", self.fused_adam, ON_OFF_AUTO)
        _positive("train.batch_size", self.batch_size)
        _positive("train.images_per_stage", self.images_per_stage)
        _positive("train.keep_checkpoints", self.keep_checkpoints)
        _positive("train.log_every", self.log_every)
        _positive("train.lr_g", self.lr_g, zero_ok=True)  # 0 freezes the network
        _positive("train.lr_d", self.lr_d, zero_ok=True)
        for beta in self.betas:
            _within("train.betas", beta, 0, 1, hi_open=True)
        _within("train.seed", self.seed, 0, MAX_SEED)
        for key in ("epochs", "max_steps", "num_workers", "sample_every", "checkpoint_every", "val_every",
                    "data_budget_mb"):
            _positive(f"train.{key}", getattr(self, key), zero_ok=True)
        _within("train.val_fraction", self.val_fraction, 0, 1, hi_open=True)
        _within("train.ema_decay", self.ema_decay, 0, 1, hi_open=True)


@dataclass(frozen=True)
class AlignConfig:
    """Eye-centre alignment: the eye centres land on ``left_eye`` / ``right_eye`` (x, y) given
    as fractions of the output ``size``. "Left" is the eye on the left of the image."""

    size: int = 128
    left_eye: tuple[float, float] = (0.40, 0.45)
    right_eye: tuple[float, float] = (0.60, 0.45)

    def __post_init__(self) -> None:
        _within("align.size", self.size, 16, 4096)
        for key in ("left_eye", "right_eye"):
            for v in getattr(self, key):
                _within(f"align.{key}", v, 0, 1, lo_open=True, hi_open=True)
        if not self.left_eye[0] < self.right_eye[0]:
            raise ConfigError(f"align.left_eye must lie left of align.right_eye (a smaller x), not "
                              f"{list(self.left_eye)!r} and {list(self.right_eye)!r}")


#: the face regions a mask can keep (:class:`MaskConfig`)
MASK_REGIONS = ("hull", "refined")


@dataclass(frozen=True)
class MaskConfig:
    """Face-region mask: convex hull of the face landmarks, grown (>0) or eroded (<0) by
    ``grow`` pixels, edges feathered over ``feather`` pixels, outside filled with ``fill``.
    ``region``: ``hull`` (the grown hull) or ``refined`` (the hull without the background, hair
    or hat in its outer band: :mod:`facefill.mask.refine`). Training always masks with the hull."""

    grow: int = 0
    feather: int = 0
    fill: tuple[int, int, int] = (0, 0, 0)
    region: str = "hull"

    def __post_init__(self) -> None:
        _one_of("mask.region", self.region, MASK_REGIONS)
        _within("mask.grow", self.grow, -64, 64)  # the bounds of mask --grow / --feather
        _within("mask.feather", self.feather, 0, 64)
        for v in self.fill:
            _within("mask.fill", v, 0, 255)


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation (:mod:`facefill.train.augment`): a random similarity warp
    (``geometric``: ``scale`` (min, max), ``rotate`` ± degrees, ``shift`` ± fraction of the side)
    and colour jitter (``color``: ``brightness``, ``contrast``, ``saturation`` ± factors, ``hue``
    ± fraction of a turn), drawn from ``(seed, epoch, index)``. Both off by default. Config keys
    spell it ``color``, as ``discriminator.diffaug`` does; ``colour`` (the earlier spelling) is read as
    a deprecated alias by :func:`migrate`.

    The same fields and checks as ``facefill.train.augment.AugmentConfig`` (a test keeps them
    equal); it lives here too so that reading a config never imports torch.
    """

    geometric: bool = False
    scale: tuple[float, float] = (0.9, 1.1)
    rotate: float = 10.0
    shift: float = 0.06
    color: bool = False
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02

    def __post_init__(self) -> None:
        lo, hi = self.scale
        if not 0 < lo <= hi:
            raise ConfigError(f"augment.scale must be (min, max) with 0 < min <= max, not {self.scale!r}")
        for key, top in (("rotate", 180.0), ("shift", 1.0), ("brightness", 1.0), ("contrast", 1.0),
                         ("saturation", 1.0), ("hue", 0.5)):
            v = getattr(self, key)
            if not 0 <= v <= top:
                raise ConfigError(f"augment.{key} must be in [0, {top:g}], not {v!r}")

    @property
    def enabled(self) -> bool:
        return self.geometric or self.color


@dataclass(frozen=True)
class Config:
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)


def _preset(width: float, batch_size: int, mask_skip: bool = True, **train: Any) -> Config:
    return Config(
        generator=GeneratorConfig(width=width, mask_skip=mask_skip),
        discriminator=DiscriminatorConfig(width=width),
        train=TrainConfig(batch_size=batch_size, **train),
    )


#: The named presets. They are the same code and differ only in size (``generator.width``,
#: ``discriminator.width``, ``train.batch_size``), plus two named exceptions, both checked by
#: tests/test_config.py: ``tiny`` runs on the smoke-test cadence (no workers, a sample and a
#: checkpoint every 10 steps), and ``paper`` is the paper's exact cascade (``mask_skip = false``:
#: 3-channel block inputs, the published parameter counts; 369,641,691 generator parameters).
PRESETS: dict[str, Config] = {
    # Tests and smoke runs: seconds on CPU.
    "tiny": _preset(1 / 32, 4, num_workers=0, sample_every=10, checkpoint_every=10),
    # Trains on one GPU in minutes, runs fast on CPU; the shipped default model.
    "small": _preset(1 / 8, 32),
    # A middle size for real face sets at 128x128.
    "base128": _preset(1 / 4, 32),
    # Full width, exactly the paper's tables (parameter count: see the comment above).
    "paper": _preset(1.0, 16, mask_skip=False),
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
            parts = [p.strip() for p in str(value).split(",")]
            example = "[" + ", ".join(f'"{p}"' if args[0] is str else p for p in parts) + "]"
            raise ConfigError(f"{where}: expected a list, got {value!r}; write a TOML list, "
                              f"e.g. --set '{where}={example}'")
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
            if not math.isfinite(value):
                raise ConfigError(f"{where}: expected a finite number, got {value!r}")
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
            if where.startswith("loss.") and key in _LEGACY_LOSS_KEYS:
                term = key.split("_", 1)[1]
                raise ConfigError(f"{where} was replaced by loss.{term}, the term's weight "
                                  f"(0 switches it off), e.g. loss.{term}=0")
            raise ConfigError(
                f"unknown config key {where!r}; known keys here: {', '.join(sorted(names))}"
            )
        current = getattr(obj, key)
        if where == "loss.pixel" and isinstance(value, str):
            raise ConfigError(f"loss.pixel is the pixel term's weight (a number); the distance is "
                              f"loss.pixel_kind, e.g. loss.pixel_kind={value}")
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


#: facefill <= 0.1 switched loss terms with ``use_<term>`` and weighted them with ``w_<term>``,
#: and ``loss.pixel`` was the pixel distance ("l1"/"l2"). Configs stored in release files,
#: training states and run folders of that time are rewritten by :func:`migrate`.
_LEGACY_LOSS_KEYS = {f"{p}_{t}" for p in ("use", "w") for t in LOSS_TERMS}


def migrate(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a stored config dict with old key layouts rewritten to the current one.

    ``[loss]`` with ``use_<term>`` / ``w_<term>`` becomes weights only (``<term> = w`` when
    ``use_<term>`` was true, else 0), a string ``loss.pixel`` becomes ``loss.pixel_kind``, and
    ``augment.colour`` (the deprecated spelling) becomes ``augment.color``.
    Current dicts come back unchanged.
    """
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in data.items()}
    _rename_alias(out.get("augment"), "augment", "colour", "color")
    loss = out.get("loss")
    if not isinstance(loss, dict):
        return out
    if isinstance(loss.get("pixel"), str):
        loss["pixel_kind"] = loss.pop("pixel")
    defaults = LossConfig()
    for term in LOSS_TERMS:
        use, w = loss.pop(f"use_{term}", None), loss.pop(f"w_{term}", None)
        if use is None and w is None:
            continue
        weight = w if w is not None else loss.get(term, defaults.weight(term))
        loss[term] = weight if use is not False else 0.0
    return out


def _rename_alias(section: Any, name: str, old: str, new: str) -> None:
    """Rename the deprecated key ``old`` of ``section`` (a dict, changed in place) to ``new``."""
    if not isinstance(section, dict) or old not in section:
        return
    if new in section:
        raise ConfigError(f"{name}.{old} is the deprecated spelling of {name}.{new}; set only {name}.{new}")
    section[new] = section.pop(old)


def from_dict(data: Mapping[str, Any]) -> Config:
    """Rebuild a Config from :func:`to_dict` output, also from older facefill versions
    (see :func:`migrate`); strict otherwise: unknown keys are errors."""
    return merge(Config(), migrate(data))


def parse_set(items: list[str]) -> dict[str, Any]:
    """``["train.lr_g=1e-4", "generator.scales=[8,16]"]`` -> nested dict.

    Values are read as TOML values (numbers, true/false, [lists], "strings"); anything that is
    not valid TOML is taken as a bare string, so ``loss.pixel_kind=l2`` works.
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
            return migrate(tomllib.load(fh))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found; check the --config path") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start}); TOML files are UTF-8: "
                          f"save it as UTF-8 (e.g. iconv -t UTF-8)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror or exc}); check the --config path") from None


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
