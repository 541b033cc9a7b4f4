"""Devices and precision: the one place that decides where and how tensors run.

``resolve_device("auto")`` picks CUDA when present, else the CPU. A device name this machine
does not have (``cuda`` without CUDA, ``cuda:3`` on a one-GPU box) is a
:class:`~facefill.errors.DeviceError` (exit 1, "use --device cpu"); a name that is not a device
at all (``tpu``, ``gpu0``) is a :class:`~facefill.errors.UsageError` (exit 2). Every command
that takes ``--device`` goes through here, so they all answer the same way.

:func:`check_torchvision` (and :func:`import_torchvision`, :func:`import_piq`) turn a torchvision
built for another torch (a CPU torch with torchvision from PyPI) into one line saying which pip
command fixes it, instead of a traceback from deep inside torchvision.
"""

from __future__ import annotations

import contextlib
import re

from facefill.errors import DeviceError, FacefillError, UsageError

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


@contextlib.contextmanager
def cpu_threads(device, threads: int | None):
    """Within the block, torch runs on ``threads`` intra-op threads (at most its current number)
    when ``device`` is the CPU; restored after. None or another device: unchanged."""
    import torch

    before = torch.get_num_threads()
    if threads is not None and device.type == "cpu":
        torch.set_num_threads(max(1, min(threads, before)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------------- torch / torchvision

class TorchvisionMismatch(FacefillError):
    """torchvision that does not fit the installed torch (exit 1, an environment problem)."""


#: torchvision's minor version for torch 2.m is m + 15 (0.19 with 2.4, ..., 0.24 with 2.9), the
#: pairing table on pytorch.org; major.minor decide, the patch levels need not agree.
_TORCHVISION_MINOR_OFFSET = 15
#: local version labels of pytorch.org's builds (``2.5.1+cpu``), each its own index; others (``+git1a2b``) say nothing
_BUILD_LABEL = re.compile(r"cpu|cu\d+|rocm[\d.]+|xpu")


def _split_version(version: str) -> tuple[tuple[int, ...], str]:
    """``"2.5.1+cpu"`` -> ``((2, 5, 1), "cpu")``; parts that are not numbers end the tuple."""
    base, _, local = version.partition("+")
    nums = []
    for part in base.split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        nums.append(int(digits.group()))
    return tuple(nums), local


def matching_torchvision(torch_version: str) -> str | None:
    """The torchvision series (``"0.20"``) that goes with ``torch_version`` (``"2.5.1+cpu"``), or
    None for a torch outside the known pattern (1.x, 3.x)."""
    nums, _ = _split_version(torch_version)
    if len(nums) < 2 or nums[0] != 2:
        return None
    return f"0.{nums[1] + _TORCHVISION_MINOR_OFFSET}"


def torchvision_fix(torch_version: str) -> str:
    """The pip command that installs the torchvision build for ``torch_version``, from the index
    its local label names (``+cpu`` -> ``download.pytorch.org/whl/cpu``; none -> PyPI)."""
    series = matching_torchvision(torch_version)
    spec = f'"torchvision=={series}.*"' if series else "torchvision"
    _, local = _split_version(torch_version)
    index = f" --index-url https://download.pytorch.org/whl/{local}" if _BUILD_LABEL.fullmatch(local) else ""
    return f"pip install --force-reinstall --no-deps {spec}{index}"


def torchvision_mismatch(torch_version: str, torchvision_version: str) -> str | None:
    """Why ``torchvision_version`` cannot work with ``torch_version`` (by version numbers and
    build labels only: ``+cpu`` against ``+cu121``), or None when the pair looks right."""
    series = matching_torchvision(torch_version)
    tv_nums, tv_local = _split_version(torchvision_version)
    _, t_local = _split_version(torch_version)
    if series is not None and ".".join(map(str, tv_nums[:2])) != series:
        return f"torchvision {torchvision_version} does not fit torch {torch_version} (it needs torchvision {series}.x)"
    if _BUILD_LABEL.fullmatch(t_local) and _BUILD_LABEL.fullmatch(tv_local) and t_local != tv_local:
        return (f"torchvision {torchvision_version} is built for {tv_local}, torch {torch_version} for {t_local}")
    return None


_TORCHVISION_OK: list[bool] = []


def check_torchvision() -> None:
    """TorchvisionMismatch (exit 1, one line with the pip command that fixes it) unless the
    installed torchvision fits torch: compares the versions with the pairing table, then imports
    torchvision, whose compiled operators fail to register against another torch build
    (``RuntimeError: operator torchvision::nms does not exist``). Call it before anything that
    imports torchvision (piq does); checked once per process."""
    if _TORCHVISION_OK:
        return
    import importlib
    import importlib.metadata

    import torch

    t = torch.__version__
    try:
        tv = importlib.metadata.version("torchvision")
    except importlib.metadata.PackageNotFoundError:
        raise TorchvisionMismatch(f"torchvision is not installed; {torchvision_fix(t)}") from None
    why = torchvision_mismatch(t, tv)
    if why is None:
        try:
            importlib.import_module("torchvision")
        except (RuntimeError, ImportError, OSError) as exc:
            first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:120]
            why = f"torchvision {tv} does not work with torch {t} ({first})"
    if why is not None:
        raise TorchvisionMismatch(f"{why}; install the matching build: {torchvision_fix(t)}")
    _TORCHVISION_OK.append(True)


def import_torchvision():
    """``torchvision``, after :func:`check_torchvision`."""
    check_torchvision()
    import torchvision

    return torchvision


def import_piq():
    """``piq`` (which imports torchvision at import time), after :func:`check_torchvision`."""
    check_torchvision()
    import piq

    return piq
