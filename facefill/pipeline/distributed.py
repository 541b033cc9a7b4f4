"""Folder jobs (``hallucinate``, ``align``, ``replace-bg``) on a Dask cluster (``pip install
'facefill[dask]'``): each task is one shard ``i/n`` run through the command's own Python API
(:func:`~facefill.pipeline.hallucinate.hallucinate_folder` with ``opts.shard = (i, n)``...), so
the outputs, the run record, the shard locks (``OUT/.facefill-lock.<i>of<n>``) and
``failures.tsv`` are exactly those of ``--shard i/n`` processes, and of a single-process run.

- **Retries**: a task that raises something other than a :class:`~facefill.errors.FacefillError`
  is run again up to ``retries`` times; a task whose worker dies (killed, out of memory) is run
  again on another worker by Dask's scheduler (up to its ``distributed.scheduler.allowed-failures``,
  3 by default). A retried shard resumes from the run record: the inputs its first try finished
  are skipped, an input it was writing is written again, under the same names.
- **User errors** (a :class:`~facefill.errors.FacefillError`: no images, a folder in use, other
  settings in the record) are the same on every retry, so a task returns them instead of raising;
  the run raises the first after every task has finished (the others' outputs are kept).
- **Resume**: a second run skips every input the run records say is done, whatever the number of
  tasks (a shard is a slice of the sorted inputs; resume is per input, not per shard).
- **Prepared once**: for ``hallucinate`` the client prepares the filler before any task is
  submitted (a donor bank's index is built and cached then, with the progress bar); each worker
  prepares its own copy once per process from the cache (``FACEFILL_CACHE`` must name the same,
  shared folder on every machine) and keeps it for its later tasks.

Light at import (no dask, no torch): the CLI imports it for ``--dask``.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from facefill.errors import FacefillError, UsageError

#: The commands that run on a cluster: folder in, folder out, through the batch runner.
COMMANDS = ("hallucinate", "align", "replace-bg")
INSTALL = "pip install 'facefill[dask]'"


@dataclass(frozen=True)
class StageCall:
    """One command's call over a folder, the same in every task but for the shard.

    ``opts``: :class:`~facefill.options.HallucinateOptions`, :class:`~facefill.options.ReplaceOptions`
    or, for ``align``, :class:`~facefill.options.AlignOptions` (then ``align_config`` and
    ``overwrite`` too; the other options carry their own ``overwrite``). ``background``: replace-bg's
    image or folder. ``device``: a device name resolved on each worker (``auto``: its GPU if any).
    ``filler_key``: what the worker's cached filler is kept under (set by :func:`run_distributed`)."""

    command: str
    src: Path
    dst: Path
    opts: Any
    device: str = "cpu"
    background: Path | None = None
    align_config: Any = None
    overwrite: bool = False
    filler_key: str = ""


@dataclass
class ShardResult:
    """What one task sends back: its shard, its report (None when it stopped with ``error``)."""

    shard: tuple[int, int]
    report: Any = None  # facefill.data.batch.BatchReport
    error: FacefillError | None = None
    host: str = ""
    pid: int = 0


@dataclass
class DistributedReport:
    """A cluster run: ``report``, the shards' reports merged (a
    :class:`~facefill.data.batch.BatchReport`, as a single-process run gives); ``tasks``: how many
    shards; ``workers``: the cluster's workers when the run started; ``where``: ``{shard index:
    "host:pid"}`` of the worker that finished each task."""

    report: Any
    tasks: int
    workers: int
    where: dict[int, str] = field(default_factory=dict)


_local = threading.local()  # per worker thread: the prepared filler, kept for the thread's next tasks


def _worker_filler(call: StageCall, device):
    """The filler of ``call`` prepared on ``device``, once per worker thread per ``filler_key``."""
    from facefill.fill.registry import make_filler

    cache = getattr(_local, "fillers", None)
    if cache is None:
        cache = _local.fillers = {}
    key = f"{call.filler_key}|{device}"
    if key not in cache:
        cache.clear()  # another run's filler (other weights, another bank): not kept beside this one
        cache[key] = make_filler(call.opts).prepare(device)
    return cache[key]


