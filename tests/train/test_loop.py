"""The training loop's pieces: the progressive schedule, metric accumulation, and DataLoader
workers that leave signals to the main process. The driver (train_folder) on real data is tested
in tests/pipeline/test_train.py."""

import multiprocessing as mp
import os
import signal
import sys

import pytest
import torch

from facefill.train.loop import _worker_init, progressive_stage
from facefill.train.report import LossMeter


def test_progressive_schedule():
    assert progressive_stage(0, 100, 5) == (0, 1.0)
    assert progressive_stage(100, 100, 5) == (1, 0.0)
    assert progressive_stage(125, 100, 5) == (1, 0.5)
    assert progressive_stage(160, 100, 5) == (1, 1.0)
    assert progressive_stage(10_000, 100, 5)[0] == 4


def test_loss_meter_averages_losses_between_flushes_and_keeps_the_last_of_the_rest():
    meter = LossMeter()
    meter.add({"loss/G/total": torch.tensor(1.0), "loss/D/total": 4.0, "progressive/stage": 1}, images=8)
    meter.add({"loss/G/total": torch.tensor(3.0), "loss/D/total": 2.0, "progressive/stage": 2}, images=8)
    out = meter.flush()
    assert out["loss/G/total"] == 2.0 and out["loss/D/total"] == 3.0 and out["progressive/stage"] == 2
    assert isinstance(out["loss/G/total"], float) and out["speed/img_per_s"] > 0
    meter.add({"loss/G/total": torch.tensor(5.0)}, images=8)
    assert meter.flush()["loss/G/total"] == 5.0  # the sums start again after a flush


def _ignore_then_exit(ready, go) -> None:
    _worker_init(0)
    ready.set()
    go.wait(120)
    sys.exit(0)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_dataloader_workers_leave_ctrl_c_and_sigterm_to_the_main_process(signum):
    # Ctrl-C, ``timeout``, Slurm and ``kill -- -PGID`` signal the whole process group; a worker
    # killed by it aborts the main process's step ("DataLoader worker ... killed by signal") and
    # no checkpoint is written. The signal is pending in the worker before ``go`` is set, so a
    # worker that does not ignore it dies of it (exit code -signum) whatever the machine's load.
    ctx = mp.get_context("fork")
    ready, go = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_ignore_then_exit, args=(ready, go))
    proc.start()
    try:
        assert ready.wait(120)
        os.kill(proc.pid, signum)
        go.set()
        proc.join(120)
        assert proc.exitcode == 0, f"the worker did not leave the signal alone (exit code {proc.exitcode})"
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
