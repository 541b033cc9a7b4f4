"""The training loop: cascaded or progressive, resumable exactly, single process or DDP.

:func:`fit` builds G, D, G_ema and the optimisers (or restores them from a training state) and
runs :func:`facefill.train.step.train_step` once per batch, logging, sampling, validating and
checkpointing on the way. The folder driver that finds the data, the run folder and the state
to resume from is ``facefill.pipeline.train.train_folder``, which imports this module (never the
reverse). Losses are logged as means over ``train.log_every`` steps, summed on the device and
read back once at the log step (:class:`~facefill.train.report.LossMeter`).

Exact resume, for a stop at any step:

* data order comes from ``(seed, epoch)``, augmentation from ``(seed, epoch, index)``, and a
  state stores the position in the epoch; each DataLoader draws its workers' base seed from its
  own generator seeded by ``(seed, epoch)``, never from the global RNG (the device-resident set,
  :mod:`facefill.train.device_data`, draws from no RNG but those of ``(seed, epoch, index)``);
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
import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Subset

from facefill.config import Config, TrainConfig, to_dict
from facefill.errors import FacefillError
from facefill.losses.objective import build_generator_loss
from facefill.models import build_discriminator, build_generator
from facefill.models.generator import split_legacy_buffers
from facefill.models.release import RELEASE_NAME, save_release
from facefill.train.report import LossMeter, MetricsLog, sample_grid, validate
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


def machine_cores() -> int:
    """The CPU cores this process may run on (its affinity mask: what a container or
    ``taskset`` leaves it), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def loader_workers(asked: int, cores: int | None = None) -> int:
    """DataLoader worker processes for ``train.num_workers = asked`` on a machine of ``cores``:
    none on 2 cores or fewer (workers there take the cores the step's own threads need: a 6-step
    ``small`` run took 166 s with 2 workers against 100 s with none, issue 33), else ``asked``,
    at most ``cores - 1``. The batches do not depend on it (augmentation is drawn from
    ``(seed, epoch, index)``), so neither does the result."""
    cores = machine_cores() if cores is None else cores
    return 0 if cores <= 2 else min(asked, cores - 1)


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


@dataclass
class _Position:
    """Where a run stands: steps done, the epoch, and the batches done in that epoch."""

    step: int = 0
    epoch: int = 0
    pos: int = 0


def _build(cfg: Config, dev: torch.device, state: dict | None, init: dict | None, world: int,
           steps_per_epoch: int) -> tuple[Nets, _Position]:
    """G, D, G_ema and both optimisers, fresh (seeded by ``train.seed``), from ``init`` weights,
    or restored from ``state`` (RNG states last); wrapped for DDP when ``world > 1``."""
    tc = cfg.train
    torch.manual_seed(tc.seed)
    layout = torch.channels_last if tc.channels_last else torch.contiguous_format
    G = build_generator(cfg).to(dev, memory_format=layout)
    D = build_discriminator(cfg).to(dev, memory_format=layout)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_g, opt_d = make_optimizer(G, tc.lr_g, tc, dev), make_optimizer(D, tc.lr_d, tc, dev)
    at = _Position()
    if init is not None and state is None:  # checked to fit cfg before any work (pipeline.train.check_fits)
        for name, net in (("G", G), ("G_ema", G_ema), ("D", D)):
            if name in init:
                net.load_state_dict(init[name])
    if state is not None:
        G.load_state_dict(split_legacy_buffers(state["G"])[0])
        G_ema.load_state_dict(split_legacy_buffers(state["G_ema"])[0])
        D.load_state_dict(state["D"])
        opt_g.load_state_dict(state["opt_g"]), opt_d.load_state_dict(state["opt_d"])
        at = _Position(state["step"], state["epoch"], state["pos"])
        if at.pos >= steps_per_epoch:  # saved between epochs (facefill 0.1), or the data shrank
            at = _Position(at.step, at.epoch + 1, 0)
    if world > 1:
        G = torch.nn.parallel.DistributedDataParallel(G, find_unused_parameters=tc.regime == "progressive")
        D = torch.nn.parallel.DistributedDataParallel(D, find_unused_parameters=True)
    return Nets(torch.compile(G) if tc.compile else G, D, G_ema, opt_g, opt_d), at


def make_optimizer(net: torch.nn.Module, lr: float, tc: TrainConfig, dev: torch.device) -> torch.optim.Adam:
    """Adam over ``net``'s parameters with ``tc.betas``. ``tc.fused_adam``: ``"auto"`` = torch's
    fused kernel on CUDA (a few launches for all parameters instead of several per tensor) and
    torch's default elsewhere; ``"on"`` = fused wherever torch has it (the CPU too); ``"off"`` =
    torch's default. The optimiser state is the same either way, so a run resumes with any."""
    fused = tc.fused_adam == "on" or (tc.fused_adam == "auto" and dev.type == "cuda")
    return torch.optim.Adam(net.parameters(), lr=lr, betas=tc.betas, **({"fused": True} if fused else {}))


