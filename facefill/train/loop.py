"""The training loop: cascaded or progressive, resumable exactly, single process or DDP.

:func:`fit` builds G, D, G_ema and the optimisers (or restores them from a training state) and
runs :func:`facefill.train.step.train_step` once per batch, logging, sampling, validating and
checkpointing on the way. The folder driver that finds the data, the run folder and the state
to resume from is :func:`facefill.pipeline.train.train_folder`.

Exact resume, for a stop at any step:

* data order comes from ``(seed, epoch)``, augmentation from ``(seed, epoch, index)``, and a
  state stores the position in the epoch; each DataLoader draws its workers' base seed from its
  own generator seeded by ``(seed, epoch)``, never from the global RNG;
* SIGINT / SIGTERM (and ``should_stop``) are only acted on between steps, so the state written
  on a stop holds D, G, G_ema and both optimisers after the same whole step. A second Ctrl-C
  stops at once, without writing a state for the unfinished step;
* the global RNG states are restored after everything that draws from them at start-up;
* the epoch's end (validation, next epoch) is handled right after its last step, so no state
  ever sits "between epochs".
"""

from __future__ import annotations

import contextlib
import copy
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Subset

from facefill.config import Config, to_dict
from facefill.errors import FacefillError
from facefill.losses.objective import build_generator_loss
from facefill.models import build_discriminator, build_generator
from facefill.models.generator import split_legacy_buffers
from facefill.models.release import RELEASE_NAME, save_release
from facefill.train.report import MetricsLog, sample_grid, validate
from facefill.train.state import rng_state, save_state, set_rng_state, state_files
from facefill.train.step import Nets, train_step, unwrap


class TrainingInterrupted(FacefillError):
    """Ctrl-C, SIGTERM or ``should_stop``: a checkpoint was saved; the CLI exits 130."""

    exit_code = 130


@dataclass
class Callbacks:
    """How the core reports progress (the CLI renders these; tests may ignore them)."""

    on_step: Callable[[int, int, dict[str, float]], None] = lambda step, total, metrics: None
    on_message: Callable[[str], None] = lambda msg: None


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    release: Path | None
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    last_metrics: dict[str, float] = field(default_factory=dict)


