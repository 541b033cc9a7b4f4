"""Options shared by several commands, declared once so their names and help never drift."""

from __future__ import annotations

from pathlib import Path

import typer

from facefill.runtime import DEVICE_HELP

def device(default: str = "auto", what: str = "") -> str:
    return typer.Option(default, "--device", help=(what + " " if what else "") + DEVICE_HELP)


def batch_size(default: int, what: str = "Images per batch.") -> int:
    return typer.Option(default, "--batch-size", min=1, max=65536, help=what)


def checkpoint() -> Path:
    return typer.Option(None, "--checkpoint", dir_okay=False,
                        help="Generator weights (RUN/generator.safetensors from 'facefill train'); "
                             "default: the model shipped with facefill.")


def overwrite() -> bool:
    return typer.Option(False, "--overwrite/--skip-existing",
                        help="Redo inputs whose outputs exist. Default: skip them, so an interrupted run resumes "
                             "(only when the folder's outputs were made with the same settings).")


def quiet() -> bool:
    return typer.Option(False, "--quiet", "-q", help="No progress bar and no summary; errors and warnings only.")


def preset() -> str:
    from facefill.config import PRESETS

    return typer.Option("small", "--preset", help=f"Named configuration preset: {', '.join(PRESETS)}.")


def config_file() -> Path:
    return typer.Option(None, "--config", exists=False, dir_okay=False,
                        help="TOML file whose [section] keys override the preset (unknown keys are an error).")


def set_(example: str) -> list[str]:
    return typer.Option(None, "--set", help="Override one setting (repeatable; applied last), e.g. " + example + ".")


def dask() -> str:
    return typer.Option(None, "--dask", metavar="ADDRESS|local:N",
                        help="Run on a Dask cluster, each task one shard of the folder (same outputs, run record and "
                             "failures.tsv as one process; a failed task is retried, a lost worker's task re-run "
                             "elsewhere): a scheduler address (tcp://host:8786, from 'dask scheduler') or local:N "
                             "(N worker processes on this machine). Needs pip install 'facefill[dask]'; "
                             "docs/distributed.md.")


def shard() -> str:
    return typer.Option(None, "--shard", metavar="I/N",
                        help="Process only shard i of n, counted from 0 (0/10 .. 9/10, e.g. $SLURM_ARRAY_TASK_ID/10) for "
                             "array jobs; shards cover every file exactly once and share the output folder's run record.")


def check_tasks(dask: str | None, tasks: int | None, shard: str | None = None) -> None:
    """``--tasks`` means nothing without ``--dask``, and ``--shard`` nothing with it: refuse them
    (exit 2) rather than ignore them."""
    if shard is not None and dask is not None:
        raise typer.BadParameter("--dask splits the folder into --tasks shards itself; drop --shard", param_hint="--shard")
    if tasks is not None and dask is None:
        raise typer.BadParameter("needs --dask ADDRESS|local:N (without it the folder runs in this process; "
                                 "for a Slurm array use --shard I/N)", param_hint="--tasks")


def tasks() -> int:
    return typer.Option(None, "--tasks", min=1, max=1_000_000,
                        help="With --dask: split the folder into N shards, one task each (default: 4 per worker "
                             "thread). More tasks: less work redone when a worker is lost.")
