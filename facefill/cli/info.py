"""``facefill info``: versions, devices, backends and weights this installation can use."""

from __future__ import annotations

from facefill.cli.common import console, handle_errors


@handle_errors
def info() -> None:
    """Show versions, devices, and which weights and optional backends are available, and where."""
    from rich.table import Table

    from facefill.info import components, devices, versions

    table = Table(title="facefill installation", show_header=False)
    for name, version in versions().items():
        table.add_row(name, version)
    table.add_row("devices", ", ".join(devices()))
    console.print(table)
    comps = Table(title="weights and backends")
    comps.add_column("component")
    comps.add_column("kind")
    comps.add_column("available")
    comps.add_column("where / how to get it", overflow="fold")
    for c in components():
        comps.add_row(c.name, c.kind, "[green]yes[/]" if c.available else "[red]no[/]", c.detail)
    console.print(comps)
