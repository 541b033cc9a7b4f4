"""``facefill info``: versions, devices, backends and weights this installation can use.

On a terminal: two tables. Piped (stdout not a terminal): the same rows as tab-separated lines,
never wrapped, so a path stays on one line for grep and cut. ``--json``: one JSON object
(:func:`facefill.info.report`).
"""

from __future__ import annotations

import sys

import typer

from facefill.cli.common import console, handle_errors


@handle_errors
def info(as_json: bool = typer.Option(False, "--json", help="Print one JSON object: versions, torch and its "
                                      "devices, every weight file (key, path or null, found, how to get it).")) -> None:
    """Show versions, devices, and which weights and optional backends are available, and where."""
    from facefill.info import components, devices, report, versions

    if as_json:
        import json

        sys.stdout.write(json.dumps(report(), indent=2) + "\n")
        return
    about = [*versions().items(), ("devices", ", ".join(devices()))]
    comps = components()
    if console.is_terminal:
        _print_tables(about, comps)
    else:
        _print_lines(about, comps)


def _print_tables(about: list[tuple[str, str]], comps: list) -> None:
    from rich.table import Table

    table = Table(title="facefill installation", show_header=False)
    for name, value in about:
        table.add_row(name, value)
    console.print(table)
    ctable = Table(title="weights and backends")
    for column in ("component", "key", "kind", "available"):
        ctable.add_column(column)
    ctable.add_column("where / how to get it", overflow="fold")
    for c in comps:
        ctable.add_row(c.name, c.key, c.kind, "[green]yes[/]" if c.available else "[red]no[/]", c.detail)
    console.print(ctable)


def _print_lines(about: list[tuple[str, str]], comps: list) -> None:
    """Tab-separated, one row a line, no wrapping, no colour."""
    rows = [f"{name}\t{value}" for name, value in about]
    rows += ["", "component\tkey\tkind\tavailable\twhere / how to get it"]
    rows += [f"{c.name}\t{c.key}\t{c.kind}\t{'yes' if c.available else 'no'}\t{c.detail}" for c in comps]
    sys.stdout.write("\n".join(rows) + "\n")
