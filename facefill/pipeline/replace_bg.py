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

import math
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from facefill.blend import laplacian_blend
from facefill.data.batch import BatchReport, Progress, run_batched
from facefill.data.io import FG_SUFFIX, MASK_SUFFIX, list_images, read_image, write_image
from facefill.errors import FacefillError, ImageError
from facefill.pipeline.outputs import (Write, check_input_name, check_write_plan, file_digest, input_key, open_run,
                                       plan_outputs, write_failures)
from facefill.segment import get_segmenter, refine


@dataclass
class ReplaceOptions:
    segmenter: str = "auto"
    levels: int = 5
    feather: float = 1.0
    threshold: float = 0.5
    saliency: bool = False  # the paper's union with the salient contour: lowers IoU here (docs/replace-bg.md)
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


def max_levels(h: int, w: int) -> int:
    """The most pyramid levels an ``h x w`` image supports (the coarsest level >= 1 px)."""
    return int(math.floor(math.log2(max(1, min(h, w))))) + 1


def replace_folder(src: str | os.PathLike, dst: str | os.PathLike, background: str | os.PathLike,
                   opts: ReplaceOptions = ReplaceOptions(), device: str | torch.device = "cpu",
                   progress: Progress | None = None,
                   should_stop: Callable[[], bool] | None = None) -> BatchReport:
    """Put a background from ``background`` (an image or a folder) behind the person in every
    image under ``src``; write ``dst/<name>.png`` (and ``<name>.fg.png`` with ``save_masks``).
    Failed inputs are listed in the report and ``dst/failures.tsv``."""
    src, dst, background = Path(src), Path(dst), Path(background)
    if not 0.0 < opts.threshold < 1.0:
        raise FacefillError(f"threshold must be between 0 and 1 (exclusive), not {opts.threshold}")
    if opts.assign not in ("round-robin", "random"):
        raise FacefillError(f"--assign must be round-robin or random, not {opts.assign!r}")
    files = list_images(src)
    if not files:
        raise FacefillError(f"no images found in {src}")
    bg_files = list_images(background)
    if not bg_files:
        raise FacefillError(f"--background {background}: no background image found")
    check_write_plan([Write("output folder", dst)],
                     {"input folder": src, "--background": background, "--face-masks": opts.face_masks_dir})
    plan = plan_outputs(files, src, dst)
    backgrounds: dict[Path, np.ndarray] = {}

    def bg_image(p: Path) -> np.ndarray:
        if p not in backgrounds:
            backgrounds[p] = read_image(p)
        return backgrounds[p]

    bg_image(bg_files[0])  # an unreadable single background fails here, before any work
    rng = random.Random(opts.seed)
    picks = {f: bg_files[i % len(bg_files)] if opts.assign == "round-robin" else rng.choice(bg_files)
             for i, f in enumerate(files)}
    settings = {k: v for k, v in asdict(opts).items() if k not in ("batch_size", "overwrite")}
    settings["background"] = [str(p.resolve()) for p in bg_files]
    settings["background_sha256"] = file_digest(*bg_files)  # a background edited in place changes the outputs
    # locked and checked against the run record before the segmenter loads
    with open_run(dst, "replace-bg", settings, overwrite=opts.overwrite,
                  has_outputs=any(p.is_file() for p in plan.values())) as run:
        device = torch.device(device)
        segment = get_segmenter(opts.segmenter, device=device)
        report = BatchReport(total=len(files))
        todo = []
        for path in files:
            (report.skipped if not opts.overwrite and plan[path].is_file() else todo).append(path)

        def load(path: Path) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray | None]:
            check_input_name(path)
            image = read_image(path)
            h, w = image.shape[:2]
            if opts.levels > max_levels(h, w):
                raise ImageError(f"{path}: {w}x{h} supports at most --levels {max_levels(h, w)}, not {opts.levels}")
            face = _face_mask_for(path, src, opts, (h, w))
            return path, image, fit_background(bg_image(picks[path]), h, w), face

        def process(loaded: list) -> list[list[Path]]:
            # segment the whole chunk at once (the network runs batched, on ``device``), then refine
            probs = segment.batch([i[1] for i in loaded], [i[3] for i in loaded])
            items = [(path, image, bg, refine(p, image, face, opts.threshold, opts.saliency).astype(np.float32))
                     for (path, image, bg, face), p in zip(loaded, probs)]
            written: dict[Path, list[Path]] = {}
            groups: dict[tuple[int, int], list] = {}
            for item in items:
                groups.setdefault(item[1].shape[:2], []).append(item)
            for group in groups.values():
                fg = torch.from_numpy(np.stack([i[1] for i in group])).permute(0, 3, 1, 2).float().to(device)
                bg = torch.from_numpy(np.stack([i[2] for i in group])).permute(0, 3, 1, 2).float().to(device)
                m = torch.from_numpy(np.stack([i[3] for i in group]))[:, None].float().to(device)
                out = laplacian_blend(fg, bg, m, opts.levels, opts.feather)
                out = out.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
                for (path, image, _, mask), img in zip(group, out):
                    # the pyramid's coarse bands bleed background colour into the person; keep the
                    # person's own pixels away from the seam (exact beyond opts.keep px from it)
                    files_i = [write_image(plan[path], keep_inside(image, img, mask, opts.keep))]
                    if opts.save_masks:
                        files_i.append(write_image(plan[path].with_name(plan[path].stem + FG_SUFFIX),
                                                   (mask * 255 + 0.5).astype(np.uint8)))
                    written[path] = files_i
            return [written[item[0]] for item in items]

        run_batched(todo, load, process, opts.batch_size, report, progress, should_stop,
                    on_done=lambda p, written: run.record(input_key(p, src), written))
        write_failures(dst, report.failed)
    return report


__all__ = ["ReplaceOptions", "fit_background", "keep_inside", "max_levels", "replace_folder"]
