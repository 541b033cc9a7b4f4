"""Before/after sheets of the refined face region (:mod:`facefill.mask.refine`).

    python tools/refine_sheet.py ALIGNED SHEET_DIR [--names a.png b.png ...] [--per-sheet 24] [--zoom 2]

For each aligned face (``facefill align`` output, landmarks from its sidecar), three tiles: the
photo, the plain hull (outside dimmed), and the refined region (outside dimmed, the removed
pixels tinted red, the always-kept core outlined in green). Sheets of ``--per-sheet`` faces go to
SHEET_DIR/refine_NN.png, and SHEET_DIR/refine.tsv lists each face's removed pixel count. Keep
SHEET_DIR outside the repository for CelebA faces (their licence forbids committing them).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np


def tiles(image: np.ndarray, hull: np.ndarray, refined: np.ndarray, core: np.ndarray, zoom: int,
          compact: bool = False) -> np.ndarray:
    """One row: photo | hull | refined (removed tinted red, core outlined green), ``zoom`` x;
    ``compact``: without the hull tile (the refined tile shows the hull as kept + tinted)."""
    dim = (image * 0.35).astype(np.uint8)
    h = np.where(hull[..., None], image, dim)
    r = np.where(refined[..., None], image, dim)
    gone = hull & ~refined
    r[gone] = (0.4 * r[gone] + 0.6 * np.array([255, 0, 0])).astype(np.uint8)
    row = np.concatenate([image, r] if compact else [image, h, r], 1)
    row = cv2.resize(row, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(core.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    w = image.shape[1] * zoom
    for c in contours:
        cv2.polylines(row, [c * zoom + np.array([(1 if compact else 2) * w, 0])], True, (0, 200, 0), 1)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("aligned", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--names", nargs="*", default=None)
    ap.add_argument("--per-sheet", type=int, default=24)
    ap.add_argument("--zoom", type=int, default=2)
    ap.add_argument("--columns", type=int, default=2)
    ap.add_argument("--compact", action="store_true", help="photo and refined tile only")
    ap.add_argument("--only-removed", action="store_true", help="draw only the faces that lost pixels")
    args = ap.parse_args()

    from facefill.align.sidecar import read_sidecar
    from facefill.data.io import read_image
    from facefill.mask.refine import RefineSettings, core_mask, refine_face_masks
    from facefill.mask.region import face_mask

    names = args.names or sorted(p.name for p in args.aligned.glob("*.png")
                                 if not p.name.endswith((".valid.png", ".mask.png")))
    args.out.mkdir(parents=True, exist_ok=True)
    lines = ["name\thull_px\tremoved_px"]
    for s in range(0, len(names), args.per_sheet):
        part = names[s:s + args.per_sheet]
        images = [read_image(args.aligned / n) for n in part]
        lms = [np.asarray(read_sidecar(args.aligned / n)["landmarks"], np.float64) for n in part]
        hulls = [(face_mask(lm, im.shape[:2]) > 0.5).astype(np.uint8) * 255 for im, lm in zip(images, lms)]
        refined = refine_face_masks(images, hulls, lms)
        rows = []
        for n, im, lm, hu, rf in zip(part, images, lms, hulls, refined):
            lines.append(f"{n}\t{int((hu > 127).sum())}\t{int(((hu > 127) & (rf <= 127)).sum())}")
            if args.only_removed and (rf >= hu).all():
                continue
            row = tiles(im, hu > 127, rf > 127, core_mask(lm, im.shape[:2], RefineSettings().core), args.zoom,
                        args.compact)
            cv2.putText(row, n[:18], (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1)
            rows.append(row)
        if not rows:
            continue
        while len(rows) % args.columns:
            rows.append(np.zeros_like(rows[0]))
        grid = np.concatenate([np.concatenate(rows[i:i + args.columns], 1) for i in range(0, len(rows), args.columns)], 0)
        cv2.imwrite(str(args.out / f"refine_{s // args.per_sheet:02d}.png"), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    (args.out / "refine.tsv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
