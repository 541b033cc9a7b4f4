"""``facefill align RAW_DIR ALIGNED_DIR``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from facefill.cli import _options as opt
from facefill.cli.common import handle_errors, output_folder, report_batch, resolve_config, run_with_progress
from facefill.errors import FacefillError
from facefill.options import DETECTORS, FACES, LANDMARKS


@handle_errors
def align(
    raw_dir: Path = typer.Argument(..., help="Folder of photos (searched recursively) or one image file."),
    aligned_dir: Path = typer.Argument(..., help="Output folder: <name>.png crops, <name>.json sidecars and, where "
                                       "the frame reaches past the photo, <name>.valid.png; sub-folders mirrored."),
    landmarks: str = typer.Option("dlib", "--landmarks", help=LANDMARKS.help("Landmark backend:")),
    faces: str = typer.Option("largest", "--faces", help=FACES.help()),
    size: int = typer.Option(None, "--size", min=16, max=4096, help="Output side in pixels (default: align.size, 128)."),
    detector: str = typer.Option("hog", "--detector", help=DETECTORS.help("dlib only:")),
    upsample: int = typer.Option(1, "--upsample", min=0, max=4, help="dlib only: upsample the photo N times before detection; "
                                 "finds smaller faces, about 4x slower per step."),
    overwrite: bool = opt.overwrite(),
    shard: str = opt.shard(),
    device: str = opt.device("cpu", "Device for the warp and the fan backend:"),
    config: Path = opt.config_file(),
    set_: list[str] = opt.set_("--set align.left_eye=[0.4,0.45]"),
    quiet: bool = opt.quiet(),
    dask: str = opt.dask(),
    tasks: int = opt.tasks(),
) -> None:
    """Detect faces and 68 landmarks, warp each face so its eye centres land on fixed positions,
    and write square crops (default 128x128) with JSON sidecars holding the aligned landmarks,
    the transform and the detector score. Photos with no face are skipped and listed in
    ALIGNED_DIR/failures.tsv."""
    from facefill.options import AlignOptions, parse_shard
    from facefill.runtime import check_device_name

    output_folder(aligned_dir, "ALIGNED_DIR")
    opts = AlignOptions(landmarks=landmarks, detector=detector, upsample=upsample, faces=faces)
    part = parse_shard(shard)
    check_device_name(device)
    if not raw_dir.exists():
        raise FacefillError(f"{raw_dir} does not exist; give a folder of photos or an image file")
    cfg = resolve_config("small", config, set_).align
    if size is not None:
        cfg = replace(cfg, size=size)

    opt.check_tasks(dask, tasks, shard)
    if dask is not None:  # each task one shard on a Dask cluster (docs/distributed.md)
        from facefill.cli._distribute import distribute

        return distribute("align", raw_dir, aligned_dir, opts, dask, tasks, quiet, device, align_config=cfg,
                          overwrite=overwrite)

    from facefill.pipeline.align import align_folder
    from facefill.runtime import resolve_device

    dev = str(resolve_device(device))
    report = run_with_progress("align", lambda progress: align_folder(
        raw_dir, aligned_dir, opts, cfg, overwrite=overwrite, device=dev, progress=progress, shard=part), quiet)
    report_batch(report, "align", aligned_dir, quiet)
