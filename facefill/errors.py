"""Errors the core raises; the CLI turns them into a one-line message and an exit code.

Exit codes (docs/cli-conventions.md): 0 success, 1 a :class:`FacefillError` (nothing useful was
done), 2 usage errors (Typer, :class:`UsageError`), 3 a batch that kept its good outputs but
some inputs failed (:class:`PartialFailure`), 130 Ctrl-C.
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


class UsageError(FacefillError):
    """An option value that is not valid at all (like Typer's usage errors): exit code 2."""

    exit_code = 2


class DeviceError(FacefillError):
    """A device this machine does not have (``--device cuda`` without CUDA)."""


class OutputError(FacefillError):
    """An output path that would overwrite an input, or cannot be written."""


class OutputPathError(FacefillError):
    """One output file that cannot be written because a folder sits at its path (or a file where
    a folder is needed): that input fails and a batch goes on, unlike :class:`OutputError`."""


class PartialFailure(FacefillError):
    """A batch finished, kept every good output, but some inputs failed: exit code 3."""

    exit_code = 3
