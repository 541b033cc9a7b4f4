"""What a batch command reports: :class:`BatchReport`, and which failures of one input a batch
records and gets past. The runner itself is :func:`facefill.pipeline.runner.run_folder`.

The core never prints: progress goes to an optional ``progress(done, total, name)`` callback
(:data:`Progress`), and ``should_stop()`` lets a caller stop cleanly between chunks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2

from facefill.errors import FacefillError, OutputError

Progress = Callable[[int, int, str], None]

#: Failures of one input that a batch records and gets past (besides FacefillError):
#: unreadable or malformed data. Anything else is a bug and propagates.
DATA_ERRORS = (OSError, ValueError, cv2.error)


@dataclass
class BatchReport:
    """What a batch command did. ``failed`` holds ``(file, reason)`` pairs."""

    total: int = 0
    done: list[Path] = field(default_factory=list)  # inputs processed by this run
    written: list[Path] = field(default_factory=list)  # every file written (an input may give several)
    skipped: list[Path] = field(default_factory=list)  # inputs whose outputs were already there (resume)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    stopped: bool = False
    notes: list[str] = field(default_factory=list)  # things the caller should tell the user
    warnings: list[str] = field(default_factory=list)  # things it must tell even under --quiet

    def record_failure(self, path: Path, exc: BaseException) -> bool:
        """Record ``exc`` as ``path``'s failure when it is an expected one; False otherwise.
        An :class:`OutputError` (the output cannot be written) is never a per-input failure:
        it stops the batch."""
        if isinstance(exc, OutputError):
            return False
        if isinstance(exc, FacefillError):
            self.failed.append((path, str(exc)))
        elif isinstance(exc, DATA_ERRORS):
            self.failed.append((path, f"{path}: {exc.__class__.__name__}: {exc}"))
        else:
            return False
        return True

    @property
    def ok(self) -> bool:
        """At least one output exists for this run (written now or already present)."""
        return bool(self.done or self.skipped)

    @property
    def exit_code(self) -> int:
        """0: every input succeeded (or was already done); 3: some failed, the good outputs were
        kept; 1: nothing could be done (docs/cli-conventions.md)."""
        if not self.failed:
            return 0
        return 3 if self.ok else 1
