"""``facefill mask ALIGNED_DIR MASKED_DIR``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from facefill.cli import _options as opt
from facefill.cli.common import handle_errors, output_folder, report_batch, resolve_config, run_with_progress
from facefill.errors import FacefillError
from facefill.options import LANDMARKS


@handle_errors
def mask(
    aligned_dir: Path = typer.Argument(..., help="Output folder of 'facefill align' (images + .json sidecars)."),
    masked_dir: Path = typer.Argument(..., help="Output: <name>.png masked image, <name>.mask.png binary mask, <name>.json."),
    grow: int = typer.Option(None, "--grow", min=-64, max=64, help="Grow (>0) or erode (<0) the face region by N pixels (default: mask.grow, 0)."),
    region: str = typer.Option(None, "--region", help="Face region kept: hull (the convex hull of the 68 landmarks, "
                               "the default: mask.region) or refined (the hull without the background, hair or hat "
                               "in its outer band; what hallucinate --method donor uses)."),
    feather: int = typer.Option(None, "--feather", min=0, max=64, help="Soft edge width in pixels (default: mask.feather, 0 = hard edge)."),
    landmarks: str = typer.Option("dlib", "--landmarks", help=LANDMARKS.help("Backend used only for images without a sidecar:")),
    overwrite: bool = opt.overwrite(),
    config: Path = opt.config_file(),
    set_: list[str] = opt.set_("--set mask.fill=[127,127,127]"),
    quiet: bool = opt.quiet(),
) -> None:
    """Keep the face region (convex hull of the 68 landmarks: brows to chin, cheek to cheek) of
    each aligned photo, blank everything else, and write the binary mask beside it. Landmarks
    come from the alignment sidecar, or are re-detected when it is missing; photos that are not
    aligned are refused (run 'facefill align' first)."""
    LANDMARKS.check(landmarks)
    output_folder(masked_dir, "MASKED_DIR")
    if not aligned_dir.exists():
        raise FacefillError(f"{aligned_dir} does not exist; run 'facefill align RAW_DIR {aligned_dir}' first")
    full = resolve_config("small", config, set_)
    cfg = full.mask
    if grow is not None:
        cfg = replace(cfg, grow=grow)
    if feather is not None:
        cfg = replace(cfg, feather=feather)
    if region is not None:
        cfg = replace(cfg, region=region)  # checked by MaskConfig: exit 2 naming mask.region

    from facefill.pipeline.mask import mask_folder

    report = run_with_progress("mask", lambda progress: mask_folder(
        aligned_dir, masked_dir, cfg, landmarks, overwrite, progress=progress, align=full.align), quiet)
    report_batch(report, "mask", masked_dir, quiet)
