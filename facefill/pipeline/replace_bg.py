"""``replace-bg``: put a new background behind the person (face + hallucinated context).

Per image: foreground = refine(segmenter(image), image, face mask) (see ``facefill.segment``);
the face mask, when known (``<name>.mask.png`` from ``facefill mask`` in ``face_masks_dir``, or
beside the image), is always foreground. The background image is resized to cover the image and
centre-cropped, then blended in (:func:`facefill.blend.composite.composite`: a Laplacian blend,
batched on ``device``, with the person's own pixels kept exactly beyond ``keep`` px inside the
foreground edge). Padding is never person: where ``<name>.valid.png`` (written by ``align`` and by
``hallucinate`` on photos) says the frame left the photo, the new background shows.
Backgrounds from a folder are assigned round-robin (sorted names) or at random with a seed.
Runs on :func:`facefill.pipeline.runner.run_folder`.
"""

from __future__ import annotations

import os
import random
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from facefill.blend.composite import composite, fit_background, keep_inside, max_levels
from facefill.data.batch import BatchReport, Progress
from facefill.data.io import FG_SUFFIX, MASK_SUFFIX, VALID_SUFFIX, companion_path, list_images, read_image, read_mask, write_image
from facefill.errors import FacefillError, ImageError
from facefill.options import ReplaceOptions
from facefill.pipeline.outputs import file_digest
from facefill.pipeline.runner import Folders, Job, Plan, default_threads, run_folder


def _face_mask_for(path: Path, plan: Plan, opts: ReplaceOptions, shape: tuple[int, int]) -> np.ndarray | None:
    """The face mask of ``path`` from ``--face-masks`` (same relative path), else beside it."""
    cands = [companion_path(path, MASK_SUFFIX)]
    if opts.face_masks_dir is not None:
        cands.insert(0, companion_path(Path(opts.face_masks_dir) / plan.key(path), MASK_SUFFIX))
    for c in cands:
        m = read_mask(c, shape)
        if m is not None:
            return m
        if c.is_file():  # there, but not a mask of this image: never ignored in silence
            raise ImageError(f"{c}: not a readable {shape[1]}x{shape[0]} mask for {path.name}; re-run 'facefill mask' "
                             "on the aligned faces, or remove it")
    return None


def replace_bg_folder(src: str | os.PathLike, dst: str | os.PathLike, background: str | os.PathLike,
                   opts: ReplaceOptions = ReplaceOptions(), device: str | torch.device = "cpu",
                   progress: Progress | None = None,
                   should_stop: Callable[[], bool] | None = None) -> BatchReport:
    """Put a background from ``background`` (an image or a folder) behind the person in every
    image under ``src``; write ``dst/<name>.png`` (and ``<name>.fg.png`` with ``save_masks``).
    Failed inputs are listed in the report and ``dst/failures.tsv``."""
    background = Path(background)
    if opts.face_masks_dir is not None and not Path(opts.face_masks_dir).is_dir():
        raise FacefillError(f"--face-masks {opts.face_masks_dir} is not a folder; give the output folder of "
                            "'facefill mask' (its <name>.mask.png files), or leave the option out")
    bg_files = list_images(background)
    if not bg_files:
        raise FacefillError(f"--background {background}: no background image found")
    first = read_image(bg_files[0])  # an unreadable single background fails here, before any folder is made
    folders = Folders(Path(src), Path(dst), f"no images found in {src}",
                      reads={"--background": background, "--face-masks": opts.face_masks_dir})
    return run_folder(folders, lambda plan: replace_job(plan, bg_files, opts, torch.device(device), first), opts.overwrite,
                      tuple(opts.shard), progress=progress, should_stop=should_stop)[0]


