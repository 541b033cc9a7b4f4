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
from facefill.pipeline.outputs import RunManifest, check_output_dir, plan_outputs, write_failures


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
    check_output_dir(dst, [src])
    plan = plan_outputs(inputs, src, dst)
    manifest = RunManifest(dst, "mask", asdict(cfg))
    manifest.check_resume(any(p.exists() for p in plan.values()), overwrite)
    manifest.write()
    engine = lazy_backend(backend)

    def work(path: Path) -> list[Path] | None:
        out = plan[path]
        mask_out = out.with_name(out.stem + MASK_SUFFIX)
        if not overwrite and out.exists() and mask_out.exists():
            return None
        image = read_image(path)
        side = read_sidecar(path)
        landmarks = landmarks_for(path, image, engine)
        check_aligned(path, image, landmarks, side, (align.left_eye, align.right_eye))
        mask = face_mask(landmarks, image.shape[:2], cfg.grow, cfg.feather)
        written = [write_image(out, apply_mask_uint8(image, mask, cfg.fill)),
                   write_image(mask_out, ((mask >= 0.5) * 255).astype(np.uint8))]
        side = side or {"source": path.name, "landmarks": np.round(landmarks, 3).tolist()}
        side["mask"] = {"grow": cfg.grow, "feather": cfg.feather, "fill": list(cfg.fill)}
        written.append(write_sidecar(out, side))
        return written

    report = run_batch(inputs, work, progress, should_stop)
    write_failures(dst, report.failed)
    return report
