"""The training loop: cascaded or progressive, resumable, single process or DDP (torchrun).

Run folder layout (rank 0 writes everything)::

    RUN/config.toml            the resolved config
    RUN/metrics.csv            step, epoch, images, stage, alpha, every loss term, img/s (+ val rows)
    RUN/samples/step_XXXXXXX.png   mask | output per scale (upsampled) | real, one row per image
    RUN/checkpoints/state_XXXXXXX.pt  training state (last ``keep_checkpoints``), weights_only-loadable
    RUN/generator.safetensors  G_ema release weights (written at the end and at every checkpoint)
    RUN/tensorboard/           the same scalars as metrics.csv, when ``tensorboard`` is installed

Optimisers: Adam for G and D (``train.lr_g``/``lr_d``, ``train.betas``; default 2e-4 and
(0.5, 0.999), the DCGAN/pix2pix setting). One D step then one G step per batch. G_ema is an
exponential moving average of G (``train.ema_decay``) used for samples, validation and release.

Exact resume: data order comes from ``(seed, epoch)``, augmentation from ``(seed, epoch, index)``,
and the state saves step, epoch, position in the epoch, every model and optimiser and the RNGs,
so ``--resume`` continues with the same batches an uninterrupted run would see.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, Subset

from facefill.align.landmarks import lazy_backend
from facefill.config import Config, dump_toml, from_dict, to_dict
from facefill.errors import ConfigError, FacefillError
from facefill.models import build_discriminator, build_generator
from facefill.models.generator import num_stages, pyramid
from facefill.models.release import save_release
from facefill.train.data import FaceDataset, scan, split
from facefill.train.losses import GeneratorObjective, d_loss
from facefill.train.state import load_state, rng_state, save_state, set_rng_state

RELEASE_NAME = "generator.safetensors"


class TrainingInterrupted(FacefillError):
    """Ctrl-C during training: a checkpoint was saved; the CLI exits 130."""

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
    skipped: list[tuple[Path, str]]
    last_metrics: dict[str, float]


# ----------------------------------------------------------------------------- distributed


def _dist_setup(device: str) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") and torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    rank = dist.get_rank() if dist.is_initialized() else 0
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and world > 1:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(torch.device(device))
    return rank, world, torch.device(device)


def _unwrap(m: torch.nn.Module) -> torch.nn.Module:
    return m.module if isinstance(m, DDP) else m


# ------------------------------------------------------------------------------- schedule


def progressive_stage(images_seen: int, images_per_stage: int, stages: int) -> tuple[int, float]:
    """``(stage, alpha)`` after ``images_seen`` images: each stage lasts ``images_per_stage``
    images; a new block fades in (alpha 0 -> 1) over the first half of its stage."""
    stage = min(images_seen // images_per_stage, stages - 1)
    if stage == 0:
        return 0, 1.0
    into = images_seen - stage * images_per_stage
    return stage, min(1.0, 2.0 * into / images_per_stage)


def _epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


# ------------------------------------------------------------------------------------ run


def _sample_grid(batch: dict[str, torch.Tensor], outputs: dict[int, torch.Tensor], path: Path, rows: int = 4) -> Path:
    import torch.nn.functional as F

    from facefill.data.io import write_image

    size = batch["real"].shape[-1]
    cols = [batch["masked"][:rows]]
    cols += [F.interpolate(o[:rows].float(), size=(size, size), mode="nearest") for o in outputs.values()]
    cols.append(batch["real"][:rows])
    grid = torch.cat([torch.cat(list(c.cpu()), dim=1) for c in cols], dim=2)  # (3, rows*S, cols*S)
    img = ((grid.clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    return write_image(path, img)


def ema_decay(decay: float, step: int) -> float:
    """The EMA decay after ``step`` updates, warmed up as ``min(decay, (1 + step) / (10 + step))``
    so that G_ema follows G early on instead of holding on to the random initialisation."""
    return min(decay, (1 + step) / (10 + step))


def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1 - decay)
        for e, b in zip(ema.buffers(), model.buffers()):
            e.copy_(b)


def build_losses(cfg: Config, device: torch.device) -> GeneratorObjective:
    identity = perceptual = None
    if cfg.loss.use_id and cfg.loss.w_id > 0:
        from facefill.models.embedders import FaceEmbedder, IdentityLoss

        identity = IdentityLoss(FaceEmbedder(eyes=(cfg.align.left_eye, cfg.align.right_eye)), cfg.loss.identity)
    if cfg.loss.use_pc and cfg.loss.w_pc > 0:
        from facefill.models.embedders import PerceptualLoss

        perceptual = PerceptualLoss(cfg.loss.perceptual)
    return GeneratorObjective(cfg.loss, identity, perceptual).to(device)


def train(
    data_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    cfg: Config,
    resume: bool = False,
    device: str = "auto",
    callbacks: Callbacks = Callbacks(),
    should_stop: Callable[[], bool] | None = None,
    max_steps: int | None = None,
) -> TrainResult:
    """Train on the aligned faces under ``data_dir``, writing into ``run_dir``.

    ``resume=True`` continues from the newest checkpoint in ``run_dir`` (its stored config is
    used; ``cfg`` is ignored then). ``cfg.train.max_steps`` > 0 stops after that many steps
    (else after ``cfg.train.epochs``); ``max_steps`` overrides it, also on resume. ``should_stop`` is polled between steps; when it returns
    True (or on KeyboardInterrupt) a checkpoint is saved and :class:`TrainingInterrupted` raised.
    """
    data_dir, run_dir = Path(data_dir), Path(run_dir)
    rank, world, dev = _dist_setup(device)
    ckpt_dir = run_dir / "checkpoints"
    state = None
    if resume:
        found = sorted(ckpt_dir.glob("state_*.pt"))
        if not found:
            raise FacefillError(f"nothing to resume in {run_dir}: no checkpoints/state_*.pt (start without --resume)")
        state = load_state(found[-1], map_location="cpu")
        cfg = from_dict(state["config"])
        callbacks.on_message(f"resuming from {found[-1]} (step {state['step']})")
    if max_steps is not None:
        cfg = replace(cfg, train=replace(cfg.train, max_steps=max_steps))
    tc = cfg.train
    if tc.regime not in ("cascaded", "progressive"):
        raise ConfigError(f"train.regime must be cascaded or progressive, not {tc.regime!r}")
    resolution = cfg.generator.scales[-1]

    # ---------------------------------------------------------------- data (fail before work)
    if not data_dir.is_dir():
        raise FacefillError(f"{data_dir} is not a folder; pass the output folder of 'facefill align'")
    samples, skipped = scan(data_dir, lazy_backend("dlib"))
    if not samples:
        raise FacefillError(f"no usable training images in {data_dir} ({len(skipped)} skipped); "
                            "run 'facefill align RAW_DIR ALIGNED_DIR' and train on ALIGNED_DIR")
    train_s, val_s = split(samples, data_dir, tc.val_fraction, tc.seed, Path(tc.val_list) if tc.val_list else None)
    if len(train_s) < tc.batch_size * world:
        raise FacefillError(f"{len(train_s)} training images in {data_dir} but a batch needs {tc.batch_size * world}; "
                            f"add images or lower the batch size (--set train.batch_size=N)")
    dataset = FaceDataset(train_s, resolution, cfg.mask, tc.flip, tc.seed)
    val_set = FaceDataset(val_s, resolution, cfg.mask, False, tc.seed)
    steps_per_epoch = len(train_s) // (tc.batch_size * world)
    total_steps = tc.max_steps if tc.max_steps > 0 else tc.epochs * steps_per_epoch

    # ---------------------------------------------------------------- models
    torch.manual_seed(tc.seed)
    G = build_generator(cfg).to(dev)
    D = build_discriminator(cfg).to(dev)
    G_ema = build_generator(cfg).to(dev).eval()
    G_ema.load_state_dict(G.state_dict())
    for p in G_ema.parameters():
        p.requires_grad_(False)
    opt_g = torch.optim.Adam(G.parameters(), lr=tc.lr_g, betas=tc.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=tc.lr_d, betas=tc.betas)
    step, epoch, pos = 0, 0, 0
    if state is not None:
        G.load_state_dict(state["G"]), D.load_state_dict(state["D"]), G_ema.load_state_dict(state["G_ema"])
        opt_g.load_state_dict(state["opt_g"]), opt_d.load_state_dict(state["opt_d"])
        step, epoch, pos = state["step"], state["epoch"], state["pos"]
        set_rng_state(state["rng"])
    objective = build_losses(cfg, dev)
    use_adv = cfg.loss.use_adv and cfg.loss.w_adv > 0
    if world > 1:
        G = DDP(G, find_unused_parameters=tc.regime == "progressive")
        D = DDP(D, find_unused_parameters=True)
    G_fwd = torch.compile(G) if tc.compile else G
    amp = (tc.precision == "bf16" or (tc.precision == "auto" and dev.type == "cuda"))
    autocast = (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if amp else (lambda: torch.autocast(dev.type, enabled=False))

    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.toml").write_text(dump_toml(cfg))
    metrics_file = run_dir / "metrics.csv"
    board = _tensorboard(run_dir / "tensorboard") if rank == 0 else None
    last: dict[str, float] = {}
    stages = num_stages(resolution)
    interrupted = False

    saved_at: list[tuple[int, int, int]] = []

    def checkpoint() -> None:
        # the end of a run often falls on a step just saved: write it again only if it moved on
        if rank != 0 or saved_at == [(step, epoch, pos)]:
            return
        saved_at[:] = [(step, epoch, pos)]
        save_state(ckpt_dir / f"state_{step:07d}.pt", {
            "config": to_dict(cfg), "step": step, "epoch": epoch, "pos": pos,
            "G": _unwrap(G).state_dict(), "D": _unwrap(D).state_dict(), "G_ema": G_ema.state_dict(),
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "rng": rng_state(),
        })
        for old in sorted(ckpt_dir.glob("state_*.pt"))[:-tc.keep_checkpoints]:
            old.unlink()
        save_release(run_dir / RELEASE_NAME, G_ema, cfg, extra={"step": str(step)})

    def log(row: dict[str, float | int | str]) -> None:
        if rank != 0:
            return
        new = not metrics_file.exists()
        with metrics_file.open("a", newline="") as fh:
            w = csv.writer(fh)
            if new:
                w.writerow(["step", "epoch", "kind", "name", "value"])
            for k, v in row.items():
                if k not in ("step", "epoch", "kind"):
                    w.writerow([row["step"], row["epoch"], row["kind"], k, f"{v:.6g}" if isinstance(v, float) else v])
                    if board is not None:
                        board.add_scalar(f"{row['kind']}/{k}", float(v), int(row["step"]))

    try:
        t_last, n_last = time.perf_counter(), 0
        while step < total_steps:
            dataset.set_epoch(epoch)
            order = _epoch_order(len(dataset), tc.seed, epoch)
            usable = steps_per_epoch * tc.batch_size * world
            mine = order[:usable][rank::world]  # each rank its own slice, like DistributedSampler
            loader = DataLoader(Subset(dataset, mine[pos * tc.batch_size:]), batch_size=tc.batch_size,
                                num_workers=tc.num_workers, drop_last=True, pin_memory=dev.type == "cuda",
                                persistent_workers=False)
            for batch in loader:
                if step >= total_steps:
                    break
                if should_stop is not None and should_stop():
                    raise KeyboardInterrupt
                batch = {k: v.to(dev, non_blocking=True) for k, v in batch.items()}
                stage, alpha = (stages - 1, 1.0)
                if tc.regime == "progressive":
                    stage, alpha = progressive_stage(step * tc.batch_size * world, tc.images_per_stage, stages)
                    _unwrap(G).grow(stage, alpha)
                    G_ema.grow(stage, alpha)
                metrics: dict[str, float] = {}
                with autocast():
                    outputs = G_fwd(batch["masked"])
                reals = pyramid(batch["real"], tuple(outputs))
                if use_adv:
                    opt_d.zero_grad(set_to_none=True)
                    with autocast():
                        r_log = D(reals, batch["masked"])
                        f_log = D({n: o.detach() for n, o in outputs.items()}, batch["masked"])
                        ld = sum(d_loss(r_log[n].float(), f_log[n].float(), cfg.loss.gan) for n in outputs)
                    ld.backward()
                    opt_d.step()
                    metrics["d_loss"] = float(ld.detach())
                opt_g.zero_grad(set_to_none=True)
                with autocast():
                    f_log = D(outputs, batch["masked"]) if use_adv else None
                lg, terms = objective({n: o.float() for n, o in outputs.items()}, batch["real"],
                                      batch["landmarks"], {n: v.float() for n, v in f_log.items()} if f_log else None)
                lg.backward()
                if use_adv:
                    D.zero_grad(set_to_none=True)  # G's step must not leave gradients in D
                opt_g.step()
                _ema_update(G_ema, _unwrap(G), ema_decay(tc.ema_decay, step))
                step += 1
                pos += 1
                metrics.update(terms)
                metrics["g_loss"] = float(lg.detach())
                n_last += tc.batch_size * world
                if step % tc.log_every == 0 or step == total_steps:
                    now = time.perf_counter()
                    metrics["img_per_s"] = n_last / max(now - t_last, 1e-9)
                    t_last, n_last = now, 0
                    log({"step": step, "epoch": epoch, "kind": "train", "stage": stage, "alpha": alpha, **metrics})
                last = metrics
                callbacks.on_step(step, total_steps, metrics)
                if rank == 0 and tc.sample_every and step % tc.sample_every == 0:
                    with torch.no_grad():
                        _sample_grid(batch, G_ema(batch["masked"]), run_dir / "samples" / f"step_{step:07d}.png")
                if tc.checkpoint_every and step % tc.checkpoint_every == 0:
                    checkpoint()
            else:
                # the epoch ran to its end: validate, next epoch
                if rank == 0 and len(val_set):
                    log({"step": step, "epoch": epoch, "kind": "val", "pixel_l1": validate(G_ema, val_set, tc.batch_size, dev)})
                epoch += 1
                pos = 0
                continue
            break
    except KeyboardInterrupt:
        interrupted = True
    checkpoint()
    if board is not None:
        board.close()
    if world > 1:
        dist.barrier()
    if interrupted:
        raise TrainingInterrupted(f"interrupted at step {step}; checkpoint saved in {ckpt_dir} "
                                  f"(continue with --resume {run_dir})")
    return TrainResult(run_dir, step, run_dir / RELEASE_NAME if rank == 0 else None, skipped, last)


@torch.no_grad()
def validate(G: torch.nn.Module, dataset: FaceDataset, batch_size: int, device: torch.device) -> float:
    """Mean L1 (in [-1, 1] units) between G's full-resolution output and the real photos."""
    total, n = 0.0, 0
    for batch in DataLoader(dataset, batch_size=batch_size):
        out = G(batch["masked"].to(device))
        last = out[max(out)]
        real = batch["real"].to(device)
        if last.shape[-1] != real.shape[-1]:
            real = pyramid(real, (last.shape[-1],))[last.shape[-1]]
        total += float((last.float() - real).abs().mean()) * len(real)
        n += len(real)
    return total / max(n, 1)


def _tensorboard(log_dir: Path):
    """A TensorBoard SummaryWriter when the ``tensorboard`` package is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(log_dir))


__all__ = ["train", "Callbacks", "TrainResult", "TrainingInterrupted", "progressive_stage", "validate"]
