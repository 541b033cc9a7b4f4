"""``mask`` over a folder: aligned photos in, masked photos + binary masks out (see facefill.mask)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from facefill.align.landmarks import lazy_backend
from facefill.align.sidecar import read_sidecar, write_sidecar
from facefill.config import AlignConfig, MaskConfig
from facefill.data.batch import BatchReport, Progress, run_batch
from facefill.data.io import MASK_SUFFIX, list_images, read_image, write_image
from facefill.data.tensors import apply_mask_uint8
from facefill.errors import FacefillError
from facefill.mask.region import check_aligned, face_mask, landmarks_for
from facefill.pipeline.outputs import (Write, check_input_name, check_write_plan, input_key, open_run, plan_outputs,
                                       write_failures)


def mask_face(image: np.ndarray, landmarks: np.ndarray, cfg: MaskConfig = MaskConfig()) -> tuple[np.ndarray, np.ndarray]:
    """One aligned photo ``(S, S, 3) uint8`` masked as ``mask`` writes it: the masked photo
    (context filled with ``cfg.fill``, the edge feathered over ``cfg.feather`` px) and the binary
    mask ``(S, S) uint8`` (255 = face: the grown hull, where the feathered mask is >= 0.5)."""
    soft = face_mask(landmarks, image.shape[:2], cfg.grow, cfg.feather)
    return apply_mask_uint8(image, soft, cfg.fill), ((soft >= 0.5) * 255).astype(np.uint8)


def mask_settings(cfg: MaskConfig) -> dict:
    """The ``"mask"`` entry ``mask`` adds to a sidecar."""
    return {"grow": cfg.grow, "feather": cfg.feather, "fill": list(cfg.fill)}


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
    sidecar, or are re-detected when there is none; photos that are not aligned (see
    :func:`facefill.mask.region.check_aligned`) fail with the fix."""
    src, dst = Path(src), Path(dst)
    inputs = list_images(src)
    if not inputs:
        raise FacefillError(f"no images found in {src}; point mask at the output folder of 'facefill align'")
    check_write_plan([Write("output folder", dst)], {"input folder": src})
    plan = plan_outputs(inputs, src, dst)
    engine = lazy_backend(backend)

    def work(path: Path) -> list[Path] | None:
        check_input_name(path)
        out = plan[path]
        mask_out = out.with_name(out.stem + MASK_SUFFIX)
        if not overwrite and out.is_file() and mask_out.is_file():
            return None
        image = read_image(path)
        side = read_sidecar(path)
        landmarks = landmarks_for(path, image, engine)
        check_aligned(path, image, landmarks, side, (align.left_eye, align.right_eye))
        masked, mask = mask_face(image, landmarks, cfg)
        written = [write_image(out, masked), write_image(mask_out, mask)]
        side = side or {"source": path.name, "landmarks": np.round(landmarks, 3).tolist()}
        side["mask"] = mask_settings(cfg)
        written.append(write_sidecar(out, side))
        return written

    settings = {**asdict(cfg), "landmarks": backend}  # the backend only for photos without a sidecar
    with open_run(dst, "mask", settings, overwrite=overwrite, has_outputs=any(p.is_file() for p in plan.values())) as run:
        report = run_batch(inputs, work, progress, should_stop,
                           on_done=lambda p, files: run.record(input_key(p, src), files))
        write_failures(dst, report.failed)
    return report
