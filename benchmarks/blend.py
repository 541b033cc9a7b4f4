"""Laplacian blending images/s: facefill's batched torch/kornia version (CPU, and GPU where
available; batch 1 and 64) vs an OpenCV CPU pyramid blend with the same levels, at 128x128.

    python benchmarks/blend.py [--levels 5] [--size 128] [--threads 2]
Writes benchmarks/results/blend.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import device_name, timeit, write  # noqa: E402

from facefill.blend import laplacian_blend  # noqa: E402
from facefill.blend.laplacian import opencv_laplacian_blend  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", type=int, default=5)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    s = args.size
    rows = []
    fg, bg = np.random.rand(s, s, 3).astype(np.float32), np.random.rand(s, s, 3).astype(np.float32)
    m = np.zeros((s, s), np.float32)
    cv2.circle(m, (s // 2, s // 2), s // 3, 1, -1)
    sec, _ = timeit(lambda: opencv_laplacian_blend(fg, bg, m, args.levels), "cpu")
    rows.append({"impl": "opencv pyrDown/pyrUp", "device": device_name("cpu"), "batch": 1, "img_per_s": round(1 / sec, 1)})
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        for batch in (1, 64):
            f = torch.rand(batch, 3, s, s, device=device)
            b = torch.rand_like(f)
            mm = torch.from_numpy(m).to(device).expand(batch, 1, s, s).contiguous()
            sec, _ = timeit(lambda: laplacian_blend(f, b, mm, args.levels), device)
            rows.append({"impl": "facefill laplacian_blend", "device": device_name(device), "batch": batch,
                         "img_per_s": round(batch / sec, 1)})
    print(write("blend", rows, ["impl", "device", "batch", "img_per_s"]))


if __name__ == "__main__":
    main()
