"""``facefill replace-bg IMAGES_DIR OUT_DIR --background PATH_OR_DIR``."""

from __future__ import annotations

from pathlib import Path

import typer

from facefill.cli.common import handle_errors, pick_device, report_batch, run_with_progress
from facefill.errors import FacefillError


@handle_errors
def replace_bg(
    images_dir: Path = typer.Argument(..., help="Images with a person (e.g. the output of 'facefill hallucinate')."),
    out_dir: Path = typer.Argument(..., help="Output folder, sub-folders mirrored."),
    background: Path = typer.Option(..., "--background", "-b", help="A background image, or a folder of them."),
    assign: str = typer.Option("round-robin", "--assign", help="With a folder of backgrounds: 'round-robin' (sorted names) or 'random'."),
    seed: int = typer.Option(0, "--seed", help="Seed for --assign random."),
    segmenter: str = typer.Option("auto", "--segmenter", help="auto (mediapipe when installed, else grabcut), mediapipe, grabcut."),
    face_masks: Path = typer.Option(None, "--face-masks", help="Output of 'facefill mask': <name>.mask.png there is always foreground (also read beside each image)."),
    levels: int = typer.Option(5, "--levels", help="Laplacian pyramid levels (1 = plain alpha blend)."),
    feather: float = typer.Option(1.0, "--feather", help="Gaussian sigma (px) applied to the foreground mask before blending."),
    threshold: float = typer.Option(0.5, "--threshold", help="Segmentation probability counted as person."),
    saliency: bool = typer.Option(True, "--saliency/--no-saliency", help="Refine with the gradient-saliency contour (the paper's union), and fill enclosed holes."),
    save_masks: bool = typer.Option(False, "--save-masks", help="Also write <name>.fg.png foreground masks."),
    device: str = typer.Option("auto", "--device", help="Device for the blending: auto, cpu, cuda."),
    batch_size: int = typer.Option(16, "--batch-size", help="Images blended per batch."),
    overwrite: bool = typer.Option(False, "--overwrite/--skip-existing", help="Redo files whose output exists (default: skip, so a run resumes)."),
) -> None:
    """Swap the background behind the person while keeping face and context pixels: person
    segmentation refined with a saliency contour, then Laplacian-pyramid blending."""
    from facefill.replace_bg import ReplaceOptions, replace_folder

    if not images_dir.exists():
        raise FacefillError(f"{images_dir} does not exist")
    if not background.exists():
        raise FacefillError(f"--background {background} does not exist; give an image or a folder of images")
    if levels < 1:
        raise typer.BadParameter("must be >= 1", param_hint="--levels")
    opts = ReplaceOptions(segmenter=segmenter, levels=levels, feather=feather, threshold=threshold, saliency=saliency,
                          assign=assign, seed=seed, batch_size=batch_size, face_masks_dir=face_masks,
                          save_masks=save_masks, overwrite=overwrite)
    report = run_with_progress("replace-bg", lambda progress: replace_folder(
        images_dir, out_dir, background, opts, pick_device(device), progress=progress))
    report_batch(report, "replace-bg", out_dir)
