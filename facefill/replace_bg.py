"""``replace-bg``: put a new background behind the person (face + hallucinated context).

Per image: foreground = refine(segmenter(image), image, face mask) (see ``facefill.segment``);
the face mask, when known (``<name>.mask.png`` from ``facefill mask`` in ``face_masks_dir``, or
beside the image), is always foreground. The background image is resized to cover the image and
centre-cropped, then blended in with :func:`facefill.blend.laplacian_blend`, batched on
``device``. The pyramid's coarse bands would tint the person with the background's colours, so
the person's own pixels are composited back, exactly beyond ``keep`` px inside the foreground
edge and ramped over those ``keep`` px; the seam and everything outside come from the blend. Backgrounds from a folder are assigned round-robin (sorted names) or at random with
a seed.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from facefill.blend import laplacian_blend
from facefill.data.batch import BatchReport
from facefill.data.io import FG_SUFFIX, MASK_SUFFIX, list_images, mirror_path, read_image, write_image
from facefill.errors import FacefillError
from facefill.segment import get_segmenter, refine


@dataclass
class ReplaceOptions:
    segmenter: str = "auto"
    levels: int = 5
    feather: float = 1.0
    threshold: float = 0.5
    saliency: bool = True
    assign: str = "round-robin"  # or "random"
    seed: int = 0
    batch_size: int = 16
    face_masks_dir: Path | None = None
    save_masks: bool = False
    overwrite: bool = False
    keep: int = 4  # person pixels farther than this from the mask edge are kept exactly


def fit_background(bg: np.ndarray, h: int, w: int) -> np.ndarray:
    """Resize ``bg`` to cover ``h x w`` (keeping its aspect ratio) and centre-crop it."""
    bh, bw = bg.shape[:2]
    s = max(h / bh, w / bw)
    nh, nw = max(h, round(bh * s)), max(w, round(bw * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    r = cv2.resize(bg, (nw, nh), interpolation=interp)
    y, x = (nh - h) // 2, (nw - w) // 2
    return r[y:y + h, x:x + w]


def keep_inside(image: np.ndarray, blended: np.ndarray, mask: np.ndarray, keep: int) -> np.ndarray:
    """``image`` where the foreground is more than ``keep`` px from its edge, ``blended`` outside
    it, and a linear ramp across those ``keep`` px (weight ``min(1, d / (keep + 1))``)."""
    d = cv2.distanceTransform((mask > 0.5).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    w = np.minimum(1.0, d / (keep + 1))[..., None]  # keep=0: 1 inside (d >= 1), 0 outside
    out = (image.astype(np.float32) * w + blended.astype(np.float32) * (1 - w) + 0.5).astype(np.uint8)
    exact = w[..., 0] >= 1.0
    out[exact] = image[exact]
    return out


def _face_mask_for(path: Path, src: Path, opts: ReplaceOptions, shape: tuple[int, int]) -> np.ndarray | None:
    cands = [path.with_name(path.stem + MASK_SUFFIX)]
    if opts.face_masks_dir is not None:
        rel = path.relative_to(src) if src.is_dir() else Path(path.name)
        cands.insert(0, (opts.face_masks_dir / rel).with_name(rel.stem + MASK_SUFFIX))
    for c in cands:
        if c.is_file():
            m = cv2.imread(str(c), cv2.IMREAD_GRAYSCALE)
            if m is not None and m.shape == shape:
                return (m > 127).astype(np.float32)
    return None


def replace_folder(src: str | os.PathLike, dst: str | os.PathLike, background: str | os.PathLike,
                   opts: ReplaceOptions = ReplaceOptions(), device: str | torch.device = "cpu",
                   progress: Callable[[int, int, str], None] | None = None) -> BatchReport:
    src, dst, background = Path(src), Path(dst), Path(background)
    files = list_images(src)
    if not files:
        raise FacefillError(f"no images found in {src}")
    bg_files = list_images(background)
    if not bg_files:
        raise FacefillError(f"--background {background}: no background image found")
    if opts.assign not in ("round-robin", "random"):
        raise FacefillError(f"--assign must be round-robin or random, not {opts.assign!r}")
    backgrounds: dict[Path, np.ndarray] = {}

    def bg_image(p: Path) -> np.ndarray:
        if p not in backgrounds:
            backgrounds[p] = read_image(p)
        return backgrounds[p]

    for p in bg_files[:1]:
        bg_image(p)  # an unreadable single background fails here, before any work
    rng = random.Random(opts.seed)
    picks = [bg_files[i % len(bg_files)] if opts.assign == "round-robin" else rng.choice(bg_files)
             for i in range(len(files))]
    segment = get_segmenter(opts.segmenter)
    device = torch.device(device)
    report = BatchReport(total=len(files))
    pending: list[tuple[Path, np.ndarray, np.ndarray, np.ndarray]] = []

    def flush() -> None:
        groups: dict[tuple[int, int], list] = {}
        for item in pending:
            groups.setdefault(item[1].shape[:2], []).append(item)
        for items in groups.values():
            fg = torch.from_numpy(np.stack([i[1] for i in items])).permute(0, 3, 1, 2).float().to(device)
            bg = torch.from_numpy(np.stack([i[2] for i in items])).permute(0, 3, 1, 2).float().to(device)
            m = torch.from_numpy(np.stack([i[3] for i in items]))[:, None].float().to(device)
            out = laplacian_blend(fg, bg, m, opts.levels, opts.feather)
            out = out.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            for (path, image, _, mask), img in zip(items, out):
                # the pyramid's coarse bands bleed background colour into the person; keep the
                # person's own pixels away from the seam (exact beyond opts.keep px from it)
                img = keep_inside(image, img, mask, opts.keep)
                report.written.append(write_image(mirror_path(path, src, dst), img))
        pending.clear()

    for i, path in enumerate(files):
        out_path = mirror_path(path, src, dst)
        if not opts.overwrite and out_path.exists():
            report.skipped.append(path)
        else:
            try:
                image = read_image(path)
                h, w = image.shape[:2]
                face = _face_mask_for(path, src, opts, (h, w))
                fg = refine(segment(image, face), image, face, opts.threshold, opts.saliency)
                bg = fit_background(bg_image(picks[i]), h, w)
                if opts.save_masks:
                    write_image(out_path.with_name(out_path.stem + FG_SUFFIX), fg * 255)
                pending.append((path, image, bg, fg.astype(np.float32)))
            except Exception as exc:
                if not report.record_failure(path, exc):
                    raise
        if len(pending) >= opts.batch_size:
            flush()
        if progress is not None:
            progress(i + 1, len(files), path.name)
    if pending:
        flush()
    return report


__all__ = ["ReplaceOptions", "fit_background", "keep_inside", "replace_folder"]