def progressive_stage(images_seen: int, images_per_stage: int, stages: int) -> tuple[int, float]:
    """``(stage, alpha)`` after ``images_seen`` images: each stage lasts ``images_per_stage``
    images; a new block fades in (alpha 0 -> 1) over the first half of its stage."""
    stage = min(images_seen // images_per_stage, stages - 1)
    if stage == 0:
        return 0, 1.0
    into = images_seen - stage * images_per_stage
    return stage, min(1.0, 2.0 * into / images_per_stage)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The shuffled order of epoch ``epoch``: a function of ``(seed, epoch)`` alone."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def _worker_init(worker_id: int) -> None:
    # Ctrl-C in a terminal, and a SIGTERM sent to the whole process group (``timeout``, Slurm,
    # ``kill -- -PGID``), reach the workers too; the main process decides when to stop. A worker
    # killed here would abort the step with no checkpoint.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@contextlib.contextmanager
def deferred_signals() -> Iterator[Callable[[], bool]]:
    """While active, SIGINT and SIGTERM only raise a flag (the yielded callable reads it); a
    second SIGINT raises KeyboardInterrupt at once. Outside the main thread: no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    count = {"n": 0}

    def handler(signum, frame):
        count["n"] += 1
        if signum == signal.SIGINT and count["n"] > 1:
            raise KeyboardInterrupt

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: count["n"] > 0
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def fit(run_dir: Path, cfg: Config, train_set: Dataset, val_set: Dataset, dev: torch.device,
        state: dict | None = None, callbacks: Callbacks = Callbacks(),
        should_stop: Callable[[], bool] | None = None, rank: int = 0, world: int = 1,
        init: dict[str, dict[str, torch.Tensor]] | None = None) -> TrainResult:
    """Train ``cfg``'s models on ``train_set`` (a FaceDataset) into ``run_dir`` (which exists).
    ``state``: a training state to continue from. ``init``: weights to start a new run from
    (``{"G", "G_ema", optional "D"}`` state dicts; see :func:`facefill.pipeline.train.initial_weights`).
    Raises TrainingInterrupted on a stop."""
    tc, scales = cfg.train, cfg.generator.scales
    steps_per_epoch = len(train_set) // (tc.batch_size * world)
    total = tc.max_steps if tc.max_steps > 0 else tc.epochs * steps_per_epoch

    def schedule(at: int) -> tuple[int | None, float]:
        if tc.regime != "progressive":
            return None, 1.0
        return progressive_stage(at * tc.batch_size * world, tc.images_per_stage, len(scales))

    torch.manual_seed(tc.seed)
    G, D = build_generator(cfg).to(dev), build_discriminator(cfg).to(dev)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_g = torch.optim.Adam(G.parameters(), lr=tc.lr_g, betas=tc.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=tc.lr_d, betas=tc.betas)
    objective = build_generator_loss(cfg, dev)
    step, epoch, pos = 0, 0, 0
    if init is not None and state is None:  # checked to fit cfg before any work (pipeline.train.check_fits)
        for name, net in (("G", G), ("G_ema", G_ema), ("D", D)):
            if name in init:
                net.load_state_dict(init[name])
    if state is not None:
        G.load_state_dict(split_legacy_buffers(state["G"])[0])
        G_ema.load_state_dict(split_legacy_buffers(state["G_ema"])[0])
        D.load_state_dict(state["D"])
        opt_g.load_state_dict(state["opt_g"]), opt_d.load_state_dict(state["opt_d"])
        step, epoch, pos = state["step"], state["epoch"], state["pos"]
        if pos >= steps_per_epoch:  # saved between epochs (facefill 0.1), or the data shrank
            epoch, pos = epoch + 1, 0
        set_rng_state(state["rng"])  # last: building the loss networks above draws from the RNG
    if world > 1:
        G = torch.nn.parallel.DistributedDataParallel(G, find_unused_parameters=tc.regime == "progressive")
        D = torch.nn.parallel.DistributedDataParallel(D, find_unused_parameters=True)
    nets = Nets(torch.compile(G) if tc.compile else G, D, G_ema, opt_g, opt_d)
    log = MetricsLog(run_dir, rank == 0, step if state is not None else None)
    ckpt_dir = run_dir / "checkpoints"
    saved: list[tuple[int, int, int]] = []

    def checkpoint() -> None:
        if rank != 0 or saved == [(step, epoch, pos)]:
            return
        save_state(ckpt_dir / f"state_{step:07d}.pt", {
            "config": to_dict(cfg), "step": step, "epoch": epoch, "pos": pos,
            "G": unwrap(G).state_dict(), "D": unwrap(D).state_dict(), "G_ema": G_ema.state_dict(),
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "rng": rng_state(),
        })
        for old in sorted(ckpt_dir.glob("state_*.pt"))[:-tc.keep_checkpoints]:
            old.unlink()
        trained = schedule(max(step - 1, 0))[0]
        save_release(run_dir / RELEASE_NAME, G_ema, cfg, extra={"step": str(step)}, stage=trained)
        saved[:] = [(step, epoch, pos)]

    def run_validation() -> None:
        if rank == 0 and len(val_set):
            log.log(step, epoch, "val", validate(G_ema, val_set, tc.batch_size, dev, *schedule(max(step - 1, 0))))

    def stop_requested(signalled: Callable[[], bool]) -> bool:
        flag = signalled() or (should_stop is not None and should_stop())
        if world > 1:  # every rank stops at the same step
            t = torch.tensor([float(flag)], device=dev if dev.type == "cuda" else "cpu")
            dist.all_reduce(t)
            flag = bool(t.item())
        return flag

    last: dict[str, float] = {}
    interrupted = busy = False
    batches = None
    t_last, n_last = time.perf_counter(), 0
    with deferred_signals() as signalled:
        try:
            while step < total and not (interrupted := stop_requested(signalled)):
                if batches is None:
                    train_set.set_epoch(epoch)
                    mine = epoch_order(len(train_set), tc.seed, epoch)[:steps_per_epoch * tc.batch_size * world][rank::world]
                    batches = iter(DataLoader(
                        Subset(train_set, mine[pos * tc.batch_size:]), batch_size=tc.batch_size, drop_last=True,
                        num_workers=tc.num_workers, pin_memory=dev.type == "cuda", worker_init_fn=_worker_init,
                        generator=torch.Generator().manual_seed(tc.seed * 100_003 + epoch)))
                batch = {k: v.to(dev, non_blocking=True) for k, v in next(batches).items()}
                stage, alpha = schedule(step)
                busy = True
                metrics = train_step(nets, objective, batch, step, gan=cfg.loss.gan, decay=tc.ema_decay,
                                     stage=stage, alpha=alpha, precision=tc.precision,
                                     diffaug=cfg.discriminator.diffaug)
                step, pos, busy = step + 1, pos + 1, False
                if stage is not None:
                    metrics.update({"progressive/stage": stage, "progressive/alpha": alpha})
                n_last += tc.batch_size * world
                if step % tc.log_every == 0 or step == total:
                    now = time.perf_counter()
                    metrics["speed/img_per_s"] = n_last / max(now - t_last, 1e-9)
                    t_last, n_last = now, 0
                    log.log(step, epoch, "train", metrics)
                last = metrics
                callbacks.on_step(step, total, metrics)
                if rank == 0 and tc.sample_every and step % tc.sample_every == 0:
                    sample_grid(G_ema, batch, run_dir / "samples" / f"step_{step:07d}.png", stage, alpha)
                if tc.val_every and step % tc.val_every == 0:
                    run_validation()
                if pos == steps_per_epoch:  # the epoch's last batch: validate, next epoch
                    if not tc.val_every:
                        run_validation()
                    epoch, pos, batches = epoch + 1, 0, None
                if tc.checkpoint_every and step % tc.checkpoint_every == 0:
                    checkpoint()
        except KeyboardInterrupt:
            interrupted = True
        finally:
            batches = None  # shut the DataLoader workers down
    if not busy:
        checkpoint()
    log.close()
    if world > 1 and not busy:
        dist.barrier()
    if busy and not state_files(ckpt_dir):  # a second Ctrl-C before the first checkpoint
        raise TrainingInterrupted(f"stopped in the middle of step {step + 1}, before any checkpoint was saved; "
                                  f"nothing to resume: run the same command again to start over")
    if busy:
        raise TrainingInterrupted(f"stopped in the middle of step {step + 1}, which was not saved; "
                                  f"continue from the newest checkpoint in {ckpt_dir} with --resume {run_dir}")
    if interrupted:
        raise TrainingInterrupted(f"interrupted at step {step}; checkpoint saved in {ckpt_dir} "
                                  f"(continue with --resume {run_dir})")
    return TrainResult(run_dir, step, run_dir / RELEASE_NAME if rank == 0 else None, [], last)


def __getattr__(name: str):
    # ``facefill.train.loop.train`` was the driver's home before facefill.pipeline.train.
    if name == "train":
        from facefill.pipeline.train import train_folder

        return train_folder
    raise AttributeError(name)


__all__ = ["Callbacks", "TrainResult", "TrainingInterrupted", "epoch_order", "fit", "progressive_stage"]
