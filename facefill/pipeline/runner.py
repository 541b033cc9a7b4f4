"""The one batch runner under every folder-in, folder-out command (align, mask, hallucinate,
replace-bg).

A stage says what one input means with a :class:`Job`: ``load`` (one input file -> what the
computation takes; a bad input raises and is skipped), ``compute`` (a chunk of loaded inputs ->
one result each, batched: the model's forward pass), ``write`` (one input's result -> the files
written, the file that marks the input done last) and ``done`` (the input's outputs exist).
:func:`run_folder` owns everything else, in this order:

1. list the inputs (sorted, recursive) and refuse an empty folder with the stage's message;
2. :func:`~facefill.pipeline.outputs.check_write_plan` every path the command writes against
   every path it reads, before any work (output folders created and probed);
3. take the shard ``i::n``, plan one output path per input (sub-folders mirrored, clashes kept
   apart), and let the stage build its job from that plan;
4. :func:`~facefill.pipeline.outputs.open_run`: the lock, the run record (resume only with the
   same settings), ``--overwrite`` removing what earlier runs wrote;
5. skip inputs whose outputs exist; for the rest, in chunks of ``batch_size``: load (in
   ``read_ahead`` threads, the next chunk while this one computes), prepare where the job has
   that step (in a thread of its own, the next chunk while this one computes), compute, write (in
   ``write_threads`` threads, overlapping the next chunk's compute); an input's files enter the
   run record, with the input's identity (its content digest), before they are written and again
   after, so a run killed at any point leaves no output the record does not list;
6. ``failures.tsv``: every input that failed, and why (merged with other shards' and calls').

Failures: a :class:`~facefill.errors.FacefillError` or unreadable data in ``load`` or ``write``
fails that input only (recorded; the batch goes on; every good output is kept); an
:class:`~facefill.errors.OutputError` (the disk is full, the folder is gone) stops the batch; any
other exception is a bug and propagates. ``should_stop()`` (Ctrl-C) is honoured between chunks,
after the chunk in flight is written.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from facefill.data.batch import BatchReport, Progress
from facefill.data.io import scan_images
from facefill.errors import FacefillError, ImageError
from facefill.pipeline.outputs import (Write, check_input_name, check_write_plan, input_identity, input_key, open_run,
                                       plan_outputs, write_failures)


@dataclass
class Job:
    """One stage's work on one folder (see the module docstring)."""

    command: str  # the command's name, for the run record and the lock
    settings: dict  # everything that changes the outputs: resume is refused when it differs
    load: Callable[[Path], Any]  # input file -> loaded item (runs in read-ahead threads)
    compute: Callable[[list], Sequence[Any]]  # loaded items of one chunk -> one result each
    write: Callable[[Path, Any, Any], list[Path]]  # (input, loaded item, result) -> files written, marker last
    done: Callable[[Path], bool]  # the input's outputs are complete (kept unless --overwrite)
    started: Callable[[Path], bool] | None = None  # some output of the input exists (default: done)
    outputs: Callable[[Path], list[Path]] | None = None  # files the input's outputs would replace (default: its planned output)
    batch_size: int = 1
    read_ahead: int = 0  # threads loading the next chunk while this one computes (0: load in turn)
    write_threads: int = 0  # threads writing a chunk while the next one computes (0: write in turn)
    # loaded items of one chunk -> what compute takes instead of them: the part of the compute
    # that needs nothing of the chunks before it (donor choice), run in a thread of its own one
    # chunk ahead of compute (with read_ahead > 0), so the two share the cores; None: compute takes the items
    prepare: Callable[[list], Any] | None = None


@dataclass(frozen=True)
class Folders:
    """The paths of one run: ``src`` (a folder or one image) into ``dst``; ``reads``: every other
    path the command reads (``{"--background": path}``; None entries ignored); ``writes``: every
    other path it writes (``--grid``...). ``empty``: the error when ``src`` holds no image."""

    src: Path
    dst: Path
    empty: str
    reads: dict | None = None
    writes: tuple[Write, ...] = ()