def run_shard(call: StageCall, shard: tuple[int, int], progress: Callable | None = None) -> ShardResult:
    """Run shard ``shard`` of ``call`` in this process (what each Dask task does). A
    :class:`~facefill.errors.FacefillError` comes back in the result; anything else raises (and
    Dask retries it)."""
    import socket

    from facefill.runtime import resolve_device

    from facefill.pipeline.outputs import TASK

    result = ShardResult(tuple(shard), host=socket.gethostname(), pid=os.getpid())
    token = TASK.set(_task_key())
    try:
        device = resolve_device(call.device)
        if call.command == "hallucinate":
            from facefill.pipeline.hallucinate import hallucinate_folder

            result.report = hallucinate_folder(call.src, call.dst, replace(call.opts, shard=tuple(shard)), device,
                                               progress=progress, filler=_worker_filler(call, device))
        elif call.command == "replace-bg":
            from facefill.pipeline.replace_bg import replace_bg_folder

            result.report = replace_bg_folder(call.src, call.dst, call.background, replace(call.opts, shard=tuple(shard)),
                                              device, progress=progress)
        else:
            from facefill.config import AlignConfig
            from facefill.pipeline.align import align_folder

            result.report = align_folder(call.src, call.dst, call.opts, call.align_config or AlignConfig(),
                                         overwrite=call.overwrite, device=str(device), progress=progress,
                                         shard=tuple(shard))
    except FacefillError as exc:
        result.error = exc
    finally:
        TASK.reset(token)
    return result


def _task_key() -> str | None:
    """The Dask key of the task this thread runs (None outside a Dask worker): the shard's lock
    carries it, so a retry takes over the lock of a try whose worker died, on any machine."""
    try:
        from distributed import get_worker

        return str(get_worker().get_current_task())
    except (ImportError, ValueError):
        return None


