"""Shared CLI plumbing: error handling, consoles, progress bars, batch summaries.

Output conventions (docs/cli-conventions.md): results go to stdout, progress and messages to
stderr; when stderr is not a terminal nothing is hard-wrapped, so lines stay greppable.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from facefill.config import Config, resolve
from facefill.errors import ConfigError, FacefillError, UsageError

if TYPE_CHECKING:
    from facefill.data.batch import BatchReport

console = Console(soft_wrap=not sys.stdout.isatty())
err_console = Console(stderr=True, soft_wrap=not sys.stderr.isatty())

F = TypeVar("F", bound=Callable)

CONFIG_HELP = "TOML file whose [section] keys override the preset (unknown keys are an error)."
SET_HELP = "Override one setting, e.g. --set train.lr_g=1e-4 (repeatable; applied last)."


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
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            if os.environ.get("FACEFILL_DEBUG") == "1":
                raise
            err_console.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def resolve_config(preset: str, config_file: Path | None, overrides: list[str] | None) -> Config:
    """``--preset``, ``--config`` and ``--set`` -> the Config. A value that does not fit the schema
    (its message names the key) is a usage error: exit 2, like any bad option value."""
    try:
        return resolve(preset, config_file, overrides or [])
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def output_folder(path: Path | None, what: str) -> Path | None:
    """``path`` as an output folder; ``-`` is refused (usage error, exit 2): it means stdout to
    Unix tools, and these commands write many files into a folder, never to stdout."""
    if path is not None and str(path) == "-":
        raise UsageError(f"{what} '-': this command writes image files into a folder, not to stdout; give a "
                         f"folder name (a folder named '-' is written as its full path, e.g. $PWD/-)")
    return path


def progress_bar(transient: bool = False, disable: bool = False):
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=err_console,
        transient=transient,
        disable=disable,
    )


def run_with_progress(description: str, job: Callable, quiet: bool = False):
    """Run ``job(progress=...)`` under a Rich progress bar on stderr. The bar appears with the
    job's first progress report, so checks a job makes before any work (missing weights, no
    inputs) print their error without an empty bar above it."""
    bars: list = []  # the bar, started on the first report: a started bar leaves an empty line when it stops

    def progress(done: int, total: int, name: str) -> None:
        if not bars:
            bars.append(progress_bar(disable=quiet))
            bars[0].start()
            bars.append(bars[0].add_task(description, total=total, status=""))
        bars[0].update(bars[1], completed=done, total=total, status=name)

    try:
        return job(progress=progress)
    finally:
        if bars:
            bars[0].stop()


def report_batch(report: "BatchReport", what: str, out_dir: Path, quiet: bool = False) -> None:
    """Print a batch command's failures and summary on stderr, then exit with the batch's code:
    0 all inputs done, 3 some failed (good outputs kept), 1 nothing could be done."""
    from facefill.pipeline.outputs import tsv_field  # one line per input, whatever its name holds

    for path, reason in report.failed[:50]:
        err_console.print(f"[yellow]skipped[/] {escape(tsv_field(reason))}", highlight=False, soft_wrap=True)
    if len(report.failed) > 50:
        err_console.print(f"[yellow]... and {len(report.failed) - 50} more failed inputs[/]")
    for warning in report.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    for note in report.notes:
        if not quiet:
            err_console.print(note, highlight=False, soft_wrap=True)
    if not quiet:
        err_console.print(
            f"{what}: [green]{len(report.done)} done[/], {len(report.skipped)} already done (kept), "
            f"[{'red' if report.failed else 'green'}]{len(report.failed)} failed[/] "
            f"of {report.total} inputs; {len(report.written)} files written -> {out_dir}",
            highlight=False, soft_wrap=True,
        )
    if report.failed:
        listing = f"; the list is in {Path(out_dir) / 'failures.tsv'}"
        if report.exit_code == 1:
            raise FacefillError(f"{what}: every input failed, nothing was written{listing}")
        err_console.print(f"[yellow]{what}: {len(report.failed)} of {report.total} inputs failed; "
                          f"the good outputs were kept{listing} (exit code 3)[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(report.exit_code)
