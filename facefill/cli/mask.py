"""``facefill mask ALIGNED_DIR MASKED_DIR``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from facefill.align.landmarks import BACKENDS
from facefill.cli.common import (CONFIG_HELP, PRESET_HELP, SET_HELP, handle_errors, report_batch,
                                 resolve_config, run_with_progress)
from facefill.errors import FacefillError
from facefill.mask.region import mask_folder


@handle_errors
def mask(
    aligned_dir: Path = typer.Argument(..., help="Output folder of 'facefill align' (images + .json sidecars)."),
    masked_dir: Path = typer.Argument(..., help="Output: <name>.png masked image, <name>.mask.png binary mask, <name>.json."),
    grow: int = typer.Option(None, "--grow", help="Grow (>0) or erode (<0) the face region by N pixels (default: mask.grow, 0)."),
    feather: int = typer.Option(None, "--feather", help="Soft edge width in pixels (default: mask.feather, 0 = hard edge)."),
    landmarks: str = typer.Option("dlib", "--landmarks", help=f"Backend used only for images without a sidecar: {', '.join(BACKENDS)}."),
    overwrite: bool = typer.Option(False, "--overwrite/--skip-existing", help="Redo images whose outputs exist (default: skip them)."),
    preset: str = typer.Option("small", "--preset", help=PRESET_HELP),
    config: Path = typer.Option(None, "--config", help=CONFIG_HELP),
    set_: list[str] = typer.Option(None, "--set", help=SET_HELP + " E.g. --set mask.fill=[127,127,127]."),
) -> None:
    """Keep the face region (convex hull of the 68 landmarks: brows to chin, cheek to cheek) of
    each aligned photo, blank everything else, and write the binary mask beside it. Landmarks
    come from the alignment sidecar, or are re-detected when it is missing."""
    if not aligned_dir.exists():
        raise FacefillError(f"{aligned_dir} does not exist; run 'facefill align RAW_DIR {aligned_dir}' first")
    cfg = resolve_config(preset, config, set_).mask
    if grow is not None:
        cfg = replace(cfg, grow=grow)
    if feather is not None:
        if feather < 0:
            raise typer.BadParameter("must be >= 0", param_hint="--feather")
        cfg = replace(cfg, feather=feather)
    report = run_with_progress("mask", lambda progress: mask_folder(
        aligned_dir, masked_dir, cfg, landmarks, overwrite, progress=progress))
    report_batch(report, "mask", masked_dir)
