"""Run a per-file job over many files: skip bad files, keep every good output, report.

The core never prints: progress goes to an optional ``progress(done, total, name)`` callback,
and ``should_stop()`` lets a caller stop cleanly between files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import cv2

from facefill.errors import FacefillError

Progress = Callable[[int, int, str], None]

#: Failures of one input that a batch records and gets past (besides FacefillError):
#: unreadable or malformed data. Anything else is a bug and propagates.
DATA_ERRORS = (OSError, ValueError, cv2.error)


@dataclass
class BatchReport:
    """What a batch command did. ``failed`` holds ``(file, reason)`` pairs."""

    total: int = 0
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # outputs already there (resume)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    stopped: bool = False

    def record_failure(self, path: Path, exc: BaseException) -> bool:
        """Record ``exc`` as ``path``'s failure when it is an expected one; False otherwise."""
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
        return bool(self.written or self.skipped)


def run_batch(
    inputs: Iterable[Path],
    work: Callable[[Path], list[Path] | None],
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> BatchReport:
    """Call ``work(path)`` for each input. ``work`` returns the files it wrote, or ``None`` when it
    skipped the input because its outputs exist. Expected failures (FacefillError, unreadable
    data) are recorded and the batch goes on; anything else is a bug and propagates."""
    items = list(inputs)
    report = BatchReport(total=len(items))
    for i, path in enumerate(items):
        if should_stop is not None and should_stop():
            report.stopped = True
            break
        try:
            out = work(path)
        except Exception as exc:
            if not report.record_failure(path, exc):
                raise
        else:
            if out is None:
                report.skipped.append(path)
            else:
                report.written.extend(out)
        if progress is not None:
            progress(i + 1, len(items), path.name)
    return report