class _Run:
    """One call of :func:`fit`: the nets, the position, and what happens around each step."""

    def __init__(self, run_dir: Path, cfg: Config, train_set: Dataset, val_set: Dataset, dev: torch.device,
                 state: dict | None, callbacks: Callbacks, should_stop: Callable[[], bool] | None,
                 rank: int, world: int, init: dict | None) -> None:
        tc = self.tc = cfg.train
        self.run_dir, self.cfg, self.train_set, self.val_set, self.dev = run_dir, cfg, train_set, val_set, dev
        self.callbacks, self.should_stop, self.rank, self.world = callbacks, should_stop, rank, world
        self.steps_per_epoch = len(train_set) // (tc.batch_size * world)
        self.total = tc.max_steps if tc.max_steps > 0 else tc.epochs * self.steps_per_epoch
        self.nets, self.at = _build(cfg, dev, state, init, world, self.steps_per_epoch)
        self.objective = build_generator_loss(cfg, dev)
        if state is not None:
            set_rng_state(state["rng"])  # last: building the loss networks above draws from the RNG
        self.log = MetricsLog(run_dir, rank == 0, self.at.step if state is not None else None)
        self.ckpt_dir = run_dir / "checkpoints"
        self.saved: tuple[int, int, int] | None = None
        self.meter = LossMeter()

    def schedule(self, at: int) -> tuple[int | None, float]:
        """The progressive ``(stage, alpha)`` for step ``at`` (``(None, 1.0)`` when cascaded)."""
        tc = self.tc
        if tc.regime != "progressive":
            return None, 1.0
        return progressive_stage(at * tc.batch_size * self.world, tc.images_per_stage, len(self.cfg.generator.scales))

    def checkpoint(self) -> None:
        at, nets, tc = self.at, self.nets, self.tc
        if self.rank != 0 or self.saved == (at.step, at.epoch, at.pos):
            return
        save_state(self.ckpt_dir / f"state_{at.step:07d}.pt", {
            "config": to_dict(self.cfg), "step": at.step, "epoch": at.epoch, "pos": at.pos,
            "G": unwrap(nets.G).state_dict(), "D": unwrap(nets.D).state_dict(), "G_ema": nets.G_ema.state_dict(),
            "opt_g": nets.opt_g.state_dict(), "opt_d": nets.opt_d.state_dict(), "rng": rng_state(),
        })
        for old in sorted(self.ckpt_dir.glob("state_*.pt"))[:-tc.keep_checkpoints]:
            old.unlink()
        trained = self.schedule(max(at.step - 1, 0))[0]
        save_release(self.run_dir / RELEASE_NAME, nets.G_ema, self.cfg, extra={"step": str(at.step)}, stage=trained)
        self.saved = (at.step, at.epoch, at.pos)

    def validate(self) -> None:
        if self.rank == 0 and len(self.val_set):
            metrics = validate(self.nets.G_ema, self.val_set, self.tc.batch_size, self.dev,
                               *self.schedule(max(self.at.step - 1, 0)))
            self.log.log(self.at.step, self.at.epoch, "val", metrics)

    def stop_requested(self, signalled: Callable[[], bool]) -> bool:
        flag = signalled() or (self.should_stop is not None and self.should_stop())
        if self.world > 1:  # every rank stops at the same step
            t = torch.tensor([float(flag)], device=self.dev if self.dev.type == "cuda" else "cpu")
            dist.all_reduce(t)
            flag = bool(t.item())
        return flag

    def epoch_batches(self) -> Iterator[dict[str, torch.Tensor]]:
        """The rest of the current epoch's batches, on the device, from ``at.pos`` on."""
        tc, at, world = self.tc, self.at, self.world
        self.train_set.set_epoch(at.epoch)
        mine = epoch_order(len(self.train_set), tc.seed, at.epoch)[:self.steps_per_epoch * tc.batch_size * world]
        mine = mine[self.rank::world][at.pos * tc.batch_size:]
        if hasattr(self.train_set, "batches"):  # device-resident: indexed and augmented on the device
            yield from self.train_set.batches(mine, tc.batch_size)
            return
        loader = DataLoader(Subset(self.train_set, mine), batch_size=tc.batch_size, drop_last=True,
                            num_workers=loader_workers(tc.num_workers), pin_memory=self.dev.type == "cuda",
                            worker_init_fn=_worker_init,
                            generator=torch.Generator().manual_seed(tc.seed * 100_003 + at.epoch))
        for batch in loader:
            yield {k: v.to(self.dev, non_blocking=True) for k, v in batch.items()}

    def batches(self) -> Iterator[dict[str, torch.Tensor]]:
        """:meth:`epoch_batches`, images in channels-last layout when ``train.channels_last``."""
        for batch in self.epoch_batches():
            if self.tc.channels_last:
                batch = {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v
                         for k, v in batch.items()}
            yield batch

    def one_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Train on ``batch``, then log, sample and validate as the config says."""
        tc, at, cfg = self.tc, self.at, self.cfg
        stage, alpha = self.schedule(at.step)
        metrics = train_step(self.nets, self.objective, batch, at.step, gan=cfg.loss.gan, decay=tc.ema_decay,
                             stage=stage, alpha=alpha, precision=tc.precision, diffaug=cfg.discriminator.diffaug)
        at.step, at.pos = at.step + 1, at.pos + 1
        if stage is not None:
            metrics.update({"progressive/stage": stage, "progressive/alpha": alpha})
        self.meter.add(metrics, tc.batch_size * self.world)
        if at.step % tc.log_every == 0 or at.step == self.total:  # the one read-back of the losses
            logged = self.meter.flush()
            self.log.log(at.step, at.epoch, "train", logged)
            metrics["speed/img_per_s"] = logged["speed/img_per_s"]
        if self.rank == 0 and tc.sample_every and at.step % tc.sample_every == 0:
            sample_grid(self.nets.G_ema, batch, self.run_dir / "samples" / f"step_{at.step:07d}.png", stage, alpha)
        if tc.val_every and at.step % tc.val_every == 0:
            self.validate()
        return metrics

    def loop(self) -> tuple[bool, bool]:
        """Run to ``total`` steps or a stop; returns ``(interrupted, busy)`` (busy: stopped
        inside a step, whose state must not be saved)."""
        tc, at = self.tc, self.at
        interrupted = busy = False
        batches = None
        with deferred_signals() as signalled:
            try:
                while at.step < self.total and not (interrupted := self.stop_requested(signalled)):
                    batches = batches or self.batches()
                    busy = True
                    metrics = self.one_step(next(batches))
                    busy = False
                    self.callbacks.on_step(at.step, self.total, metrics)
                    if at.pos == self.steps_per_epoch:  # the epoch's last batch: validate, next epoch
                        if not tc.val_every:
                            self.validate()
                        at.epoch, at.pos, batches = at.epoch + 1, 0, None
                    if tc.checkpoint_every and at.step % tc.checkpoint_every == 0:
                        self.checkpoint()
            except KeyboardInterrupt:
                interrupted = True
            finally:
                if batches is not None:
                    batches.close()  # shut the DataLoader workers down
        return interrupted, busy

    def finish(self, interrupted: bool, busy: bool) -> TrainResult:
        """Save the last state (unless stopped inside a step) and raise or report."""
        if not busy:
            self.checkpoint()
        self.log.close()
        if self.world > 1 and not busy:
            dist.barrier()
        step, run_dir = self.at.step, self.run_dir
        if busy and not state_files(self.ckpt_dir):  # a second Ctrl-C before the first checkpoint
            raise TrainingInterrupted(f"stopped in the middle of step {step + 1}, before any checkpoint was saved; "
                                      f"nothing to resume: run the same command again to start over")
        if busy:
            raise TrainingInterrupted(f"stopped in the middle of step {step + 1}, which was not saved; "
                                      f"continue from the newest checkpoint in {self.ckpt_dir} with --resume {run_dir}")
        if interrupted:
            raise TrainingInterrupted(f"interrupted at step {step}; checkpoint saved in {self.ckpt_dir} "
                                      f"(continue with --resume {run_dir})")
        return TrainResult(run_dir, step, run_dir / RELEASE_NAME if self.rank == 0 else None, [],
                           {k: float(v) for k, v in self.meter.last.items()})


def fit(run_dir: Path, cfg: Config, train_set: Dataset, val_set: Dataset, dev: torch.device,
        state: dict | None = None, callbacks: Callbacks = Callbacks(),
        should_stop: Callable[[], bool] | None = None, rank: int = 0, world: int = 1,
        init: dict[str, dict[str, torch.Tensor]] | None = None) -> TrainResult:
    """Train ``cfg``'s models on ``train_set`` (a FaceDataset, or a device-resident
    :class:`~facefill.train.device_data.DeviceFaces`) into ``run_dir`` (which exists).
    ``state``: a training state to continue from. ``init``: weights to start a new run from
    (``{"G", "G_ema", optional "D"}`` state dicts, checked to fit ``cfg`` by the caller).
    Raises TrainingInterrupted on a stop."""
    run = _Run(run_dir, cfg, train_set, val_set, dev, state, callbacks, should_stop, rank, world, init)
    return run.finish(*run.loop())


__all__ = ["Callbacks", "TrainResult", "TrainingInterrupted", "epoch_order", "fit", "loader_workers",
           "machine_cores", "make_optimizer", "progressive_stage"]
