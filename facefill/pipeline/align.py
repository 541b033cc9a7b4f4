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
from facefill.pipeline.outputs import (Write, check_input_name, check_write_plan, input_key, open_run, plan_outputs,
                                       write_failures)


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

    With ``faces="all"`` the crops of one photo are ``<stem>_0.png``, ``<stem>_1.png``..., written
    last to first, so a photo counts as done only when face 0's sidecar exists. Outputs that
    exist are kept unless ``overwrite`` (so an interrupted run resumes), but only when the
    folder's run record says they were made with the same settings (backend and its detector and
    upsampling, faces, config); ``overwrite`` first removes every file earlier runs wrote there.
    Inputs named like companions (``q.valid.jpg``) fail (:func:`~facefill.pipeline.outputs.check_input_name`).
    """
    src, dst = Path(src), Path(dst)
    if faces not in ("largest", "all"):
        raise FacefillError(f"faces must be 'largest' or 'all', got {faces!r}")
    inputs = list_images(src)
    if not inputs:
        raise FacefillError(f"no images (jpg, png, webp, bmp, tif) found in {src}")
    check_write_plan([Write("output folder", dst)], {"input folder": src})
    plan = plan_outputs(inputs, src, dst)
    engine = get_backend(backend) if isinstance(backend, str) else backend
    settings = {"backend": engine.name, **getattr(engine, "settings", {}), "faces": faces, **asdict(cfg)}

    def face_path(base: Path, i: int) -> Path:
        return base if faces == "largest" else base.with_name(f"{base.stem}_{i}.png")

    def work(path: Path) -> list[Path] | None:
        check_input_name(path)
        first = face_path(plan[path], 0)
        if not overwrite and first.is_file() and sidecar_path(first).is_file():
            return None  # face 0's sidecar is written last: the photo is complete
        try:
            aligned = align_image(read_image(path), engine, cfg, faces, device)
        except NoFaceError:
            raise NoFaceError(f"{path}: no face found; it needs a visible frontal face "
                              "(try --landmarks fan, or --upsample 2 for small faces)") from None
        written = []
        rel = input_key(path, src)
        for i in reversed(range(len(aligned))):  # face 0 last: its sidecar marks the photo done
            face, out = aligned[i], face_path(plan[path], i)
            written.append(write_image(out, face.image))
            valid = valid_path(out)
            if face.valid is not None and not face.valid.all():
                written.append(write_image(valid, face.valid.astype(np.uint8) * 255))
            else:
                valid.unlink(missing_ok=True)
            written.append(write_sidecar(out, face.sidecar(rel, engine.name, cfg)))
        return written

    with open_run(dst, "align", settings, overwrite=overwrite,
                  has_outputs=any(face_path(p, 0).is_file() for p in plan.values())) as run:
        report = run_batch(inputs, work, progress, should_stop,
                           on_done=lambda p, files: run.record(input_key(p, src), files))
        write_failures(dst, report.failed)
    return report

