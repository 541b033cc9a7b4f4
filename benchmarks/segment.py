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


Z = 2  # the contact sheet's zoom
LABELS = ["photo", "GrabCut", "selfie network", "replace-bg (default)", "--no-saliency"]


def _zoom(img: np.ndarray) -> np.ndarray:
    return cv2.resize(img, None, fx=Z, fy=Z, interpolation=cv2.INTER_NEAREST)


def _on_green(img: np.ndarray, fg: np.ndarray) -> np.ndarray:
    """replace-bg's composite of ``img`` over a flat green background with foreground ``fg``."""
    from facefill.blend.composite import composite
    from facefill.options import ReplaceOptions

    opts = ReplaceOptions()
    green = np.broadcast_to(np.array([40, 170, 90], np.uint8), img.shape)
    return composite([img], [green], [fg.astype(np.float32)], opts.levels, opts.feather, opts.keep)[0]


def _prob_cell(prob: np.ndarray, polygons: list, iou: float) -> np.ndarray:
    """The probability map, zoomed, with the hand-drawn outline and the raw IoU."""
    cell = _zoom(np.repeat((prob * 255).astype(np.uint8)[..., None], 3, 2))
    for p in polygons:
        cv2.polylines(cell, [np.array(p, np.int32) * Z], True, (255, 40, 40), 1, cv2.LINE_AA)
    cv2.putText(cell, f"IoU {iou:.2f}", (6, 128 * Z - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 200, 0), 1, cv2.LINE_AA)
    return cell


def _score_photo(name: str, img: np.ndarray, face: np.ndarray, lm: np.ndarray, polygons: list,
                 segs: dict) -> tuple[list[str], dict[str, tuple[float, float, float]], np.ndarray]:
    """One photo: a table line per segmenter, its (raw, refined, --no-saliency) IoUs, its sheet row."""
    from facefill.segment import refine

    gt = np.zeros((128, 128), np.uint8)
    cv2.fillPoly(gt, [np.array(p, np.int32) for p in polygons], 1)
    gt = gt > 0
    band = hair_band(lm, gt.shape)
    lines, ious, cells = [], {}, [_zoom(img)]
    for k, seg in segs.items():
        prob = seg(img, face)
        m = prob >= 0.5
        fg = refine(prob, img, face).astype(bool)
        plain = refine(prob, img, face, use_saliency=False).astype(bool)
        ious[k] = tuple(float((a & gt).sum() / (a | gt).sum()) for a in (m, fg, plain))
        corners = np.concatenate([m[:10, :10].ravel(), m[:10, -10:].ravel()])
        raw, ref, no_sal = ious[k]
        lines.append(f"| {name} | {k} | {raw:.3f} | {ref:.3f} | {no_sal:.3f} | {m[face > 0.5].mean():.3f} | "
                     f"{m[band].mean():.3f} | {1 - corners.mean():.3f} |")
        cells.append(_prob_cell(prob, polygons, raw))
        if k == "selfie":
            comps = [_on_green(img, fg), _on_green(img, plain)]
    cells += [_zoom(c) for c in comps]
    return lines, ious, np.concatenate(cells, 1)


def quality() -> None:
    import json

    names, photos, faces, lms = _load()
    polys = json.loads((DATA / "person_polygons.json").read_text())["polygons"]
    segs = {"grabcut": GrabCutSegmenter(), "selfie": SelfieSegmenter()}
    lines = ["| photo | method | IoU raw | IoU refined | IoU --no-saliency | face inside | hair band kept | "
             "top corners background |", "|---|---|---|---|---|---|---|---|"]
    totals: dict[str, list[tuple[float, float, float]]] = {k: [] for k in segs}
    header = np.full((24, len(LABELS) * 128 * Z, 3), 255, np.uint8)
    for i, label in enumerate(LABELS):
        cv2.putText(header, label, (i * 128 * Z + 6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    rows = [header]
    for name, img, face in zip(names, photos, faces):
        photo_lines, ious, row = _score_photo(name, img, face, np.array(lms[name]), polys[name], segs)
        lines += photo_lines
        for k, v in ious.items():
            totals[k].append(v)
        rows.append(row)
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
