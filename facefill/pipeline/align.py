"""``align`` over a folder: raw photos in, aligned crops + sidecars out (see facefill.align)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from facefill.align.core import align_image
from facefill.align.landmarks import LandmarkBackend, get_backend
from facefill.align.sidecar import sidecar_path, valid_path, write_sidecar
from facefill.config import AlignConfig
from facefill.data.batch import BatchReport, Progress, run_batch
from facefill.data.io import list_images, read_image, write_image
from facefill.errors import FacefillError, NoFaceError
from facefill.pipeline.outputs import RunManifest, check_output_dir, plan_outputs, write_failures


def align_folder(
    src: str | Path,
    dst: str | Path,
    backend: str | LandmarkBackend = "dlib",
    cfg: AlignConfig = AlignConfig(),
    faces: str = "largest",
    overwrite: bool = False,
    device: str = "cpu",
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> BatchReport:
    """Align every image under ``src`` into ``dst`` (sub-folders mirrored): per face
    ``<name>.png`` ``(S, S, 3) uint8``, ``<name>.json`` (sidecar) and, when part of the frame lies
    outside the photo, ``<name>.valid.png``.

    With ``faces="all"`` the crops of one photo are ``<stem>_0.png``, ``<stem>_1.png``... Outputs
    that exist are kept unless ``overwrite`` (so an interrupted run resumes), but only when the
    folder's run record says they were made with the same settings.
    """
    src, dst = Path(src), Path(dst)
    if faces not in ("largest", "all"):
        raise FacefillError(f"faces must be 'largest' or 'all', got {faces!r}")
    inputs = list_images(src)
    if not inputs:
        raise FacefillError(f"no images (jpg, png, webp, bmp, tif) found in {src}")
    check_output_dir(dst, [src])
    plan = plan_outputs(inputs, src, dst)
    engine = get_backend(backend) if isinstance(backend, str) else backend
    manifest = RunManifest(dst, "align", {"backend": engine.name, "faces": faces, **asdict(cfg)})
    manifest.check_resume(any(p.exists() for p in plan.values()), overwrite)
    manifest.write()

    def work(path: Path) -> list[Path] | None:
        base = plan[path]
        first = base if faces == "largest" else base.with_name(f"{base.stem}_0.png")
        if not overwrite and first.exists() and sidecar_path(first).exists():
            return None
        try:
            aligned = align_image(read_image(path), engine, cfg, faces, device)
        except NoFaceError:
            raise NoFaceError(f"{path}: no face found; it needs a visible frontal face "
                              "(try --landmarks fan, or --upsample 2 for small faces)") from None
        written = []
        for i, face in enumerate(aligned):
            out = base if faces == "largest" else base.with_name(f"{base.stem}_{i}.png")
            written.append(write_image(out, face.image))
            valid = valid_path(out)
            if face.valid is not None and not face.valid.all():
                written.append(write_image(valid, face.valid.astype(np.uint8) * 255))
            else:
                valid.unlink(missing_ok=True)
            rel = str(path.relative_to(src)) if src.is_dir() else path.name
            written.append(write_sidecar(out, face.sidecar(rel, engine.name, cfg)))
        return written

    report = run_batch(inputs, work, progress, should_stop)
    write_failures(dst, report.failed)
    return report
