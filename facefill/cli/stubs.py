"""Subcommands whose implementation has not landed: they say so and exit 1, never pretend."""

from __future__ import annotations

import typer

from facefill.cli.common import handle_errors
from facefill.errors import NotImplementedYet

EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}


def not_implemented(name: str, help_text: str):
    @handle_errors
    def command(ctx: typer.Context) -> None:
        raise NotImplementedYet(f"'facefill {name}' is not implemented yet in this version; see the README's status table")

    command.__doc__ = f"{help_text} [NOT IMPLEMENTED YET: exits 1.]"
    return command
