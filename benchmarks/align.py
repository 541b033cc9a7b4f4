"""Images/s of align (detect + landmarks + warp) and mask, per landmark backend, on CPU.

    python benchmarks/align.py [--backends dlib] [--repeat 5] [--threads 2]

Uses the example photos (examples/raw, 4 photos of 400-800 px). Writes
benchmarks/results/align.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import device_name, write  # noqa: E402

from facefill.align.core import align_image  # noqa: E402
from facefill.align.landmarks import DlibBackend, get_backend  # noqa: E402
from facefill.data.io import list_images, read_image  # noqa: E402
from facefill.errors import FacefillError  # noqa: E402
from facefill.data.tensors import apply_mask_uint8 as apply_mask
from facefill.mask.region import face_mask  # noqa: E402

ROOT = Path(__file__).parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", nargs="+", default=["dlib", "dlib-cnn", "fan", "mediapipe"])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    photos = [read_image(p) for p in list_images(ROOT / "examples" / "raw")]
    rows = []
    for name in args.backends:
        try:
            backend = DlibBackend("cnn") if name == "dlib-cnn" else get_backend(name)
        except FacefillError as exc:
            print(f"{name}: skipped ({exc})")
            continue
        aligned = [align_image(p, backend)[0] for p in photos]  # warm-up
        t0 = time.perf_counter()
        for _ in range(args.repeat):
            for p in photos:
                align_image(p, backend)
        align_s = (time.perf_counter() - t0) / (args.repeat * len(photos))
        t0 = time.perf_counter()
        for _ in range(args.repeat * 20):
            for a in aligned:
                apply_mask(a.image, face_mask(a.landmarks, 128))
        mask_s = (time.perf_counter() - t0) / (args.repeat * 20 * len(aligned))
        rows.append({"device": device_name("cpu"), "backend": name, "align_img_per_s": round(1 / align_s, 1),
                     "align_ms": round(align_s * 1e3, 1), "mask_img_per_s": round(1 / mask_s), "photos": len(photos)})
        print(rows[-1], flush=True)
    print(write("align", rows, ["device", "backend", "align_img_per_s", "align_ms", "mask_img_per_s", "photos"]))


if __name__ == "__main__":
    main()
