"""``align`` over a folder: raw photos in, aligned crops + sidecars out (see facefill.align)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from facefill.align.core import AlignedFace, align_file
from facefill.align.landmarks import LandmarkBackend, get_backend
from facefill.align.sidecar import sidecar_path, valid_path, write_sidecar
from facefill.config import AlignConfig
from facefill.data.batch import BatchReport, Progress, run_batch
from facefill.data.io import list_images, read_image, write_image
from facefill.errors import FacefillError, NoFaceError
from facefill.pipeline.outputs import (Write, check_input_name, check_write_plan, input_key, open_run, plan_outputs,
                                       write_failures)


#: what to try when a photo has no face (align and the on-the-fly alignment of hallucinate)
NO_FACE_FIX = "it needs a visible frontal face (try --landmarks fan, or --upsample 2 for small faces)"


def face_path(base: Path, i: int, faces: str) -> Path:
    """Where face ``i`` of a photo goes: ``base`` with ``faces="largest"``, else
    ``<stem>_<i>.png`` beside it."""
    return base if faces == "largest" else base.with_name(f"{base.stem}_{i}.png")


def write_companions(out: Path, face: AlignedFace, sidecar: dict) -> list[Path]:
    """The files ``align`` writes beside the image ``out`` of one aligned face: ``<name>.valid.png``
    when part of the frame lies outside the photo (a stale one is removed otherwise), then the
    sidecar ``<name>.json`` (``sidecar``, e.g. :meth:`AlignedFace.sidecar`). Returns the files written."""
    written = []
    valid = valid_path(out)
    if face.valid is not None and not face.valid.all():
        written.append(write_image(valid, face.valid.astype(np.uint8) * 255))
    else:
        valid.unlink(missing_ok=True)
    written.append(write_sidecar(out, sidecar))
    return written


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

    def work(path: Path) -> list[Path] | None:
        check_input_name(path)
        first = face_path(plan[path], 0, faces)
        if not overwrite and first.is_file() and sidecar_path(first).is_file():
            return None  # face 0's sidecar is written last: the photo is complete
        try:
            aligned = align_file(path, engine, cfg, faces, device)  # large JPEGs: decoded small
        except NoFaceError:
            raise NoFaceError(f"{path}: no face found; {NO_FACE_FIX}") from None
        written = []
        rel = input_key(path, src)
        for i in reversed(range(len(aligned))):  # face 0 last: its sidecar marks the photo done
            face, out = aligned[i], face_path(plan[path], i, faces)
            written.append(write_image(out, face.image))
            written += write_companions(out, face, face.sidecar(rel, engine.name, cfg))  # sidecar last
        return written

    with open_run(dst, "align", settings, overwrite=overwrite,
                  has_outputs=any(face_path(p, 0, faces).is_file() for p in plan.values())) as run:
        report = run_batch(inputs, work, progress, should_stop,
                           on_done=lambda p, files: run.record(input_key(p, src), files))
        write_failures(dst, report.failed)
    return report

