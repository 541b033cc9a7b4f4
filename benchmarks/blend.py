"""Laplacian blending images/s at 128x128: OpenCV's reference blend (``opencv_laplacian_blend``,
one image per call) vs facefill's batched ``laplacian_blend`` at batch 1 and 64, with its default
backend (OpenCV pyramids on CPU tensors) and its torch backend (the one used on CUDA; CUDA rows
where a GPU exists). One run, same threads, the rows measured in turn (``--rounds`` rounds of
``--block`` s each, median per call); ``x_opencv`` is each row's per-image rate over the reference's.

    python benchmarks/blend.py [--levels 5] [--size 128] [--threads 2] [--feather 0] [--rounds 10]
Writes benchmarks/results/blend.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import device_name, opencv_laplacian_blend, write  # noqa: E402

from facefill.blend import laplacian_blend  # noqa: E402


def interleaved(jobs: dict, device: str, rounds: int, block: float) -> dict[str, list[float]]:
    """Seconds per call for each job: ``rounds`` rounds, each running every job in turn for
    ``block`` seconds (caches stay warm within a block; a load that comes and goes on a shared
    machine hits all jobs alike)."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for r in range(rounds + 1):
        for name, fn in jobs.items():
            start = time.perf_counter()
            while True:
                t0 = time.perf_counter()
                fn()
                sync()
                t1 = time.perf_counter()
                if r:  # round 0 is the warm-up
                    times[name].append(t1 - t0)
                if t1 - start >= block:
                    break
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", type=int, default=5)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--feather", type=float, default=0.0)
    ap.add_argument("--rounds", type=int, default=10, help="rounds of --block seconds per row (median of all calls)")
    ap.add_argument("--block", type=float, default=0.3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    s = args.size
    rng = np.random.default_rng(0)
    fg, bg = rng.random((s, s, 3), np.float32), rng.random((s, s, 3), np.float32)
    m = np.zeros((s, s), np.float32)
    cv2.circle(m, (s // 2, s // 2), s // 3, 1, -1)
    ref_name = "OpenCV pyrDown/pyrUp reference (float32, one image per call)"
    jobs = {(ref_name, "cpu", 1): lambda: opencv_laplacian_blend(fg, bg, m, args.levels)}
    cases = [("cpu", "auto", "facefill laplacian_blend (CPU default: OpenCV backend)"),
             ("cpu", "torch", "facefill laplacian_blend, backend='torch'")]
    if torch.cuda.is_available():
        cases.append(("cuda", "auto", "facefill laplacian_blend (torch on CUDA)"))
    for device, backend, name in cases:
        for batch in (1, 64):
            f = torch.from_numpy(rng.random((batch, 3, s, s), np.float32)).to(device)
            b = torch.from_numpy(rng.random((batch, 3, s, s), np.float32)).to(device)
            mm = torch.from_numpy(m).to(device).expand(batch, 1, s, s).contiguous()

            def run(f=f, b=b, mm=mm, backend=backend):
                with torch.inference_mode():
                    return laplacian_blend(f, b, mm, args.levels, args.feather, backend)

            jobs[(name, device, batch)] = run
    times = {}
    for device in dict.fromkeys(k[1] for k in jobs):
        times.update(interleaved({k: v for k, v in jobs.items() if k[1] == device}, device, args.rounds, args.block))
    ref = 1 / statistics.median(times[(ref_name, "cpu", 1)])
    rows = []
    for (name, device, batch), t in times.items():
        rate = batch / statistics.median(t)
        rows.append({"impl": name, "device": device_name(device), "batch": batch, "img_per_s": round(rate, 1),
                     "x_opencv": round(rate / ref, 2), "calls": len(t)})
        print(rows[-1], flush=True)
    print(write("blend", rows, ["impl", "device", "batch", "img_per_s", "x_opencv"]))


if __name__ == "__main__":
    main()
