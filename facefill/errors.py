"""Errors the core raises; the CLI turns them into a one-line message and an exit code.

Exit codes: 0 success, 1 any :class:`FacefillError`, 2 usage errors (Typer), 130 Ctrl-C.
Every message says what was wrong *and* what to do about it.
"""

from __future__ import annotations


class FacefillError(Exception):
    """Base class: an error a user can fix. ``exit_code`` is what the CLI exits with."""

    exit_code: int = 1


class ConfigError(FacefillError):
    """A preset, config file or ``--set`` override that does not fit the config schema."""


class CheckpointError(FacefillError):
    """A checkpoint or release-weights file that is missing, unreadable or of the wrong kind."""


class ImageError(FacefillError):
    """An image that cannot be read, or has the wrong size or layout."""


class NoFaceError(ImageError):
    """No face was found in an image."""


class WeightsNotFoundError(FacefillError):
    """Pretrained weights that are not on this machine; the message says where to put them."""


class NotImplementedYet(FacefillError):
    """A subcommand or option whose implementation has not landed yet."""
