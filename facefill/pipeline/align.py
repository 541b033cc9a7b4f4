"""``align`` over a folder: raw photos in, aligned crops + sidecars out (see facefill.align)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Callable


from facefill.align.core import AlignedFace, align_file
from facefill.align.landmarks import LandmarkBackend, get_backend
from facefill.align.sidecar import sidecar_path, write_companions
from facefill.config import AlignConfig
from facefill.data.batch import BatchReport, Progress
from facefill.data.io import write_image
from facefill.errors import NoFaceError
from facefill.options import FACES, AlignOptions
from facefill.pipeline.runner import Folders, Job, Plan, run_folder


def no_face_fix() -> str:
    """What to try when a photo has no face (align, and hallucinate's on-the-fly alignment): only
    hints that lead somewhere here (``--landmarks fan`` only when its weights are on this machine)."""
    from facefill.weights import locate

    fan = locate("fan")[0] is not None and locate("s3fd")[0] is not None
    return ("it needs a visible frontal face (try --upsample 2 for small faces"
            + (", or --landmarks fan" if fan else "") + ")")


def face_path(base: Path, i: int, faces: str) -> Path:
    """Where face ``i`` of a photo goes: ``base`` with ``faces="largest"``, else
    ``<stem>_<i>.png`` beside it."""
    return base if faces == "largest" else base.with_name(f"{base.stem}_{i}.png")


def align_folder(
    src: str | Path,
    dst: str | Path,
    backend: str | LandmarkBackend | AlignOptions = "dlib",
    cfg: AlignConfig = AlignConfig(),
    faces: str = "largest",
    overwrite: bool = False,
    device: str = "cpu",
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    shard: tuple[int, int] = (0, 1),
) -> BatchReport:
    """Align every image under ``src`` into ``dst`` (sub-folders mirrored): per face
    ``<name>.png`` ``(S, S, 3) uint8``, ``<name>.json`` (sidecar) and, when part of the frame lies
    outside the photo, ``<name>.valid.png``.

    With ``faces="all"`` the crops of one photo are ``<stem>_0.png``, ``<stem>_1.png``..., written
    last to first, so a photo counts as done only when face 0's sidecar exists. Outputs that
    exist are kept unless ``overwrite`` (so an interrupted run resumes), but only when the
    folder's run record says they were made with the same settings (backend and its detector and
    upsampling, faces, config); ``overwrite`` first removes every file earlier runs wrote there.
    ``backend``: a backend name, a built backend, or :class:`~facefill.options.AlignOptions` (its
    backend, with dlib's detector and upsampling, and its ``faces``, which then wins). Runs on
    :func:`facefill.pipeline.runner.run_folder`; ``shard=(i, n)``: only inputs ``i, i+n, ...``.
    """
    if isinstance(backend, AlignOptions):
        backend, faces = get_backend(backend.landmarks, **backend.backend_args(str(device))), backend.faces
    FACES.check(faces)
    engine = get_backend(backend) if isinstance(backend, str) else backend
    folders = Folders(Path(src), Path(dst), f"no images (jpg, png, webp, bmp, tif) found in {src}")
    return run_folder(folders, lambda plan: align_job(plan, engine, cfg, faces, device), overwrite, shard,
                      progress=progress, should_stop=should_stop)[0]


def align_job(plan: Plan, engine: LandmarkBackend, cfg: AlignConfig, faces: str, device: str) -> Job:
    """``align`` as a :class:`~facefill.pipeline.runner.Job`: load = detect, landmarks and warp
    (large JPEGs decoded small); write = the crops and their companions, face 0's sidecar last."""

    def first(path: Path) -> Path:
        return face_path(plan.outputs[path], 0, faces)

    def load(path: Path) -> list[AlignedFace]:
        try:
            return align_file(path, engine, cfg, faces, device)
        except NoFaceError:
            raise NoFaceError(f"{path}: no face found; {no_face_fix()}") from None

    def write(path: Path, aligned: list[AlignedFace], _) -> list[Path]:
        written = []
        for i in reversed(range(len(aligned))):  # face 0 last: its sidecar marks the photo done
            face, out = aligned[i], face_path(plan.outputs[path], i, faces)
            written.append(write_image(out, face.image))
            written += write_companions(out, face.sidecar(plan.key(path), engine.name, cfg), face.valid)  # sidecar last
        return written

    settings = {"backend": engine.name, **getattr(engine, "settings", {}), "faces": faces, **asdict(cfg)}
    return Job("align", settings, load, compute=lambda items: [None] * len(items), write=write,
               done=lambda p: first(p).is_file() and sidecar_path(first(p)).is_file(),
               started=lambda p: first(p).is_file(), outputs=lambda p: [first(p), sidecar_path(first(p))])
