"""``facefill train DATA_DIR --preset small --out runs/``."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import typer

from facefill.cli import _options as opt
from facefill.cli.common import (CONFIG_HELP, PRESET_HELP, SET_HELP, err_console, handle_errors,
                                 progress_bar, resolve_config)
from facefill.errors import FacefillError
from facefill.runtime import DEVICE_HELP, check_device_name, resolve_device


@handle_errors
def train(
    data_dir: Path = typer.Argument(..., help="Folder of aligned face photos (output of 'facefill align'; searched recursively)."),
    out: Path = typer.Option(Path("runs"), "--out", help="Parent folder; the run goes into OUT/<preset>-<date-time> unless --name is given."),
    name: str = typer.Option(None, "--name", help="Run folder name under --out."),
    resume: Path = typer.Option(None, "--resume", help="Continue the run in this folder from its newest checkpoint (its own config is used)."),
    init: Path = typer.Option(None, "--init", help="Start a new run from these weights (fine-tuning): a run's generator.safetensors, the shipped default model's file, or a checkpoints/state_*.pt (which also brings its discriminator). Steps and optimisers start from zero; the preset/config must describe the same architecture."),
    regime: str = typer.Option(None, "--regime", help="'cascaded' (all blocks every step) or 'progressive' (grow 8 -> 128 with fade-in). Default: train.regime."),
    steps: int = typer.Option(None, "--steps", help="Stop after this many steps (default: train.epochs epochs)."),
    batch_size: int = typer.Option(None, "--batch-size", min=1, max=65536, help="Images per step per process (default: train.batch_size)."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    preset: str = typer.Option("small", "--preset", help=PRESET_HELP),
    config: Path = typer.Option(None, "--config", help=CONFIG_HELP),
    set_: list[str] = typer.Option(None, "--set", help=SET_HELP + " E.g. --set loss.id=0 (a weight of 0 switches a loss term off) --set loss.pixel_kind=l2."),
    quiet: bool = opt.quiet(),
) -> None:
    """Train the multi-scale generator (all four losses per scale) on aligned faces. Masks are made
    on the fly from the alignment landmarks. Writes config.toml, metrics.csv, sample grids,
    checkpoints and generator.safetensors (G_ema) into the run folder. Ctrl-C or SIGTERM saves a
    checkpoint after the current step and exits 130; --resume continues exactly. Multi-GPU:
    torchrun --nproc_per_node N -m facefill train ..."""
    from facefill.pipeline.train import train_folder
    from facefill.train.loop import Callbacks

    device = check_device_name(device)
    if regime is not None and regime not in ("cascaded", "progressive"):
        raise typer.BadParameter("must be 'cascaded' or 'progressive'", param_hint="--regime")
    cfg = resolve_config(preset, config, set_)
    tc = cfg.train
    if regime is not None:
        tc = replace(tc, regime=regime)
    if steps is not None:
        tc = replace(tc, max_steps=steps)
    if batch_size is not None:
        tc = replace(tc, batch_size=batch_size)
    cfg = replace(cfg, train=tc)
    if resume is not None:
        run_dir = resume
        if not resume.is_dir():
            raise FacefillError(f"--resume {resume}: no such run folder")
    else:
        run_dir = out / (name or f"{preset}-{datetime.now():%Y%m%d-%H%M%S}")
        if (run_dir / "checkpoints").is_dir():
            raise FacefillError(f"{run_dir} already holds a run; use --resume {run_dir} or another --name")

    resolve_device(device)  # a device this machine lacks: one line, before anything is shown
    with progress_bar(disable=quiet) as bar:
        tasks: list = []  # the bar appears with the first step, after the checks before any work

        def on_step(step: int, total: int, m: dict[str, float]) -> None:
            status = f"G {m.get('loss/G/total', 0):.3f}"
            if "loss/D/total" in m:
                status += f"  D {m['loss/D/total']:.3f}"
            if "speed/img_per_s" in m:
                status += f"  {m['speed/img_per_s']:.1f} img/s"
            if not tasks:
                tasks.append(bar.add_task("train", total=total, status=""))
            bar.update(tasks[0], completed=step, total=total, status=status)

        result = train_folder(data_dir, run_dir, cfg, resume=resume is not None, device=device, max_steps=steps, init=init,
                              callbacks=Callbacks(on_step=on_step, on_message=lambda msg: bar.console.print(
                                  msg, highlight=False, soft_wrap=True)))
    for path, reason in result.skipped[:20]:
        err_console.print(f"[yellow]skipped[/] {reason}", highlight=False, soft_wrap=True)
    if len(result.skipped) > 20:
        err_console.print(f"[yellow]... and {len(result.skipped) - 20} more skipped files[/]")
    if not quiet:
        err_console.print(f"train: {result.steps} steps, {len(result.skipped)} files skipped -> {run_dir}"
                          + (f"\nrelease weights: {result.release}" if result.release else ""), highlight=False)