@dataclass(frozen=True)
class Plan:
    """What a stage builds its :class:`Job` from: the inputs of this run (after sharding), their
    output paths, and the state of each file target the command writes (``{"--grid": "new" |
    "replace" | "-"}``)."""

    src: Path
    dst: Path
    inputs: list[Path]
    outputs: dict[Path, Path]
    targets: dict[str, str]
    unlisted: tuple[tuple[Path, str], ...] = ()  # what looked like an input but could not be listed, and why

    def key(self, path: Path) -> str:
        """How the run record names ``path``: its path relative to the input folder."""
        return input_key(path, self.src)


def plan_run(folders: Folders, shard: tuple[int, int] = (0, 1)) -> Plan:
    """Steps 1-3 of :func:`run_folder`: inputs, the write plan's checks, the shard and the names."""
    src, dst = Path(folders.src), Path(folders.dst)
    inputs, unlisted = scan_images(src)
    if not inputs and not unlisted:
        raise FacefillError(folders.empty)
    targets = check_write_plan([Write("output folder", dst), *folders.writes],
                               {"input folder": src, **(folders.reads or {})})
    i, n = shard
    inputs = inputs[i::n]
    return Plan(src, dst, inputs, plan_outputs(inputs, src, dst), targets, tuple(unlisted[i::n]))


@contextlib.contextmanager
def checked_first(folders: Folders, shard: tuple[int, int] = (0, 1)) -> Iterator[Plan]:
    """:func:`plan_run`'s checks before slow work that may still fail (building a donor index), so a
    bad output is refused first; an output folder the checks created is removed again, if still
    empty, when that work fails."""
    created = not Path(folders.dst).exists()
    plan = plan_run(folders, shard)
    try:
        yield plan
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                Path(folders.dst).rmdir()
        raise


