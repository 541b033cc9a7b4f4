"""seam-kid of several methods' outputs on the same faces, the real photos' patches embedded once.

    python benchmarks/donor.py ALIGNED --methods donor model --work WORK
    python benchmarks/seam_kid.py WORK donor model [--points 8] [--patch 32]

WORK is ``benchmarks/donor.py``'s work folder: ``val/`` (the real validation photos, with align's
``.valid.png``), ``masked/`` (their ``.mask.png``) and one output folder per method. Each method's
seam-kid and the real floor are computed exactly as ``facefill evaluate --metrics seam-kid
--masks WORK/masked`` computes them (:func:`facefill.metrics.seam.seam_kid`, the generated image
given the real one's padding first), but the real patches go through the Inception once for all
methods. Prints one JSON line per method.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def patch_features(images: list[np.ndarray], masks: list[np.ndarray], inception, points: int, patch: int):
    """``(P, 2048)`` features of the border patches of ``images`` (``(H, W, 3)`` uint8) at their
    masks' border points, and each patch's face index."""
    from facefill.data.tensors import from_uint8
    from facefill.metrics.seam import border_patches, border_points

    feats, faces = [], []
    for i, (im, m) in enumerate(zip(images, masks)):
        pts = border_points(m, points)
        feats.append(inception(from_uint8(list(border_patches(im, pts, patch)), signed=False)))
        faces += [i] * len(pts)
    return torch.cat(feats), np.array(faces)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work", type=Path)
    ap.add_argument("methods", nargs="+")
    ap.add_argument("--points", type=int, default=8)
    ap.add_argument("--patch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from facefill.align.sidecar import read_valid
    from facefill.data.io import read_image, read_mask
    from facefill.metrics.inception import load_inception
    from facefill.metrics.seam import seam_kid

    keys = sorted(p.stem for p in (args.work / "masked").glob("*.png") if not p.name.endswith(".mask.png"))
    reals = [read_image(args.work / "val" / f"{k}.png") for k in keys]
    masks = [read_mask(args.work / "masked" / f"{k}.mask.png") for k in keys]
    valids = [read_valid(args.work / "val" / f"{k}.png", r.shape[0]) for k, r in zip(keys, reals)]
    inception = load_inception()
    real, faces = patch_features(reals, masks, inception, args.points, args.patch)
    for method in args.methods:
        outs = [read_image(args.work / method / f"{k}.png") for k in keys]
        outs = [np.where(v[..., None] > 0.5, o, r) if v is not None else o for o, r, v in zip(outs, reals, valids)]
        gen, _ = patch_features(outs, masks, inception, args.points, args.patch)
        s = seam_kid(gen, real, faces)
        print(json.dumps({"method": method, "faces": len(keys), "points": args.points, "patch": args.patch, **s}), flush=True)


if __name__ == "__main__":
    main()
