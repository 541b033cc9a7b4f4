"""Person masks per second: the selfie network (PyTorch port) at batch 1 and 64, next to GrabCut
(and MediaPipe itself when installed), on 128x128 aligned photos.

    python benchmarks/segment.py [--threads 1 2] [--device cpu] [--batches 1 64]
    python benchmarks/segment.py --quality     # numbers and contact sheet for docs/replace-bg.md

Inputs: the five aligned photos in tests/data/segment, repeated to fill a batch. A "mask" is the
whole segmenter call: uint8 RGB in, (128, 128) float32 probability out (for the network:
MediaPipe's exact resize to 256x256, the network, the resize back, copy to the CPU; a batch of
64 runs as chunks of 8 on the CPU, the segmenter's default, which is the fastest there).
Writes benchmarks/results/segment.{json,md}.

``--quality`` instead scores GrabCut and the network on the same photos against the hand-drawn
outlines (tests/data/segment/person_polygons.json: IoU, raw masks and after replace-bg's
refinement) and the label-free checks of tests/segment/test_quality.py, prints a Markdown
table, and writes docs/images/replace-bg-sheet.png (photo | GrabCut | network | the network's
replace-bg composite on a flat colour, as replace-bg makes it by default and with
``--no-saliency``; the hand outline in red on the masks).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import device_name, hair_band, peak_memory_mb, timeit, write  # noqa: E402

from facefill.mask.region import face_mask  # noqa: E402
from facefill.segment import GrabCutSegmenter, MediapipeSegmenter, SelfieSegmenter, mediapipe_available  # noqa: E402

ROOT = Path(__file__).parents[1]
DATA = ROOT / "tests" / "data" / "segment"


def _load() -> tuple[list[str], list[np.ndarray], list[np.ndarray], dict]:
    import json

    lms = json.loads((DATA / "landmarks.json").read_text())["landmarks"]
    names = sorted(lms)
    photos = [np.ascontiguousarray(cv2.imread(str(DATA / f"{n}.png"))[..., ::-1]) for n in names]
    faces = [face_mask(np.array(lms[n]), 128) for n in names]
    return names, photos, faces, lms


def quality() -> None:
    import json

    from facefill.blend import laplacian_blend
    from facefill.pipeline.replace_bg import ReplaceOptions, keep_inside
    from facefill.segment import refine

    names, photos, faces, lms = _load()
    polys = json.loads((DATA / "person_polygons.json").read_text())["polygons"]

    segs = {"grabcut": GrabCutSegmenter(), "selfie": SelfieSegmenter()}
    opts = ReplaceOptions()
    colour = np.array([40, 170, 90], np.uint8)  # flat green background (RGB)

    def composite(img: np.ndarray, fg: np.ndarray) -> np.ndarray:
        """replace-bg's blend (Laplacian pyramid, then the person's own pixels kept inside)."""
        def t(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float()

        mask = fg.astype(np.float32)
        out = laplacian_blend(t(img), t(np.broadcast_to(colour, img.shape)), torch.from_numpy(mask)[None, None],
                              opts.levels, opts.feather)
        return keep_inside(img, out.clamp(0, 255).round().byte()[0].permute(1, 2, 0).numpy(), mask, opts.keep)
    lines = ["| photo | method | IoU raw | IoU refined | IoU --no-saliency | face inside | hair band kept | "
             "top corners background |", "|---|---|---|---|---|---|---|---|"]
    totals: dict[str, list[tuple[float, float]]] = {k: [] for k in segs}
    z = 2
    labels = ["photo", "GrabCut", "selfie network", "replace-bg (default)", "--no-saliency"]
    header = np.full((24, len(labels) * 128 * z, 3), 255, np.uint8)
    for i, label in enumerate(labels):
        cv2.putText(header, label, (i * 128 * z + 6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    rows = [header]
    for name, img, face in zip(names, photos, faces):
        gt = np.zeros((128, 128), np.uint8)
        cv2.fillPoly(gt, [np.array(p, np.int32) for p in polys[name]], 1)
        gt = gt > 0
        band = hair_band(np.array(lms[name]), gt.shape)
        cells = [cv2.resize(img, None, fx=z, fy=z, interpolation=cv2.INTER_NEAREST)]
        for k, seg in segs.items():
            prob = seg(img, face)
            m = prob >= 0.5
            fg = refine(prob, img, face).astype(bool)
            plain = refine(prob, img, face, use_saliency=False).astype(bool)
            iou_raw, iou_ref, iou_plain = ((a & gt).sum() / (a | gt).sum() for a in (m, fg, plain))
            totals[k].append((iou_raw, iou_ref, iou_plain))
            corners = np.concatenate([m[:10, :10].ravel(), m[:10, -10:].ravel()])
            lines.append(f"| {name} | {k} | {iou_raw:.3f} | {iou_ref:.3f} | {iou_plain:.3f} | {m[face > 0.5].mean():.3f} | "
                         f"{m[band].mean():.3f} | {1 - corners.mean():.3f} |")
            cell = cv2.resize(np.repeat((prob * 255).astype(np.uint8)[..., None], 3, 2), None, fx=z, fy=z,
                              interpolation=cv2.INTER_NEAREST)
            for p in polys[name]:
                cv2.polylines(cell, [np.array(p, np.int32) * z], True, (255, 40, 40), 1, cv2.LINE_AA)
            cv2.putText(cell, f"IoU {iou_raw:.2f}", (6, 128 * z - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 200, 0), 1,
                        cv2.LINE_AA)
            cells.append(cell)
            if k == "selfie":
                comps = [composite(img, fg), composite(img, plain)]
        cells += [cv2.resize(c, None, fx=z, fy=z, interpolation=cv2.INTER_NEAREST) for c in comps]
        rows.append(np.concatenate(cells, 1))
    for k, v in totals.items():
        raw, ref, plain = np.mean(v, 0)
        lines.append(f"| **mean** | {k} | **{raw:.3f}** | **{ref:.3f}** | **{plain:.3f}** | | | |")
    print("\n".join(lines))
    out = ROOT / "docs" / "images" / "replace-bg-sheet.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.concatenate(rows, 0)[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {out} ({out.stat().st_size} bytes)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[2])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--min-time", type=float, default=3.0)
    ap.add_argument("--quality", action="store_true", help="IoU and checks, and docs/images/replace-bg-sheet.png")
    args = ap.parse_args()
    if args.quality:
        torch.set_num_threads(args.threads[0])
        return quality()
    _, photos, faces, _ = _load()
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        run(args, photos, faces, rows)
    print(write("segment", rows, ["device", "method", "batch", "masks_per_s", "ms_per_mask", "runs", "peak_mem_mb"]))


def run(args: argparse.Namespace, photos: list[np.ndarray], faces: list[np.ndarray], rows: list[dict]) -> None:

    def row(method: str, batch: int, device: str, fn) -> None:
        sec, runs = timeit(fn, device, min_time=args.min_time)
        rows.append({"device": device_name(device), "method": method, "batch": batch,
                     "masks_per_s": round(batch / sec, 1), "ms_per_mask": round(sec / batch * 1e3, 2),
                     "runs": runs, "peak_mem_mb": round(peak_memory_mb(device))})
        print(rows[-1], flush=True)

    net = SelfieSegmenter(device=args.device)
    for b in args.batches:
        imgs = [photos[i % len(photos)] for i in range(b)]
        row("selfie (port)", b, args.device, lambda imgs=imgs: net.batch(imgs))
    if args.device.startswith("cuda"):
        for b in args.batches:  # the tensor API with the images already on the GPU
            t = torch.from_numpy(np.stack([photos[i % len(photos)] for i in range(b)])).to(args.device)
            row("selfie (port), predict() on device tensors", b, args.device, lambda t=t: net.predict(t))
    gc = GrabCutSegmenter()
    for b in args.batches:  # no batching in GrabCut: one image after the other
        idx = [i % len(photos) for i in range(b)]
        row("grabcut", b, "cpu", lambda idx=idx: gc.batch([photos[i] for i in idx], [faces[i] for i in idx]))
    if mediapipe_available():
        mp = MediapipeSegmenter()
        row("mediapipe 0.10.21 itself (TFLite XNNPACK, its own threads)", 1, "cpu", lambda: mp(photos[0]))


if __name__ == "__main__":
    main()
