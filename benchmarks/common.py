"""Shared helpers for the benchmark scripts: timing, peak memory, JSON + Markdown output; and the
references that both a benchmark and the tests use (facefill does not ship them; the tests import
this file as ``benchmarks.common``, pytest puts the repository root on the path):
:func:`opencv_laplacian_blend`, :func:`hair_band`, :func:`gather_resize`."""

from __future__ import annotations

import json
import platform
import resource
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results"


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"


def timeit(fn: Callable[[], None], device: str, min_time: float = 2.0, warmup: int = 1) -> tuple[float, int]:
    """Median seconds per call after ``warmup`` calls; runs at least 3 calls and ``min_time`` s."""
    for _ in range(warmup):
        fn()
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    times = []
    start = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
        if len(times) >= 50:
            break
    times.sort()
    return times[len(times) // 2], len(times)


def peak_memory_mb(device: str) -> float:
    """Peak GPU memory allocated (CUDA) or peak resident set size of the process (CPU), MiB."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return process_peak_rss_mb()  # ru_maxrss alone would read low after a reset_peak_rss


#: the highest step peak read before a reset (a reset also lowers ``ru_maxrss``)
_PEAK_BEFORE_RESET = [0.0]


def reset_peak_rss() -> bool:
    """Start a new peak for :func:`step_peak_rss_mb`: Linux resets the process's resident high-water
    mark (VmHWM, and with it ``ru_maxrss``) to its present size when 5 is written to
    ``/proc/self/clear_refs``; the peak so far is kept for :func:`process_peak_rss_mb`. False where
    that cannot be done (then the step's peak is the process's peak so far)."""
    _PEAK_BEFORE_RESET[0] = max(_PEAK_BEFORE_RESET[0], step_peak_rss_mb())
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def process_peak_rss_mb() -> float:
    """The process's peak resident memory since it started, MiB, across :func:`reset_peak_rss`."""
    return max(_PEAK_BEFORE_RESET[0], step_peak_rss_mb())


def step_peak_rss_mb() -> float:
    """The resident high-water mark since :func:`reset_peak_rss` (VmHWM), MiB; where there is no
    ``/proc``, the process's peak (``ru_maxrss``). It counts what the process already held when the
    step began, memory-mapped pages it touched included."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write(name: str, rows: list[dict], columns: list[str]) -> str:
    """Write results/<name>.json and .md; return the Markdown table."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(
        {"torch": torch.__version__, "rows": rows}, indent=2))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(c, "")) for c in columns) + " |")
    table = "\n".join(lines)
    (RESULTS / f"{name}.md").write_text(table + "\n")
    return table


def opencv_laplacian_blend(foreground: np.ndarray, background: np.ndarray, mask: np.ndarray, levels: int = 5) -> np.ndarray:
    """The same blend with OpenCV's ``pyrDown``/``pyrUp`` on one ``(H, W, C)`` float32 image pair and
    an ``(H, W)`` mask, written plainly (three pyramids, blend per level, collapse): the reference
    tests/blend and ``benchmarks/blend.py`` compare ``facefill.blend.laplacian_blend`` against."""
    import cv2

    def gauss(x):
        out = [x]
        for _ in range(levels - 1):
            out.append(cv2.pyrDown(out[-1]))
        return out

    def lap(x):
        g = gauss(x)
        return [g[i] - cv2.pyrUp(g[i + 1], dstsize=(g[i].shape[1], g[i].shape[0])) for i in range(levels - 1)] + [g[-1]]

    bands = [mk[..., None] * a + (1 - mk[..., None]) * b for a, b, mk in zip(lap(foreground), lap(background), gauss(mask))]
    x = bands[-1]
    for band in reversed(bands[:-1]):
        x = cv2.pyrUp(x, dstsize=(band.shape[1], band.shape[0])) + band
    return x


def hair_band(lm: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` bool: the band above the brows where hair is, from the 68 ``(x, y)`` landmarks
    ``lm``: the middle 80% of the brows' width, from 2 px above the highest brow point up by 0.35
    face widths (jaw end to jaw end). A label-free check of a person mask (tests/segment and
    ``benchmarks/segment.py``): hair belongs to the person."""
    brows = lm[17:27]
    x0, x1 = brows[:, 0].min(), brows[:, 0].max()
    top = brows[:, 1].min()
    fw = lm[16, 0] - lm[0, 0]
    m = np.zeros(shape, bool)
    m[max(0, round(top - 0.35 * fw)):round(top - 2), round(x0 + 0.1 * (x1 - x0)):round(x1 - 0.1 * (x1 - x0))] = True
    return m


def gather_resize(x: torch.Tensor, size: int = 299) -> torch.Tensor:
    """``(B, C, H, W)`` float -> ``(B, C, size, size)``: TF1 ``ResizeBilinear`` (no half-pixel
    offset) by gathering the two neighbours per output pixel, facefill's FID resize before the
    matrix-product ``facefill.metrics.inception.tf_resize_bilinear``: the "before" row of
    ``benchmarks/fid_features.py`` and the reference the current resize is tested against."""
    b, c, h, w = x.shape

    def coords(n_in):
        src = torch.arange(size, device=x.device, dtype=torch.float64) * (n_in / size)
        lo = src.floor().long().clamp(max=n_in - 1)
        hi = (lo + 1).clamp(max=n_in - 1)
        return lo, hi, (src - lo).to(x.dtype)

    y0, y1, fy = coords(h)
    x0, x1, fx = coords(w)
    rows = x[:, :, y0] * (1 - fy)[:, None] + x[:, :, y1] * fy[:, None]
    return rows[..., x0] * (1 - fx) + rows[..., x1] * fx
