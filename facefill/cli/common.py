"""Shared CLI plumbing: error handling, consoles, config options, progress bars."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from facefill.config import PRESETS, Config, resolve
from facefill.errors import FacefillError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable)


def handle_errors(func: F) -> F:
    """FacefillError -> red one-line message on stderr + its exit code; Ctrl-C -> exit 130.

    ``FACEFILL_DEBUG=1`` re-raises so the traceback shows.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except FacefillError as exc:
            if os.environ.get("FACEFILL_DEBUG") == "1":
                raise
            err_console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            if os.environ.get("FACEFILL_DEBUG") == "1":
                raise
            err_console.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


PRESET_HELP = f"Named configuration preset: {', '.join(PRESETS)}."
CONFIG_HELP = "TOML file whose [section] keys override the preset (unknown keys are an error)."
SET_HELP = "Override one setting, e.g. --set train.lr_g=1e-4 (repeatable; applied last)."


def resolve_config(preset: str, config_file: Path | None, overrides: list[str] | None) -> Config:
    return resolve(preset, config_file, overrides or [])


def pick_device(device: str) -> str:
    """``--device``: ``auto`` -> cuda when available, else cpu; a CUDA request without CUDA fails."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise FacefillError(f"--device {device}: no CUDA device is available here; use --device cpu")
    return device


def progress_bar(transient: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=err_console,
        transient=transient,
    )


def track(items: list, description: str) -> Iterator:
    """Iterate with a Rich progress bar on stderr."""
    with progress_bar() as bar:
        task = bar.add_task(description, total=len(items), status="")
        for item in items:
            yield item
            bar.advance(task)


def run_with_progress(description: str, job: Callable) -> "BatchReport":
    """Run ``job(progress=...)`` under a Rich progress bar on stderr. The bar appears with the
    job's first progress report, so checks a job makes before any work (missing weights, no
    inputs) print their error without an empty bar above it."""
    with progress_bar() as bar:
        tasks = []

        def progress(done: int, total: int, name: str) -> None:
            if not tasks:
                tasks.append(bar.add_task(description, total=total, status=""))
            bar.update(tasks[0], completed=done, total=total, status=name)

        return job(progress=progress)


def report_batch(report: "BatchReport", what: str, out_dir: Path) -> None:
    """Print the summary of a batch command; exit 1 when it produced nothing."""
    for path, reason in report.failed[:50]:
        err_console.print(f"[yellow]skipped[/] {reason}", highlight=False, soft_wrap=True)
    if len(report.failed) > 50:
        err_console.print(f"[yellow]... and {len(report.failed) - 50} more skipped files[/]")
    err_console.print(
        f"{what}: [green]{len(report.written)} files written[/], "
        f"{len(report.skipped)} inputs already done (kept), "
        f"[{'red' if report.failed else 'green'}]{len(report.failed)} inputs failed[/] "
        f"of {report.total} -> {out_dir}",
        highlight=False,
    )
    if not report.ok:
        raise FacefillError(f"{what}: no output was written; every input failed (see the messages above)")


from facefill.data.batch import BatchReport  # noqa: E402  (type used in annotations above)
