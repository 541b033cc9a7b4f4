"""Images/s of align (detect + landmarks + warp) and mask, per landmark backend, on CPU.

    python benchmarks/align.py [--backends dlib] [--repeat 5] [--threads 2]

Uses the example photos (examples/raw, 4 photos of 400-800 px). Writes
benchmarks/results/align.{json,md}.

    python benchmarks/align.py --huge [--side 10000]

instead writes results/align_huge.{json,md}: ``facefill align`` (a separate process, wall time and
peak memory) on examples/raw/astronaut.jpg enlarged to SIDE x SIDE and saved as a JPEG, and on a
4000 px downscale of that JPEG, with how far apart the two crops put the eyes (aligned pixels).
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
    ap.add_argument("--huge", action="store_true")
    ap.add_argument("--side", type=int, default=10000)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.huge:
        return huge(args.side)
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


def _align_process(photo: Path, out: Path) -> tuple[float, float]:
    """``facefill align`` on one photo in a child process: (wall seconds, peak RSS MiB)."""
    import os
    import subprocess

    folder = photo.parent / f"in_{photo.stem}"
    folder.mkdir(exist_ok=True)
    (folder / photo.name).unlink(missing_ok=True)
    os.link(photo, folder / photo.name)
    cmd = ["/usr/bin/time", "-f", "%e %M", sys.executable, "-m", "facefill", "align", str(folder), str(out), "-q"]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall, rss_kb = res.stderr.strip().splitlines()[-1].split()
    return float(wall), float(rss_kb) / 1024


def huge(side: int) -> None:
    import json
    import tempfile

    import cv2
    import numpy as np

    from facefill.align.landmarks import eye_centres

    work = Path(tempfile.mkdtemp(prefix="facefill-huge-"))
    src = cv2.imread(str(ROOT / "examples" / "raw" / "astronaut.jpg"))
    big = cv2.resize(src, (side, side), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(work / "huge.jpg"), big, [cv2.IMWRITE_JPEG_QUALITY, 90])
    cv2.imwrite(str(work / "down.jpg"), cv2.resize(big, (4000, 4000), interpolation=cv2.INTER_AREA),
                [cv2.IMWRITE_JPEG_QUALITY, 95])
    del big
    rows, sides = [], {}
    for name, s in (("huge", side), ("down", 4000)):
        wall, rss = _align_process(work / f"{name}.jpg", work / f"out_{name}")
        sides[name] = json.loads((work / f"out_{name}" / f"{name}.json").read_text())
        rows.append({"device": device_name("cpu"), "photo": f"{s}x{s} JPEG", "wall_s": round(wall, 1),
                     "peak_rss_mb": round(rss)})
        print(rows[-1], flush=True)
    # the 4000 px photo's eyes, in the huge photo's pixels, through the huge photo's matrix
    down = sides["down"]
    mb = np.vstack([np.array(down["matrix"]), [0, 0, 1]])
    src_lm = np.array(down["landmarks"]) @ np.linalg.inv(mb)[:2, :2].T + np.linalg.inv(mb)[:2, 2]
    eyes = (eye_centres(src_lm) + 0.5) * (side / 4000) - 0.5
    m = np.array(sides["huge"]["matrix"])
    moved = eyes @ m[:, :2].T + m[:, 2]
    targets = np.array([[0.40 * 128, 0.45 * 128], [0.60 * 128, 0.45 * 128]])
    rows[0]["eye_offset_px_vs_4000"] = round(float(np.abs(moved - targets).max()), 3)
    print(write("align_huge", rows, ["device", "photo", "wall_s", "peak_rss_mb", "eye_offset_px_vs_4000"]))


if __name__ == "__main__":
    main()
