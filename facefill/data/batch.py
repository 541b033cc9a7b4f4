"""Run a per-file job over many files: skip bad files, keep every good output, report.

The core never prints: progress goes to an optional ``progress(done, total, name)`` callback,
and ``should_stop()`` lets a caller stop cleanly between files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

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


def run_batch(
    inputs: Iterable[Path],
    work: Callable[[Path], list[Path] | None],
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_done: Callable[[Path, list[Path]], None] | None = None,
) -> BatchReport:
    """Call ``work(path)`` for each input. ``work`` returns the files it wrote, or ``None`` when it
    skipped the input because its outputs exist. Expected failures (FacefillError, unreadable
    data) are recorded and the batch goes on; anything else is a bug and propagates.
    ``on_done(path, files)`` is called after each input that wrote files (the run record)."""
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
                report.done.append(path)
                report.written.extend(out)
                if on_done is not None:
                    on_done(path, out)
        if progress is not None:
            progress(i + 1, len(items), path.name)
    return report


def run_batched(
    todo: list[Path],
    load: Callable[[Path], object],
    process: Callable[[list], list[list[Path]]],
    batch_size: int,
    report: BatchReport,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    workers: int = 2,
    on_done: Callable[[Path, list[Path]], None] | None = None,
) -> BatchReport:
    """The batched-inference loop shared by ``hallucinate`` and ``replace-bg``.

    For each chunk of ``batch_size`` inputs: ``load(path)`` each (a failure is recorded and the
    input dropped from the chunk), then ``process(items)`` once for the chunk, which returns the
    files written per item. ``report`` may already hold skipped inputs; progress counts them.

    With ``workers`` > 0 the next chunk is read and decoded in a thread pool while ``process``
    runs on the current one (OpenCV's decoders release the GIL), so reading overlaps the model.
    ``on_done(path, files)`` is called for each input once its files are written.
    """
    from concurrent.futures import ThreadPoolExecutor

    def safe_load(path: Path):
        try:
            return path, load(path), None
        except Exception as exc:  # recorded (or re-raised) in the caller's thread, in order
            return path, None, exc

    chunks = [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]
    done = len(report.skipped)
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 0 else None
    submit = (lambda chunk: [pool.submit(safe_load, p) for p in chunk]) if pool else (lambda chunk: chunk)
    try:
        pending = submit(chunks[0]) if chunks else None
        for k, chunk in enumerate(chunks):
            if should_stop is not None and should_stop():
                report.stopped = True
                break
            loaded = [f.result() for f in pending] if pool else [safe_load(p) for p in pending]
            pending = submit(chunks[k + 1]) if k + 1 < len(chunks) else None
            items, paths = [], []
            for path, item, exc in loaded:
                if exc is not None:
                    if not report.record_failure(path, exc):
                        raise exc
                else:
                    items.append(item)
                    paths.append(path)
            if items:
                for path, files in zip(paths, process(items)):
                    report.done.append(path)
                    report.written.extend(files)
                    if on_done is not None:
                        on_done(path, files)
            done += len(chunk)
            if progress is not None:
                progress(done, report.total, chunk[-1].name)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return report