def run_folder(
    folders: Folders,
    make_job: Callable[[Plan], Job],
    overwrite: bool = False,
    shard: tuple[int, int] = (0, 1),
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[BatchReport, Plan]:
    """Run a stage over a folder (the steps in the module docstring). Returns the report (done,
    skipped, failed inputs, files written) and the plan the job was built from."""
    plan = plan_run(folders, shard)
    job = make_job(plan)
    finished = {p: job.done(p) for p in plan.inputs}
    started = any(finished.values()) or (job.started is not None and any(job.started(p) for p in plan.inputs))
    report = BatchReport(total=len(plan.inputs) + len(plan.unlisted))
    for path, why in plan.unlisted:  # an unreadable folder, a dangling link: failed loudly, not dropped
        report.record_failure(path, ImageError(why))
    targets = [f for p in plan.inputs for f in _planned(job, plan, p)]
    # the input is part of each output's identity (its content, in the record), not of the
    # folder's: other inputs may be added one call at a time, a changed one is not resumed
    with open_run(plan.dst, job.command, job.settings, overwrite=overwrite, has_outputs=started, shard=shard,
                  outputs=targets, sources={plan.key(p): p for p in plan.inputs},
                  source=str(plan.src.resolve())) as run:
        todo = []
        for path in plan.inputs:
            (report.skipped if finished[path] and not overwrite else todo).append(path)
        _Chunks(job, plan, report, run.record, progress).run(todo, should_stop)
        whole = plan.src if shard[1] == 1 and plan.src.is_dir() else None  # its rows are all this run's
        write_failures(plan.dst, report.failed, plan.inputs, folder=whole)
    return report, plan


def _planned(job: Job, plan: Plan, path: Path) -> list[Path]:
    """The files an input's outputs would replace (the job's list, or its planned output)."""
    return job.outputs(path) if job.outputs is not None else [plan.outputs[path]]


class _Chunks:
    """Step 5 of :func:`run_folder`: load, compute and write ``todo`` in chunks, overlapping the
    reading of chunk k+1 (and k+2 when the job prepares chunks), the preparing of chunk k+1 and the
    writing of chunk k-1 with the compute of chunk k."""

    def __init__(self, job: Job, plan: Plan, report: BatchReport, record: Callable, progress: Progress | None):
        self.job, self.plan, self.report, self.record, self.progress = job, plan, report, record, progress
        self.count = len(report.skipped)

    def _load(self, path: Path) -> tuple[Path, Any, BaseException | None]:
        try:
            check_input_name(path)
            return path, self.job.load(path), None
        except Exception as exc:  # recorded (or re-raised) in the caller's thread, in order
            return path, None, exc

    def _write(self, path: Path, item: Any, result: Any) -> tuple[list[Path] | None, BaseException | None, str]:
        """Write one input's outputs, recorded (with the input's identity) before they are written."""
        key, identity = self.plan.key(path), input_identity(path)
        try:
            self.record(key, _planned(self.job, self.plan, path), identity)
            return self.job.write(path, item, result), None, identity
        except Exception as exc:
            return None, exc, identity

    def _fail(self, path: Path, exc: BaseException) -> None:
        if not self.report.record_failure(path, exc):
            raise exc

    def _finish(self, chunk: list[Path], written: list[tuple[Path, Any]]) -> None:
        """Record a chunk's writes in input order (futures or plain results), then report progress."""
        for path, outcome in written:
            files, exc, identity = outcome.result() if isinstance(outcome, Future) else outcome
            if exc is not None:
                self._fail(path, exc)
                continue
            self.report.done.append(path)
            self.report.written.extend(files)
            self.record(self.plan.key(path), files, identity)
        self.count += len(chunk)
        if self.progress is not None:
            self.progress(self.count, self.report.total, chunk[-1].name)

    def _finish_behind(self) -> None:
        behind, self.behind = self.behind, None
        if behind is not None:
            self._finish(*behind)

    def _prepared(self, loads: list) -> tuple[list, Any]:
        """A chunk's loads (futures or paths) -> ``(loaded, prepared)``: ``loaded`` the ``(path, item,
        exc)`` of each input, ``prepared`` the job's ``prepare`` of the good items (or the items)."""
        loaded = [f.result() if isinstance(f, Future) else self._load(f) for f in loads]
        items = [item for _, item, exc in loaded if exc is None]
        return loaded, (self.job.prepare(items) if self.job.prepare is not None and items else items)

    def run(self, todo: list[Path], should_stop: Callable[[], bool] | None) -> None:
        job = self.job
        chunks = [todo[i:i + job.batch_size] for i in range(0, len(todo), job.batch_size)]
        readers = ThreadPoolExecutor(job.read_ahead) if job.read_ahead > 0 else None
        writers = ThreadPoolExecutor(job.write_threads) if job.write_threads > 0 else None
        stage = ThreadPoolExecutor(1) if readers is not None and job.prepare is not None else None
        depth = 2 if stage is not None else 1  # chunks in flight ahead of the one computed

        def ahead(chunk: list[Path]):
            loads = [readers.submit(self._load, p) for p in chunk] if readers else chunk
            return stage.submit(self._prepared, loads) if stage is not None else loads

        self.behind: tuple[list[Path], list] | None = None  # the chunk being written behind
        pending = [ahead(c) for c in chunks[:depth]]
        try:
            for k, chunk in enumerate(chunks):
                if should_stop is not None and should_stop():
                    self.report.stopped = True
                    break
                head = pending.pop(0)
                loaded, prepared = head.result() if isinstance(head, Future) else self._prepared(head)
                if k + depth < len(chunks):
                    pending.append(ahead(chunks[k + depth]))
                good = []
                for path, item, exc in loaded:
                    if exc is not None:
                        self._fail(path, exc)
                    else:
                        good.append((path, item))
                results = job.compute(prepared) if good else []
                self._finish_behind()  # the previous chunk's files, written while this one computed
                if writers is not None:
                    self.behind = (chunk, [(p, writers.submit(self._write, p, it, r)) for (p, it), r in zip(good, results)])
                else:
                    self._finish(chunk, [(p, self._write(p, it, r)) for (p, it), r in zip(good, results)])
            self._finish_behind()
        except BaseException:  # a bug, an OutputError, Ctrl-C: still record what the last chunk wrote
            if self.behind is not None:
                with contextlib.suppress(Exception):
                    self._finish_behind()
            raise
        finally:
            for pool in (stage, readers, writers):
                if pool is not None:
                    pool.shutdown(wait=True, cancel_futures=True)


def default_threads() -> int:
    """Threads for reading ahead and writing behind: OpenCV's codecs release the GIL, so up to
    the cores this process may use (at most 4)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))
