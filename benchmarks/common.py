"""Shared helpers for the benchmark scripts: timing, peak memory, JSON + Markdown output."""

from __future__ import annotations

import json
import platform
import resource
import time
from pathlib import Path
from typing import Callable

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
