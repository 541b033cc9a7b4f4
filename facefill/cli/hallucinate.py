"""``facefill hallucinate INPUT_DIR OUT_DIR [--checkpoint FILE | --method donor --donors BANK]``."""

from __future__ import annotations

from pathlib import Path

import typer

from facefill.cli import _options as opt
from facefill.cli.common import handle_errors, output_folder, report_batch, run_with_progress
from facefill.errors import FacefillError
from facefill.options import DETECTORS, FACES, LANDMARKS, METHODS, PRECISION, REGIONS

@handle_errors
def hallucinate(
    input_dir: Path = typer.Argument(..., help="Photos of faces (aligned and masked on the fly), "
                                      "the output of 'facefill align' (masked on the fly) or of 'facefill mask' (<name>.png "
                                      "+ <name>.mask.png), or a mix: each file takes its own path."),
    out_dir: Path = typer.Argument(..., help="Output folder: <name>.png hallucinations, sub-folders mirrored."),
    checkpoint: Path = opt.checkpoint(),
    method: str = typer.Option("model", "--method", help=METHODS.help("How the context is made (the baselines take the "
                               "same inputs and write the same outputs, so 'facefill evaluate' scores them alike):")),
    donors: Path = typer.Option(None, "--donors", help="--method donor: a folder of 'facefill align' outputs to take "
                                "context from (e.g. tools/fetch_faces.sh OUT, then facefill align OUT/celeba BANK). Its "
                                "index is cached outside it (FACEFILL_CACHE, default ~/.cache/facefill/donors; 'facefill bank index' "
                                "builds it ahead); nothing is written into it. Default: the bank FACEFILL_DONORS names."),
    variants: int = typer.Option(1, "--variants", min=1, max=64, help="--method donor: outputs per face, each from a "
                                 "different donor, written as NAME_v0.png .. NAME_v{K-1}.png (1: NAME.png)."),
    seed: int = typer.Option(0, "--seed", min=0, help="--method donor: seed of the variants' donor draw (the first "
                             "variant is always the best-fitting donor); the same seed and bank give the same outputs."),
    exclude_donors: str = typer.Option(None, "--exclude-donors", help="--method donor: bank files never to take context "
                                       "from: a comma list of names relative to the bank (a.png,sub/b.png; '.png' may be "
                                       "left out) or a text file with one name per line (# comments). Recorded in the run record."),
    pin_donor: str = typer.Option(None, "--pin-donor", help="--method donor: the donor of each face's first output "
                                  "(NAME_v0 / NAME): a bank name (every input takes it: for single-input runs), or a text "
                                  "file of INPUT<TAB>DONOR lines (input names relative to INPUT_DIR). Other variants are "
                                  "chosen as usual. OUT/donors.tsv lists every output's donor."),
    mask_from_landmarks: bool = typer.Option(False, "--mask-from-landmarks", help="Inputs are aligned photos: mask them "
                                             "on the fly from their sidecar landmarks (re-detected if missing)."),
    keep_face: bool = typer.Option(True, "--keep-face/--no-keep-face", help="Paste the original face pixels back: every "
                                   "pixel inside the mask is bit-exact. --no-keep-face writes the generator's own face, and the "
                                   "default model never learned faces: its main loss (SSIM) scores the output with the real "
                                   "face pasted back, so its faces are striped and further from the real one than a flat "
                                   "fill in the face's mean colour (docs/model-card.md)."),
    feather: int = typer.Option(2, "--feather", min=0, max=32, help="Seam width in pixels outside the mask edge for "
                                "--keep-face: the face-edge colour fades into the hallucination (0 = hard seam)."),
    faces: str = typer.Option("largest", "--faces", help=FACES.help("Photos (as 'facefill align'):")),
    landmarks: str = typer.Option("dlib", "--landmarks", help=LANDMARKS.help("Landmark backend for photos (and aligned "
                                  "crops without a sidecar):")),
    detector: str = typer.Option("hog", "--detector", help=DETECTORS.help("dlib only:")),
    upsample: int = typer.Option(1, "--upsample", min=0, max=4, help="dlib only: upsample photos N times before "
                                 "detection; finds smaller faces, about 4x slower per step."),
    grow: int = typer.Option(None, "--grow", min=-64, max=64, help="Grow (>0) or erode (<0) the face region of photos "
                             "and aligned crops masked on the fly by N pixels (default: the model's mask.grow, 0)."),
    region: str = typer.Option("auto", "--region", help=REGIONS.help("Face region kept of photos and aligned crops "
                               "masked on the fly (and written as <name>.mask.png):")),
    all_scales: Path = typer.Option(None, "--all-scales", help="Also write every block's output to DIR/<scale>/<name>.png (8 ... 128); --method model only."),
    grid: Path = typer.Option(None, "--grid", help="Write a contact sheet PNG: masked | output (one column per "
                              "variant: v0 | v1 | ...) | real (real from --real-dir, or the photo or aligned crop itself)."),
    grid_max: int = typer.Option(16, "--grid-max", min=1, max=1024, help="Rows in the contact sheet."),
    real_dir: Path = typer.Option(None, "--real-dir", help="Aligned real photos (same names) for the contact sheet's third column."),
    device: str = opt.device(),
    batch_size: int = opt.batch_size(16, "Images per forward pass."),
    precision: str = typer.Option("auto", "--precision", help=PRECISION.help()),
    overwrite: bool = opt.overwrite(),
    shard: str = opt.shard(),
    quiet: bool = opt.quiet(),
    dask: str = opt.dask(),
    tasks: int = opt.tasks(),
) -> None:
    """Hallucinate hair, ears, neck, clothes and background around the faces in INPUT_DIR (photos
    are aligned and masked on the fly as 'facefill align' and 'facefill mask' would, with their
    sidecars written beside each output; the summary says which path each file took) with a trained
    generator (the shipped default model unless --checkpoint is given), with real context from
    donor faces (--method donor --donors BANK: photographic, the face kept bit for bit), or with a
    classical baseline (--method) for comparison."""
    from facefill.config import MaskConfig
    from facefill.options import AlignOptions, HallucinateOptions, parse_donor_names, parse_donor_pins, parse_shard
    from facefill.runtime import check_device_name

    output_folder(out_dir, "OUT_DIR")
    output_folder(all_scales, "--all-scales")
    # every check (choices, ranges, a method's inputs and combinations, --shard) is the options' own:
    # exit 2, before any work
    opts = HallucinateOptions(method=method, checkpoint=checkpoint, donors=donors, variants=variants, seed=seed,
                              exclude_donors=parse_donor_names(exclude_donors), pin_donors=parse_donor_pins(pin_donor),
                              keep_face=keep_face, feather=feather, batch_size=batch_size,
                              precision=precision, overwrite=overwrite, shard=parse_shard(shard),
                              mask_from_landmarks=mask_from_landmarks, all_scales_dir=all_scales, real_dir=real_dir,
                              raw=AlignOptions(landmarks=landmarks, detector=detector, upsample=upsample, faces=faces),
                              mask=None if grow is None else MaskConfig(grow=grow), region=region, grid=grid, grid_max=grid_max)
    check_device_name(device)
    if not input_dir.exists():
        raise FacefillError(f"{input_dir} does not exist; give a folder of face photos (or of 'facefill mask' outputs)")
    if real_dir is not None and not real_dir.is_dir():
        raise FacefillError(f"--real-dir {real_dir} is not a folder")

    opt.check_tasks(dask, tasks, shard)
    if dask is not None:  # each task one shard on a Dask cluster (docs/distributed.md)
        from facefill.cli._distribute import distribute

        return distribute("hallucinate", input_dir, out_dir, opts, dask, tasks, quiet, device)

    from facefill.fill.registry import make_filler
    from facefill.pipeline.face_inputs import sized
    from facefill.pipeline.hallucinate import hallucinate_folder, hallucinate_paths
    from facefill.pipeline.runner import checked_first
    from facefill.runtime import cpu_threads, resolve_device

    dev = resolve_device(device)
    filler = make_filler(opts)  # then prepared: weights loaded, a donor bank's index read or built (with a bar)
    with checked_first(hallucinate_paths(input_dir, out_dir, opts, filler), opts.shard) as plan:  # outputs checked first
        sized(filler, plan.inputs)  # a donor bank is read at the inputs' size
        run_with_progress(f"preparing --method {method}", lambda progress: filler.prepare(dev, progress), quiet)
    with cpu_threads(dev, filler.cpu_threads):
        report = run_with_progress("hallucinate", lambda progress: hallucinate_folder(
            input_dir, out_dir, opts, dev, progress=progress, filler=filler), quiet)
    report_batch(report, "hallucinate", out_dir, quiet)
