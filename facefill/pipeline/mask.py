"""``mask`` over a folder: aligned photos in, masked photos + binary masks out (see facefill.mask)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from facefill.align.landmarks import lazy_backend
from facefill.align.sidecar import read_sidecar, sidecar_path, write_sidecar
from facefill.config import AlignConfig, MaskConfig
from facefill.data.batch import BatchReport, Progress
from facefill.data.io import MASK_SUFFIX, read_image, write_image
from facefill.mask.region import check_aligned, landmarks_for, mask_face, mask_settings
from facefill.options import LANDMARKS
from facefill.pipeline.runner import Folders, Job, Plan, run_folder


def mask_folder(
    src: str | Path,
    dst: str | Path,
    cfg: MaskConfig = MaskConfig(),
    backend: str = "dlib",
    overwrite: bool = False,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    align: AlignConfig = AlignConfig(),
) -> BatchReport:
    """Mask every aligned image under ``src`` into ``dst``: ``<name>.png`` (the photo, context
    filled with ``cfg.fill``), ``<name>.mask.png`` (``(S, S) uint8``, 255 = face) and
    ``<name>.json`` (the sidecar with a ``mask`` entry). Landmarks come from the alignment
    sidecar, or are re-detected with ``backend`` when there is none; photos that are not aligned
    (see :func:`facefill.mask.region.check_aligned`: a sidecar's size, or ``align.size`` square
    with the eyes where ``align`` puts them) fail with the fix. Runs on
    :func:`facefill.pipeline.runner.run_folder`."""
    LANDMARKS.check(backend)
    folders = Folders(Path(src), Path(dst), f"no images found in {src}; point mask at the output folder of "
                      "'facefill align'")
    return run_folder(folders, lambda plan: mask_job(plan, cfg, backend, align), overwrite,
                      progress=progress, should_stop=should_stop)[0]


def mask_job(plan: Plan, cfg: MaskConfig, backend: str, align: AlignConfig) -> Job:
    """``mask`` as a :class:`~facefill.pipeline.runner.Job`: load = read, landmarks, check and
    mask; write = the masked photo, its mask, then its sidecar."""
    engine = lazy_backend(backend)

    def mask_out(path: Path) -> Path:
        out = plan.outputs[path]
        return out.with_name(out.stem + MASK_SUFFIX)

    def load(path: Path) -> tuple[np.ndarray, np.ndarray, dict]:
        image = read_image(path)
        side = read_sidecar(path)
        landmarks = landmarks_for(path, image, engine)
        check_aligned(path, image, landmarks, side, (align.left_eye, align.right_eye), size=align.size)
        masked, mask = mask_face(image, landmarks, cfg)
        side = side or {"source": path.name, "landmarks": np.round(landmarks, 3).tolist()}
        side["mask"] = mask_settings(cfg)
        return masked, mask, side

    def write(path: Path, item: tuple[np.ndarray, np.ndarray, dict], _) -> list[Path]:
        masked, mask, side = item
        out = plan.outputs[path]
        return [write_image(out, masked), write_image(mask_out(path), mask), write_sidecar(out, side)]

    settings = {**mask_settings(cfg), "landmarks": backend}  # the backend only for photos without a sidecar
    return Job("mask", settings, load, compute=lambda items: [None] * len(items), write=write,
               done=lambda p: plan.outputs[p].is_file() and mask_out(p).is_file(),
               started=lambda p: plan.outputs[p].is_file(),
               outputs=lambda p: [plan.outputs[p], mask_out(p), sidecar_path(plan.outputs[p])])
