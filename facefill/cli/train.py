"""``facefill train DATA_DIR --preset small --out runs/``."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import typer

from facefill.cli import _options as opt
from facefill.cli.common import CONFIG_HELP, err_console, handle_errors, progress_bar, resolve_config
from facefill.errors import FacefillError, UsageError
from facefill.runtime import check_device_name

DATA_ON_DEVICE_HELP = ("Keep the decoded training set on the training device and build each batch there (flips, "
                       "warp and colour jitter batched; no DataLoader workers): 'on', 'off', or 'auto' = on when "
                       "the device is not the CPU and the set fits train.data_budget_mb. Default: train.data_on_device.")


@handle_errors
def train(
    ctx: typer.Context,
    data_dir: Path = typer.Argument(..., help="Folder of aligned face photos (output of 'facefill align'; searched recursively)."),
    out: Path = typer.Option(Path("runs"), "--out", help="Parent folder; the run goes into OUT/<preset>-<date-time> unless --name is given."),
    name: str = typer.Option(None, "--name", help="Run folder name under --out."),
    resume: Path = typer.Option(None, "--resume", help="Continue the run in this folder from its newest checkpoint (its own config is used)."),
    init: Path = typer.Option(None, "--init", help="Start a new run from these weights (fine-tuning): a run's generator.safetensors, the shipped default model's file, or a checkpoints/state_*.pt (which also brings its discriminator). Steps and optimisers start from zero; the preset/config must describe the same architecture."),
    regime: str = typer.Option(None, "--regime", help="'cascaded' (all blocks every step) or 'progressive' (grow 8 -> 128 with fade-in). Default: train.regime."),
    steps: int = typer.Option(None, "--steps", help="Stop after this many steps (default: train.epochs epochs)."),
    batch_size: int = opt.batch_size(None, "Images per step per process (default: train.batch_size)."),
    data_on_device: str = typer.Option(None, "--data-on-device", help=DATA_ON_DEVICE_HELP),
    device: str = opt.device(),
    preset: str = opt.preset(),
    config: Path = typer.Option(None, "--config", help=CONFIG_HELP),
    set_: list[str] = opt.set_("--set loss.id=0 (a weight of 0 switches a loss term off) --set loss.pixel_kind=l2"),
    quiet: bool = opt.quiet(),
) -> None:
    """Train the multi-scale generator (all four losses per scale) on aligned faces. Masks are made
    on the fly from the alignment landmarks. Writes config.toml, metrics.csv, sample grids,
    checkpoints and generator.safetensors (G_ema) into the run folder. Ctrl-C or SIGTERM saves a
    checkpoint after the current step and exits 130; --resume continues exactly. Multi-GPU:
    torchrun --nproc_per_node N -m facefill train ..."""
    from facefill.pipeline.train import Callbacks, train_folder

    device = check_device_name(device)
    if data_on_device is not None and data_on_device not in ("auto", "on", "off"):
        raise typer.BadParameter("must be 'auto', 'on' or 'off'", param_hint="--data-on-device")
    if resume is not None:
        _check_resume_options(ctx, resume)
    cfg = _config(preset, config, set_, regime, batch_size)
    run_dir = _run_dir(out, name, preset, resume)
    with progress_bar(disable=quiet) as bar:
        tasks: list = []  # the bar appears with the first step, after the checks before any work

        def on_step(step: int, total: int, m: dict) -> None:
            if not tasks:
                tasks.append(bar.add_task("train", total=total, status=""))
            if "speed/img_per_s" in m:  # a logged step: the losses were read back anyway
                bar.update(tasks[0], status=_status(m))
            bar.update(tasks[0], completed=step, total=total)

        result = train_folder(data_dir, run_dir, cfg, resume=resume is not None, device=device, max_steps=steps, init=init,
                              data_on_device=data_on_device,
                              callbacks=Callbacks(on_step=on_step, on_message=lambda msg: bar.console.print(
                                  msg, highlight=False, soft_wrap=True)))
    for path, reason in result.skipped[:20]:
        err_console.print(f"[yellow]skipped[/] {reason}", highlight=False, soft_wrap=True)
    if len(result.skipped) > 20:
        err_console.print(f"[yellow]... and {len(result.skipped) - 20} more skipped files[/]")
    if not quiet:
        err_console.print(f"train: {result.steps} steps, {len(result.skipped)} files skipped -> {run_dir}"
                          + (f"\nrelease weights: {result.release}" if result.release else ""), highlight=False)


def _config(preset: str, config: Path | None, set_: list[str] | None, regime: str | None,
            batch_size: int | None):
    """The preset, --config and --set, then the options that override train.* (usage errors: exit 2).
    ``--steps`` and ``--data-on-device`` are not among them: the driver takes them, and applies them
    on resume too."""
    if regime is not None and regime not in ("cascaded", "progressive"):
        raise typer.BadParameter("must be 'cascaded' or 'progressive'", param_hint="--regime")
    cfg = resolve_config(preset, config, set_)
    given = {"regime": regime, "batch_size": batch_size}
    return replace(cfg, train=replace(cfg.train, **{k: v for k, v in given.items() if v is not None}))


#: what a resumed run takes from the command line; every other setting is the run's own (RUN/config.toml)
RESUME_OPTIONS = ("--steps", "--data-on-device", "--device", "--quiet")


def _check_resume_options(ctx: typer.Context, resume: Path) -> None:
    """``--resume`` continues a run with its own config, so an option that would change it
    (``--set``, ``--config``, ``--preset``, ``--regime``, ``--batch-size``; ``--out`` and ``--name``,
    which a resume does not use) is a usage error naming it, never ignored in silence
    (docs/training.md, "What --resume takes from the command line"). ``--init`` with ``--resume``
    is refused by the pipeline with its own line."""
    for param in ctx.command.params:
        flag = max(param.opts, key=len) if param.opts else param.name
        if param.param_type_name != "option" or flag in RESUME_OPTIONS or param.name in ("resume", "init"):
            continue
        source = ctx.get_parameter_source(param.name)  # Click's ParameterSource (of the Click Typer bundles)
        if source is not None and source.name != "DEFAULT":
            given = ctx.params.get(param.name)
            shown = " ".join(f"{flag} {v}" for v in given) if isinstance(given, (list, tuple)) else f"{flag} {given}"
            raise UsageError(f"{shown}: --resume {resume} continues the run with its own settings ({resume / 'config.toml'}) "
                             f"and would ignore it; on resume only {', '.join(RESUME_OPTIONS[:3])} change. To train on "
                             f"with other settings, start a new run from its weights with them: --init "
                             f"{resume / 'checkpoints' / 'state_N.pt'}")


def _run_dir(out: Path, name: str | None, preset: str, resume: Path | None) -> Path:
    """The run folder: ``--resume``'s (which must exist) or a new ``OUT/NAME`` (which must not hold a run)."""
    if resume is not None:
        if not resume.is_dir():
            raise FacefillError(f"--resume {resume}: no such run folder")
        return resume
    run_dir = out / (name or f"{preset}-{datetime.now():%Y%m%d-%H%M%S}")
    if (run_dir / "checkpoints").is_dir():
        raise FacefillError(f"{run_dir} already holds a run; use --resume {run_dir} or another --name")
    return run_dir


def _status(m: dict) -> str:
    status = f"G {m.get('loss/G/total', 0):.3f}"
    if "loss/D/total" in m:
        status += f"  D {m['loss/D/total']:.3f}"
    return status + f"  {m['speed/img_per_s']:.1f} img/s"
