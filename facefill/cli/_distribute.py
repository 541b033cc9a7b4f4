"""``--dask``: a batch command's run on a Dask cluster (:mod:`facefill.pipeline.distributed`),
with the same progress bar, summary and exit codes as the command's own run."""

from __future__ import annotations

from pathlib import Path

from facefill.cli.common import report_batch, run_with_progress


def distribute(command: str, src: Path, dst: Path, opts, scheduler: str, tasks: int | None, quiet: bool,
               device: str = "cpu", **call) -> None:
    """Run ``command`` over ``src`` into ``dst`` on ``scheduler`` (``--dask``) in ``tasks`` shards,
    then print the summary and exit as the command does. ``hallucinate``'s filler is prepared here
    first, on the CPU (a donor bank's index built and cached under its own bar, at the inputs'
    aligned size), before any task starts; ``call``: ``background`` (replace-bg), ``align_config`` and ``overwrite`` (align)."""
    from facefill.pipeline.distributed import import_distributed, parse_scheduler, run_distributed

    parse_scheduler(scheduler)  # a bad local:N is a usage error before anything is loaded
    import_distributed()
    if command == "hallucinate":
        from facefill.data.io import list_images
        from facefill.fill.registry import make_filler
        from facefill.pipeline.face_inputs import sized

        # told the inputs' aligned size as one process is: a bank aligned at another size stops
        # here with one line, before any task (each task would stop on it alone)
        filler = sized(make_filler(opts), list_images(src))
        run_with_progress(f"preparing --method {opts.method}", lambda progress: filler.prepare("cpu", progress), quiet)
        call["filler"] = filler
    result = run_with_progress(f"{command} (dask tasks)", lambda progress: run_distributed(
        command, src, dst, opts, scheduler=scheduler, tasks=tasks, device=device, progress=progress, **call), quiet)
    result.report.notes.append(f"ran as {result.tasks} Dask tasks (shards) on {result.workers} workers")
    report_batch(result.report, command, dst, quiet)
