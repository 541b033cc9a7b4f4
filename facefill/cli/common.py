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
