"""``facefill info``: versions, devices, backends and weights this installation can use."""

from __future__ import annotations

from rich.table import Table

from facefill.cli.common import console, handle_errors
from facefill.info import components, devices, versions


@handle_errors
def info() -> None:
    """Show versions, devices, and which optional backends and weights are available, and where."""
    table = Table(title="facefill installation", show_header=False)
    for name, version in versions().items():
        table.add_row(name, version)
    table.add_row("devices", ", ".join(devices()))
    console.print(table)
    comps = Table(title="backends and weights")
    comps.add_column("component")
    comps.add_column("kind")
    comps.add_column("available")
    comps.add_column("where / how to get it", overflow="fold")
    for c in components():
        comps.add_row(c.name, c.kind, "[green]yes[/]" if c.available else "[red]no[/]", c.detail)
    console.print(comps)
