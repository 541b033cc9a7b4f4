"""``facefill align RAW_DIR ALIGNED_DIR``."""

from __future__ import annotations

from pathlib import Path

import typer

from facefill.align.core import align_folder
from facefill.align.landmarks import BACKENDS, DlibBackend, get_backend
from facefill.cli.common import (CONFIG_HELP, PRESET_HELP, SET_HELP, handle_errors, report_batch,
                                 resolve_config, run_with_progress)
from facefill.errors import FacefillError


@handle_errors
def align(
    raw_dir: Path = typer.Argument(..., help="Folder of photos (searched recursively) or one image file."),
    aligned_dir: Path = typer.Argument(..., help="Output folder: <name>.png crops + <name>.json sidecars, sub-folders mirrored."),
    landmarks: str = typer.Option("dlib", "--landmarks", help=f"Landmark backend: {', '.join(BACKENDS)}."),
    faces: str = typer.Option("largest", "--faces", help="'largest': one crop per photo; 'all': <name>_0.png, <name>_1.png..."),
    size: int = typer.Option(None, "--size", help="Output side in pixels (default: align.size, 128)."),
    detector: str = typer.Option("hog", "--detector", help="dlib only: 'hog' (fast) or 'cnn' (mmod, more robust, slower)."),
    upsample: int = typer.Option(1, "--upsample", help="dlib only: upsample the photo N times before detection; finds smaller faces, ~4x slower per step."),
    overwrite: bool = typer.Option(False, "--overwrite/--skip-existing", help="Redo photos whose outputs exist (default: skip them, so an interrupted run resumes)."),
    device: str = typer.Option("cpu", "--device", help="Device for the warp (cpu, cuda) and the fan backend."),
    preset: str = typer.Option("small", "--preset", help=PRESET_HELP),
    config: Path = typer.Option(None, "--config", help=CONFIG_HELP),
    set_: list[str] = typer.Option(None, "--set", help=SET_HELP + " E.g. --set align.left_eye=[0.4,0.45]."),
) -> None:
    """Detect faces and 68 landmarks, warp each face so its eye centres land on fixed positions,
    and write square crops (default 128x128) with JSON sidecars holding the aligned landmarks,
    the transform and the detector score. Photos with no face are skipped and listed."""
    if faces not in ("largest", "all"):
        raise typer.BadParameter("must be 'largest' or 'all'", param_hint="--faces")
    if not raw_dir.exists():
        raise FacefillError(f"{raw_dir} does not exist; give a folder of photos or an image file")
    cfg = resolve_config(preset, config, set_).align
    if size is not None:
        from dataclasses import replace
        cfg = replace(cfg, size=size)
    if landmarks == "dlib":
        engine = DlibBackend(detector=detector, upsample=upsample)
    else:
        engine = get_backend(landmarks, **({"device": device} if landmarks == "fan" else {}))
    report = run_with_progress("align", lambda progress: align_folder(
        raw_dir, aligned_dir, engine, cfg, faces, overwrite, device, progress=progress))
    report_batch(report, "align", aligned_dir)
