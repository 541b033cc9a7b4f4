"""``facefill paste OUT PHOTOS FINAL``: hallucinate's outputs put back into the photos."""

from __future__ import annotations

from pathlib import Path

import typer

from facefill.cli import _options as opt
from facefill.cli.common import handle_errors, report_batch, run_with_progress
from facefill.errors import FacefillError


@handle_errors
def paste(
    out_dir: Path = typer.Argument(..., help="The output folder of 'facefill hallucinate'."),
    photos_dir: Path = typer.Argument(..., help="The original photos (the folder hallucinate or align read)."),
    final_dir: Path = typer.Argument(..., help="Output folder: one <name>.png per photo, at the photo's size, "
                                     "sub-folders mirrored."),
    feather: float = typer.Option(8.0, "--feather", min=0.0, max=256.0, help="Soft edge between the new context and "
                                  "the photo around the crop's edge, in pixels of a 128 px crop (scaled with the "
                                  "crop's size; 0: a hard edge)."),
    aligned: Path = typer.Option(None, "--aligned", help="Where the sidecars and face masks of masked inputs are "
                                 "(the 'facefill mask' folder hallucinate read; default: that folder, from OUT's run "
                                 "record). Outputs of photos aligned on the fly carry them beside them."),
    batch_size: int = opt.batch_size(4, "Photos per batch."),
    overwrite: bool = opt.overwrite(),
    shard: str = typer.Option(None, "--shard", help="Process only shard i of n, counted from 0 (0/10 .. 9/10, e.g. "
                              "$SLURM_ARRAY_TASK_ID/10) for array jobs; shards cover every photo exactly once."),
    quiet: bool = opt.quiet(),
) -> None:
    """Put each face hallucinate made back into its photo at the photo's resolution: the crop is
    warped back with the inverse of its alignment, the photo's own face pixels are kept bit for
    bit, the new context fills the crop's footprint with a soft edge, and the photo is untouched
    beyond it. Every face of a --faces all photo goes into one output; padding (where the crop
    left the photo) is never pasted."""
    from facefill.options import parse_shard
    from facefill.pipeline.paste import PasteOptions

    opts = PasteOptions(feather=feather, aligned_dir=aligned, batch_size=batch_size, overwrite=overwrite,
                        shard=parse_shard(shard))
    for path, what in ((out_dir, "the output folder of 'facefill hallucinate'"), (photos_dir, "the photos' folder")):
        if not path.exists():
            raise FacefillError(f"{path} does not exist; give {what}")
    if aligned is not None and not aligned.is_dir():
        raise FacefillError(f"--aligned {aligned} is not a folder; give the 'facefill mask' folder hallucinate read")

    from facefill.pipeline.paste import paste_folder

    report = run_with_progress("paste", lambda progress: paste_folder(out_dir, photos_dir, final_dir, opts,
                                                                     progress=progress), quiet)
    report_batch(report, "paste", final_dir, quiet)
