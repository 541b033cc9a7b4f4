"""``facefill hallucinate MASKED_DIR OUT_DIR [--checkpoint FILE]``."""

from __future__ import annotations

from pathlib import Path

import typer

from facefill.cli.common import err_console, handle_errors, pick_device, report_batch, run_with_progress
from facefill.errors import FacefillError


@handle_errors
def hallucinate(
    masked_dir: Path = typer.Argument(..., help="Output of 'facefill mask' (<name>.png + <name>.mask.png), or aligned photos with --mask-from-landmarks."),
    out_dir: Path = typer.Argument(..., help="Output folder: <name>.png hallucinations, sub-folders mirrored."),
    checkpoint: Path = typer.Option(None, "--checkpoint", help="generator.safetensors from 'facefill train' (default: the model shipped with facefill)."),
    mask_from_landmarks: bool = typer.Option(False, "--mask-from-landmarks", help="Inputs are aligned photos: mask them on the fly from their sidecar landmarks (re-detected if missing)."),
    keep_face: bool = typer.Option(True, "--keep-face/--no-keep-face", help="Paste the original face pixels back: every pixel inside the mask is bit-exact."),
    feather: int = typer.Option(2, "--feather", help="Seam width in pixels outside the mask edge for --keep-face: face-edge colour fades into the hallucination (0 = hard seam)."),
    all_scales: Path = typer.Option(None, "--all-scales", help="Also write every block's output to DIR/<scale>/<name>.png (8 ... 128)."),
    grid: Path = typer.Option(None, "--grid", help="Write a contact sheet PNG: masked | output | real (real from --real-dir or --mask-from-landmarks inputs)."),
    grid_max: int = typer.Option(16, "--grid-max", help="Rows in the contact sheet."),
    real_dir: Path = typer.Option(None, "--real-dir", help="Aligned real photos (same names) for the contact sheet's third column."),
    device: str = typer.Option("auto", "--device", help="auto (cuda when available), cpu, cuda, cuda:N."),
    batch_size: int = typer.Option(16, "--batch-size", help="Images per forward pass."),
    precision: str = typer.Option("auto", "--precision", help="auto (bf16 on CUDA, fp32 on CPU), fp32, bf16."),
    overwrite: bool = typer.Option(False, "--overwrite/--skip-existing", help="Redo files whose output exists (default: skip them, so a run resumes)."),
    shard: str = typer.Option(None, "--shard", help="Process only shard i of n (e.g. 3/10) for array jobs; shards cover every file exactly once."),
) -> None:
    """Hallucinate hair, ears, neck, clothes and background around masked faces with a trained
    generator (the shipped default model unless --checkpoint is given)."""
    from facefill.hallucinate import HallucinateOptions, hallucinate_folder, load_model, parse_shard

    if not masked_dir.exists():
        raise FacefillError(f"{masked_dir} does not exist; run 'facefill mask ALIGNED_DIR {masked_dir}' first")
    if precision not in ("auto", "fp32", "bf16"):
        raise typer.BadParameter("must be auto, fp32 or bf16", param_hint="--precision")
    if feather < 0 or batch_size < 1:
        raise typer.BadParameter("--feather must be >= 0 and --batch-size >= 1")
    dev = pick_device(device)
    G, cfg = load_model(checkpoint, dev)
    opts = HallucinateOptions(keep_face=keep_face, feather=feather, batch_size=batch_size, precision=precision,
                              overwrite=overwrite, shard=parse_shard(shard), mask_from_landmarks=mask_from_landmarks,
                              all_scales_dir=all_scales, real_dir=real_dir, grid=grid, grid_max=grid_max)
    report = run_with_progress("hallucinate", lambda progress: hallucinate_folder(
        masked_dir, out_dir, G, cfg, opts, dev, progress=progress))
    report_batch(report, "hallucinate", out_dir)
    if grid is not None and report.written:
        err_console.print(f"contact sheet: {grid}", highlight=False)
