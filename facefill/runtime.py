"""Devices and precision: the one place that decides where and how tensors run.

``resolve_device("auto")`` picks CUDA when present, else the CPU. A device name this machine
does not have (``cuda`` without CUDA, ``cuda:3`` on a one-GPU box) is a
:class:`~facefill.errors.DeviceError` (exit 1, "use --device cpu"); a name that is not a device
at all (``tpu``, ``gpu0``) is a :class:`~facefill.errors.UsageError` (exit 2). Every command
that takes ``--device`` goes through here, so they all answer the same way.
"""

from __future__ import annotations

import contextlib
import re

from facefill.errors import DeviceError, UsageError

DEVICE_HELP = "auto (CUDA when available, else CPU), cpu, cuda or cuda:N."
PRECISIONS = ("auto", "fp32", "bf16")
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


def check_device_name(name: str) -> str:
    """``name`` lower-cased if it is a device name facefill knows; UsageError otherwise.
    Needs no torch, so the CLI can reject ``--device tpu`` before importing anything."""
    norm = name.strip().lower()
    if not _DEVICE_RE.match(norm):
        raise UsageError(f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N")
    return norm


def resolve_device(name: str = "auto"):
    """``auto|cpu|cuda|cuda:N|mps`` -> a ``torch.device`` that exists on this machine."""
    import torch

    norm = check_device_name(name)
    if norm == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if norm.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {name}: no CUDA device is available here; use --device cpu (or auto)")
        index = int(norm.split(":")[1]) if ":" in norm else 0
        count = torch.cuda.device_count()
        if index >= count:
            raise DeviceError(f"--device {name}: this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})")
    if norm == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError(f"--device {name}: Apple MPS is not available here; use --device cpu")
    return torch.device(norm)


def use_bf16(device, precision: str = "auto") -> bool:
    """bf16 autocast: ``auto`` means on CUDA only (bf16 on CPU is 5-12x slower, measured)."""
    if precision not in PRECISIONS:
        raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def autocast(device, precision: str = "auto"):
    """A context manager: bf16 autocast on ``device`` when :func:`use_bf16`, else a no-op."""
    import torch

    if use_bf16(device, precision):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