def import_distributed():
    """The ``distributed`` module, or one line saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise FacefillError(f"--dask needs Dask's distributed scheduler, which is not installed; {INSTALL}") from None
    return distributed


def parse_scheduler(spec: str) -> int | str:
    """``local:N`` -> N (workers of a local cluster, 1 thread each); ``local`` -> the cores this
    process may use; anything else is a scheduler address (``tcp://host:8786``). Usage error for
    ``local:0`` or ``local:x``."""
    if spec == "local":
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    if spec.startswith("local:"):
        try:
            n = int(spec[len("local:"):])
        except ValueError:
            n = 0
        if not 1 <= n <= 1024:
            raise UsageError(f"--dask {spec!r}: local:N needs 1 <= N <= 1024 workers, e.g. local:4")
        return n
    if not spec:
        raise UsageError("--dask '': give a scheduler address (tcp://host:8786) or local:N")
    return spec


def _connect(scheduler, cluster_options: dict | None):
    """``(client, owned)`` for ``scheduler``: a ``distributed.Client`` (used as it is), a scheduler
    address, or ``local:N`` (a LocalCluster of N one-thread worker processes); ``owned``: what this
    run made and closes after it (the client, and the local cluster)."""
    distributed = import_distributed()
    if isinstance(scheduler, distributed.Client):
        return scheduler, ()
    target = parse_scheduler(str(scheduler))
    if isinstance(target, int):
        options = {"n_workers": target, "threads_per_worker": 1, "processes": True, "dashboard_address": None,
                   **(cluster_options or {})}
        cluster = distributed.LocalCluster(**options)
        client = distributed.Client(cluster)
        return client, (client, cluster)
    try:
        client = distributed.Client(target, timeout="20s")
        return client, (client,)
    except (OSError, TimeoutError, ValueError) as exc:
        raise FacefillError(f"--dask {target}: cannot reach a Dask scheduler there ({exc}); start one with "
                            f"'dask scheduler' and workers with 'dask worker {target}', or use --dask local:N") from None


def filler_key(opts, filler) -> str:
    """What makes two workers' fillers the same: the options (shard and overwrite aside) and the
    prepared filler's settings, a file among them by its content's digest (as the run record keeps
    them), so a worker never reuses a filler made from other weights or another bank."""
    from facefill.pipeline.outputs import file_digest

    settings = {k: (file_digest(v) if v.is_file() else str(v)) if isinstance(v, Path) else v
                for k, v in filler.settings().items()}
    return json.dumps({"opts": repr(replace(opts, shard=(0, 1), overwrite=False)), "filler": settings},
                      sort_keys=True, default=str)


def merge_reports(results: list[ShardResult]):
    """The shards' reports as one :class:`~facefill.data.batch.BatchReport`: counts summed, inputs
    in sorted order (as one process lists them), notes and warnings once each."""
    from facefill.data.batch import BatchReport

    merged = BatchReport()
    for result in sorted(results, key=lambda r: r.shard):
        rep = result.report
        merged.total += rep.total
        merged.done += rep.done
        merged.skipped += rep.skipped
        merged.failed += rep.failed
        merged.written += rep.written
        merged.stopped |= rep.stopped
        merged.notes += [n for n in rep.notes if n not in merged.notes]
        merged.warnings += [w for w in rep.warnings if w not in merged.warnings]
    merged.done.sort()
    merged.skipped.sort()
    merged.failed.sort(key=lambda f: f[0])
    return merged


def run_distributed(command: str, src: str | os.PathLike, dst: str | os.PathLike, opts, *,
                    scheduler="local:2", tasks: int | None = None, retries: int = 2, device: str = "cpu",
                    background: str | os.PathLike | None = None, align_config=None, overwrite: bool = False,
                    filler=None, progress: Callable[[int, int, str], None] | None = None,
                    should_stop: Callable[[], bool] | None = None, task: Callable = run_shard,
                    cluster_options: dict | None = None) -> DistributedReport:
    """Run ``command`` over ``src`` into ``dst`` as ``tasks`` Dask tasks, task ``i`` being shard
    ``i/tasks`` (default: 4 per worker thread), each retried ``retries`` times on an exception.

    ``scheduler``: ``"local:N"`` (a LocalCluster of N one-thread worker processes for this run;
    ``cluster_options`` go to it), a scheduler address (``"tcp://host:8786"``), or a
    ``distributed.Client`` (used, not closed). ``opts`` as :class:`StageCall` says, with no shard
    of its own. ``filler``: hallucinate's filler as ``make_filler(opts)`` makes it, already
    prepared (the CLI prepares it under a progress bar); default: prepared here on the CPU, before
    any task is submitted (a donor bank's index is built and cached once). ``progress(done tasks,
    tasks, shard)``; ``should_stop()`` cancels the tasks not finished (``report.stopped``);
    ``task(call, shard) -> ShardResult``: what each task runs (default :func:`run_shard`; a wrapper
    may add per-task setup). A FacefillError from a task (the same in every task: no images, a
    folder in use) is raised after all tasks finish; a task that kept failing (its worker died
    again and again) is a FacefillError naming its shard. The other shards' outputs are kept."""
    if command not in COMMANDS:
        raise ValueError(f"run_distributed runs {', '.join(COMMANDS)}, not {command!r}")
    if tuple(getattr(opts, "shard", (0, 1))) != (0, 1):
        raise UsageError("--shard with --dask: --dask splits the folder into --tasks shards itself; drop --shard")
    if getattr(opts, "grid", None) is not None:
        raise UsageError("--grid with --dask: every task would write its own contact sheet over the others'; run the "
                         "same command without --dask afterwards (it skips the done inputs and writes the whole sheet)")
    if tasks is not None and not 1 <= tasks <= 1_000_000:
        raise UsageError(f"--tasks {tasks}: must be between 1 and 1000000")
    call = StageCall(command, Path(src), Path(dst), opts, str(device), None if background is None else Path(background),
                     align_config, overwrite)
    distributed = import_distributed()
    if command == "hallucinate":
        from facefill.fill.registry import make_filler

        filler = filler if filler is not None else make_filler(opts).prepare("cpu")
        call = replace(call, filler_key=filler_key(opts, filler))
    client, owned = _connect(scheduler, cluster_options)
    try:
        info = client.scheduler_info()["workers"]
        n = tasks or max(1, 4 * sum(w.get("nthreads", 1) for w in info.values()))
        token = os.urandom(4).hex()
        futures = {client.submit(task, call, (i, n), key=f"facefill-{command}-{i}of{n}-{token}", retries=retries,
                                 pure=False): i for i in range(n)}
        results, stopped = _gather(distributed, client, futures, progress, should_stop)
    finally:
        for thing in owned:
            thing.close()
    _raise_errors(command, results, n)
    report = merge_reports([r for r in results.values() if isinstance(r, ShardResult)])
    report.stopped |= stopped
    return DistributedReport(report, n, len(info), {i: f"{r.host}:{r.pid}" for i, r in results.items()})


def _gather(distributed, client, futures: dict, progress, should_stop) -> tuple[dict[int, Any], bool]:
    """Each task's :class:`ShardResult` (or the exception it kept raising), as they finish."""
    import time

    results: dict[int, Any] = {}
    pending = distributed.as_completed(list(futures))
    n = len(futures)
    while not pending.is_empty():
        batch = pending.next_batch(block=False)
        if not batch:
            if should_stop is not None and should_stop():
                client.cancel([f for f, i in futures.items() if i not in results])
                return results, True
            time.sleep(0.1)
            continue
        for future in batch:
            i = futures[future]
            results[i] = future.exception() if future.status == "error" else future.result()
            if progress is not None:
                progress(len(results), n, f"shard {i}/{n}")
    return results, False


def _raise_errors(command: str, results: dict[int, Any], n: int) -> None:
    """The first user error a task returned (every shard gives the same for a missing folder), or
    a task that kept failing on the cluster; a bug in a task is raised as it is."""
    for i in sorted(results):
        outcome = results[i]
        if isinstance(outcome, ShardResult) and outcome.error is not None:
            raise outcome.error
        if isinstance(outcome, BaseException):
            if type(outcome).__name__ != "KilledWorker":
                raise outcome
            raise FacefillError(f"{command}: task {i}/{n} failed: the Dask worker running it died each time it was "
                                "tried (out of memory? the worker logs say); the other tasks' outputs are kept, so run "
                                "it again to resume (with more memory per worker, or more --tasks)")