def _assign(inputs: list[Path], bg_files: list[Path], opts: ReplaceOptions) -> dict[Path, Path]:
    """Each input's background, by its place among all the folder's inputs (``inputs`` is shard
    ``i/n`` of them: its k-th is the folder's ``i + k*n``-th), so a sharded run assigns what one
    process would."""
    i, n = opts.shard
    if opts.assign == "round-robin":
        return {f: bg_files[(i + k * n) % len(bg_files)] for k, f in enumerate(inputs)}
    rng = random.Random(opts.seed)
    draws = [rng.choice(bg_files) for _ in range(i + len(inputs) * n)]
    return {f: draws[i + k * n] for k, f in enumerate(inputs)}


def replace_job(plan: Plan, bg_files: list[Path], opts: ReplaceOptions, device: torch.device,
                first: np.ndarray) -> Job:
    """``replace-bg`` as a :class:`~facefill.pipeline.runner.Job`: load = the image, its face
    mask, validity map and background; compute = segment the chunk at once (the network runs
    batched), refine, and blend each size group in one batch; write = the image (and its mask).
    ``first``: ``bg_files[0]`` decoded (:func:`replace_bg_folder` read it to check it)."""
    from facefill.segment import get_segmenter, refine

    backgrounds: dict[Path, np.ndarray] = {bg_files[0]: first}

    def bg_image(p: Path) -> np.ndarray:
        if p not in backgrounds:
            backgrounds[p] = read_image(p)
        return backgrounds[p]

    picks = _assign(plan.inputs, bg_files, opts)
    segmenter: list = []  # loaded on the first chunk: after the lock and the run record's checks

    def load(path: Path) -> tuple:
        image = read_image(path)
        h, w = image.shape[:2]
        if opts.levels > max_levels(h, w):
            raise ImageError(f"{path}: {w}x{h} supports at most --levels {max_levels(h, w)}, not {opts.levels}")
        valid = read_mask(companion_path(path, VALID_SUFFIX), (h, w))
        return image, fit_background(bg_image(picks[path]), h, w), _face_mask_for(path, plan, opts, (h, w)), valid

    def compute(items: list[tuple]) -> list[tuple[np.ndarray, np.ndarray]]:
        if not segmenter:
            segmenter.append(get_segmenter(opts.segmenter, device=device))
        probs = segmenter[0].batch([it[0] for it in items], [it[2] for it in items])
        masks = []
        for (image, _, face, valid), p in zip(items, probs):
            fg = refine(p, image, face, opts.threshold, opts.saliency).astype(np.float32)
            masks.append(fg if valid is None else fg * valid)  # padding is never person
        outs: list = [None] * len(items)
        groups: dict[tuple[int, int], list[int]] = {}
        for j, (image, *_) in enumerate(items):
            groups.setdefault(image.shape[:2], []).append(j)
        for idx in groups.values():
            blended = composite([items[j][0] for j in idx], [items[j][1] for j in idx], [masks[j] for j in idx],
                                opts.levels, opts.feather, opts.keep, device)
            for j, out in zip(idx, blended):
                outs[j] = (out, masks[j])
        return outs

    def write(path: Path, _, result: tuple[np.ndarray, np.ndarray]) -> list[Path]:
        out, mask = result
        files = []
        if opts.save_masks:  # before the image, which marks the input done
            files.append(write_image(companion_path(plan.outputs[path], FG_SUFFIX), (mask * 255 + 0.5).astype(np.uint8)))
        return files + [write_image(plan.outputs[path], out)]

    settings = {k: v for k, v in asdict(opts).items() if k not in ("batch_size", "overwrite", "shard")}
    settings["background"] = [str(p.resolve()) for p in bg_files]
    settings["background_sha256"] = file_digest(*bg_files)  # a background edited in place changes the outputs
    def outputs(path: Path) -> list[Path]:
        return [plan.outputs[path]] + ([companion_path(plan.outputs[path], FG_SUFFIX)] if opts.save_masks else [])

    return Job("replace-bg", settings, load, compute, write, done=lambda p: plan.outputs[p].is_file(), outputs=outputs,
               batch_size=opts.batch_size, read_ahead=default_threads(), write_threads=default_threads())


__all__ = ["ReplaceOptions", "fit_background", "keep_inside", "max_levels", "replace_bg_folder"]
