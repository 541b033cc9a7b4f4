"""``facefill replace-bg IMAGES_DIR OUT_DIR --background PATH_OR_DIR``."""

from __future__ import annotations

from pathlib import Path

import typer

from facefill.cli import _options as opt
from facefill.cli.common import handle_errors, output_folder, report_batch, run_with_progress
from facefill.errors import FacefillError
from facefill.options import ASSIGN, SEGMENTERS


@handle_errors
def replace_bg(
    images_dir: Path = typer.Argument(..., help="Images with a person (e.g. the output of 'facefill hallucinate')."),
    out_dir: Path = typer.Argument(..., help="Output folder, sub-folders mirrored."),
    background: Path = typer.Option(..., "--background", "-b", help="A background image, or a folder of them."),
    assign: str = typer.Option("round-robin", "--assign", help=ASSIGN.help("With a folder of backgrounds:")),
    seed: int = typer.Option(0, "--seed", help="Seed for --assign random."),
    segmenter: str = typer.Option("auto", "--segmenter", help=SEGMENTERS.help("Person segmentation:")),
    face_masks: Path = typer.Option(None, "--face-masks", help="Output of 'facefill mask': <name>.mask.png there is "
                                    "always foreground (also read beside each image)."),
    levels: int = typer.Option(5, "--levels", min=1, max=12, help="Laplacian pyramid levels (1 = plain alpha blend; "
                               "at most log2(image side) + 1)."),
    feather: float = typer.Option(1.0, "--feather", min=0.0, max=64.0, help="Gaussian sigma (px) applied to the "
                                  "foreground mask before blending."),
    threshold: float = typer.Option(0.5, "--threshold", min=0.01, max=0.99, help="Segmentation probability counted as person."),
    saliency: bool = typer.Option(False, "--saliency/--no-saliency", help="Add the inside of the gradient-saliency "
                                  "contour around the face to the person (the paper's refinement). Off by default: on "
                                  "hand-outlined photos it lowered the selfie network's IoU from 0.92 to 0.79 "
                                  "(docs/replace-bg.md)."),
    save_masks: bool = typer.Option(False, "--save-masks", help="Also write <name>.fg.png foreground masks."),
    device: str = opt.device("auto", "Device for the blending:"),
    batch_size: int = opt.batch_size(16, "Images blended per batch."),
    overwrite: bool = opt.overwrite(),
    shard: str = opt.shard(),
    quiet: bool = opt.quiet(),
    dask: str = opt.dask(),
    tasks: int = opt.tasks(),
) -> None:
    """Swap the background behind the person while keeping face and context pixels: person
    segmentation (padding, where an aligned frame left the photo, is never person), then
    Laplacian-pyramid blending."""
    from facefill.options import ReplaceOptions, parse_shard
    from facefill.runtime import check_device_name

    output_folder(out_dir, "OUT_DIR")
    opts = ReplaceOptions(segmenter=segmenter, levels=levels, feather=feather, threshold=threshold, saliency=saliency,
                          assign=assign, seed=seed, batch_size=batch_size, face_masks_dir=face_masks,
                          save_masks=save_masks, overwrite=overwrite, shard=parse_shard(shard))
    check_device_name(device)
    if not images_dir.exists():
        raise FacefillError(f"{images_dir} does not exist")
    if not background.exists():
        raise FacefillError(f"--background {background} does not exist; give an image or a folder of images")

    opt.check_tasks(dask, tasks, shard)
    if dask is not None:  # each task one shard on a Dask cluster (docs/distributed.md)
        from facefill.cli._distribute import distribute

        return distribute("replace-bg", images_dir, out_dir, opts, dask, tasks, quiet, device, background=background)

    from facefill.pipeline.replace_bg import replace_bg_folder
    from facefill.runtime import resolve_device

    dev = resolve_device(device)
    report = run_with_progress("replace-bg", lambda progress: replace_bg_folder(
        images_dir, out_dir, background, opts, dev, progress=progress), quiet)
    report_batch(report, "replace-bg", out_dir, quiet)
