"""Face embeddings/s: the PyTorch port of dlib's ResNet (CPU, and GPU where available) vs dlib's
own CPU implementation, on the same 150x150 chips, batch 64. Also the perceptual backbones.

    python benchmarks/embedders.py [--batch 64]   # writes benchmarks/results/embedders.{json,md}
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import device_name, timeit, write  # noqa: E402

from facefill.data.io import read_image  # noqa: E402
from facefill.models.dlib_resnet import load_dlib_resnet  # noqa: E402
from facefill.losses.perceptual import PerceptualLoss  # noqa: E402


def chips_from_examples(n: int) -> np.ndarray:
    import dlib

    from facefill.align.landmarks import dlib_model_path

    det = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(str(dlib_model_path("shape_predictor_5_face_landmarks.dat")))
    chips = []
    for name in ("obama.jpg", "biden.jpg", "astronaut.jpg", "obama3.jpg"):
        img = read_image(f"examples/raw/{name}")
        chips.append(dlib.get_face_chip(img, sp(img, det(img, 1)[0]), 150, 0.25))
    return np.stack([chips[i % len(chips)] for i in range(n)])


def timed(fn, repeats: int, device: str = "cpu") -> float:
    return timeit(fn, device, min_time=0, warmup=1)[0] if repeats else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import dlib

    from facefill.align.landmarks import dlib_model_path

    chips = chips_from_examples(args.batch)
    rows = []
    rec = dlib.face_recognition_model_v1(str(dlib_model_path("dlib_face_recognition_resnet_model_v1.dat")))
    t = timed(lambda: rec.compute_face_descriptor(list(chips)), args.repeats)
    rows.append({"model": "dlib (C++)", "device": "cpu", "batch": args.batch, "img_per_s": args.batch / t})
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        net = load_dlib_resnet().to(dev)
        x = torch.from_numpy(chips).permute(0, 3, 1, 2).float().to(dev)

        def run():
            with torch.no_grad():
                net(x)
            if dev == "cuda":
                torch.cuda.synchronize()

        rows.append({"model": "dlib-resnet port", "device": dev, "batch": args.batch,
                     "img_per_s": args.batch / timed(run, args.repeats, dev)})
        for backbone in ("efficientnet-lite0", "dlib-resnet"):
            loss = PerceptualLoss(backbone).to(dev)
            a = torch.rand(args.batch, 3, 128, 128, device=dev) * 2 - 1
            b = torch.rand_like(a)

            def step():
                a.requires_grad_(True)
                loss(a, b).backward()
                if dev == "cuda":
                    torch.cuda.synchronize()

            rows.append({"model": f"perceptual {backbone} fwd+bwd 128px", "device": dev, "batch": args.batch,
                         "img_per_s": args.batch / timed(step, args.repeats, dev)})
    for r in rows:
        r["img_per_s"] = round(r["img_per_s"], 1)
        r["device"] = device_name(r["device"])
    print(write("embedders", rows, ["model", "device", "batch", "img_per_s"]))


if __name__ == "__main__":
    main()
