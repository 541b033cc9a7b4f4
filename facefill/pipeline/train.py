"""``train`` over a folder: aligned faces in, a run folder out (see facefill.train).

Everything that can be checked is checked before the models are built: the device, the state
to resume from (a bad newest state falls back to an older good one), the data (usable images,
enough for a batch) and the run folder (creatable, writable, neither inside the data nor holding it).
"""

from __future__ import annotations

import os
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.distributed as dist

from facefill.align.landmarks import lazy_backend
from facefill.config import Config, dump_toml, from_dict
from facefill.errors import CheckpointError, ConfigError, FacefillError, OutputError
from facefill.pipeline.outputs import OutputLock, Write, check_write_plan
from facefill.runtime import resolve_device
from facefill.train.data import FaceDataset, Sample, scan, split
from facefill.train.device_data import DeviceFaces, use_device_data
from facefill.train.loop import Callbacks, TrainingInterrupted, TrainResult, fit, loader_workers, machine_cores
from facefill.train.state import newest_good_state


def setup_distributed(device: str) -> tuple[int, int, torch.device]:
    """``(rank, world size, device)``; joins the torchrun process group when WORLD_SIZE > 1.
    ``device`` goes through :func:`facefill.runtime.resolve_device` (one-line errors)."""
    dev = resolve_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    if dev.type == "cuda" and world > 1:
        dev = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}")
        torch.cuda.set_device(dev)
    return rank, world, dev


def train_folder(
    data_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    cfg: Config,
    resume: bool = False,
    device: str = "auto",
    callbacks: Callbacks = Callbacks(),
    should_stop: Callable[[], bool] | None = None,
    max_steps: int | None = None,
    init: str | os.PathLike | None = None,
    data_on_device: str | None = None,
) -> TrainResult:
    """Train on the aligned faces under ``data_dir``, writing into ``run_dir``.

    ``resume=True`` continues from the newest good checkpoint in ``run_dir`` with its stored
    config (``cfg`` is ignored then). ``cfg.train.max_steps`` > 0 stops after that many steps
    (else after ``cfg.train.epochs``); ``max_steps`` overrides it, also on resume.
    ``data_on_device`` (``auto|on|off``) overrides ``cfg.train.data_on_device`` the same way:
    where the data lives changes no result, so a run may resume with either.
    ``device``: ``auto|cpu|cuda[:N]|mps``, resolved here (the one place for training).
    ``should_stop`` is polled between steps; when it returns True (or on Ctrl-C / SIGTERM) a
    checkpoint is saved and :class:`~facefill.train.loop.TrainingInterrupted` raised.
    ``init``: start a new run from trained weights (fine-tuning): a training state ``state_*.pt``
    (its G, G_ema and D) or a release ``.safetensors`` (G and G_ema; D starts fresh). The step
    count, optimisers and schedule start from zero with ``cfg``; the architecture must match.
    Returns the report: steps done, the release file, the skipped images and the last losses.
    """
    data_dir, run_dir = Path(data_dir), Path(run_dir)
    rank, world, dev = setup_distributed(device)
    if resume and init is not None:
        raise FacefillError("--init starts a new run and --resume continues one; pass one of them")
    state, cfg = resume_state(run_dir, callbacks.on_message) if resume else (None, cfg)
    start = initial_weights(Path(init)) if init is not None else None
    given = {"max_steps": max_steps, "data_on_device": data_on_device}
    cfg = replace(cfg, train=replace(cfg.train, **{k: v for k, v in given.items() if v is not None}))
    if start is not None:
        check_fits(start, cfg)
    samples, skipped = _find_data(data_dir, cfg, world)
    with ExitStack() as held:
        if rank == 0:  # one process writes the run folder, holding its lock till the end
            held.enter_context(_prepare_run_folder(run_dir, data_dir, cfg, init))
        train_set, val_set = _datasets(samples, cfg, dev, callbacks.on_message)
        if start is not None:
            callbacks.on_message(f"starting from the weights in {init}")
        result = fit(run_dir, cfg, train_set, val_set, dev, state, callbacks, should_stop, rank, world, init=start)
    return replace(result, skipped=skipped)


def resume_state(run_dir: Path, on_message: Callable[[str], None]) -> tuple[dict, Config]:
    """The newest good training state in ``run_dir/checkpoints`` and its own config, checked to
    fit each other (one-line CheckpointErrors otherwise)."""
    path, state = newest_good_state(run_dir / "checkpoints", on_message)
    try:
        if not isinstance(state["config"], dict):
            raise ConfigError(f"a {type(state['config']).__name__}, not a table of sections")
        cfg = from_dict(state["config"])
    except ConfigError as exc:
        raise CheckpointError(f"{path}: its stored config cannot be read ({exc})") from None
    check_resume_state(path, state, cfg)
    on_message(f"resuming from {path} (step {state['step']})")
    return state, cfg


def _find_data(data_dir: Path, cfg: Config, world: int) -> tuple[tuple[list[Sample], list[Sample]], list]:
    """``((train, val) samples, skipped files)``; FacefillError when there is too little."""
    tc = cfg.train
    if not data_dir.is_dir():
        raise FacefillError(f"{data_dir} is not a folder; pass the output folder of 'facefill align'")
    samples, skipped = scan(data_dir, lazy_backend("dlib"), eyes=(cfg.align.left_eye, cfg.align.right_eye))
    if skipped and not samples and all("'facefill mask' output" in why for _, why in skipped):
        raise FacefillError(f"{data_dir} holds 'facefill mask' outputs (masked crops, black context): train on the "
                            "'facefill align' folder they were made from")
    if not samples:
        raise FacefillError(f"no usable training images in {data_dir} ({len(skipped)} skipped); "
                            "run 'facefill align RAW_DIR ALIGNED_DIR' and train on ALIGNED_DIR")
    train_s, val_s = split(samples, data_dir, tc.val_fraction, tc.seed, Path(tc.val_list) if tc.val_list else None)
    if len(train_s) < tc.batch_size * world:
        held = f", {len(val_s)} held out for validation" if val_s else ""
        left = f", {len(skipped)} files skipped (e.g. {skipped[0][1]})" if skipped else ""
        raise FacefillError(f"{len(train_s)} training images in {data_dir}{held}{left}, but a batch needs "
                            f"{tc.batch_size * world}; add aligned images or lower the batch size (--set train.batch_size=N)")
    return (train_s, val_s), skipped


@contextmanager
def _prepare_run_folder(run_dir: Path, data_dir: Path, cfg: Config, init) -> Iterator[None]:
    """Check the run folder against what is read, create it, lock it for the run (``RUN/.facefill-lock``,
    as the batch commands lock their output folders: a second ``train --resume RUN`` while one
    runs is refused with one line) and write ``config.toml``."""
    check_write_plan([Write("run folder", run_dir)], {"data folder": data_dir, "--init": init,
                                                      "train.val_list": cfg.train.val_list or None})
    with OutputLock(run_dir, "train", {}):
        try:
            (run_dir / "config.toml").write_text(dump_toml(cfg))
        except OSError as exc:
            raise OutputError(f"cannot write into run folder {run_dir} ({exc.strerror or exc}); "
                              "choose another --out") from None
        yield


def _datasets(samples: tuple[list[Sample], list[Sample]], cfg: Config, dev: torch.device,
              on_message: Callable[[str], None]) -> tuple[FaceDataset | DeviceFaces, FaceDataset]:
    """The training set, kept on ``dev`` when ``train.data_on_device`` says so (see
    :func:`facefill.train.device_data.use_device_data`), else read per item by DataLoader
    workers; and the validation set."""
    tc, resolution = cfg.train, cfg.generator.scales[-1]
    val_set = FaceDataset(samples[1], resolution, cfg.mask, False, tc.seed)
    if use_device_data(tc.data_on_device, len(samples[0]), resolution, tc.flip, cfg.augment, dev, tc.data_budget_mb):
        train_set = DeviceFaces(samples[0], resolution, cfg.mask, tc.flip, tc.seed, cfg.augment, dev)
        on_message(f"training data on {dev}: {len(train_set)} faces, {train_set.nbytes() / 2**20:.0f} MiB")
        return train_set, val_set
    workers = loader_workers(tc.num_workers)
    if workers != tc.num_workers:
        on_message(f"DataLoader workers: {workers} (train.num_workers = {tc.num_workers}; this machine gives "
                   f"{machine_cores()} cores, and workers on 2 or fewer slow the step down)")
    return FaceDataset(samples[0], resolution, cfg.mask, tc.flip, tc.seed, augment=cfg.augment), val_set


def initial_weights(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """``{"G": .., "G_ema": .., ["D": ..]}`` state dicts from a release ``.safetensors`` (G only,
    used for both) or a training state (``torch.load(weights_only=True)``); a one-line
    CheckpointError naming the file otherwise."""
    from facefill.models.generator import split_legacy_buffers
    from facefill.train.state import load_state

    if not path.is_file():
        raise CheckpointError(f"--init {path}: no such file; pass a generator.safetensors or a "
                              "checkpoints/state_*.pt written by 'facefill train'")
    if path.suffix == ".safetensors":
        from facefill.models.release import load_generator

        G, _ = load_generator(path)
        weights = {k: v.detach().clone() for k, v in G.state_dict().items()}
        return {"G": weights, "G_ema": weights}
    state = load_state(path)
    if "G" not in state or "G_ema" not in state:
        raise CheckpointError(f"--init {path}: a training state without generator weights")
    out = {"G": split_legacy_buffers(state["G"])[0], "G_ema": split_legacy_buffers(state["G_ema"])[0]}
    if "D" in state:
        out["D"] = state["D"]
    return out


def _nets(cfg: Config) -> dict[str, torch.nn.Module]:
    from facefill.models import build_discriminator, build_generator

    with torch.device("meta"):
        return {"G": build_generator(cfg), "D": build_discriminator(cfg)}


def _misfit(state, net: torch.nn.Module) -> str | None:
    """Why ``state`` is not a state dict of ``net``'s names and shapes (None when it is)."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        return "not a table of tensors"
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    wrong = sorted(set(expected) ^ set(got)) or [k for k in expected if expected[k] != got[k]]
    if not wrong:
        return None
    k = wrong[0]
    return f"{k}: {got.get(k, 'missing')} in the file, {expected.get(k, 'none')} here"


def check_fits(weights: dict[str, dict[str, torch.Tensor]], cfg: Config) -> None:
    """A one-line CheckpointError unless every state dict in ``weights`` (see
    :func:`initial_weights`) has exactly the names and shapes of ``cfg``'s G or D."""
    nets = _nets(cfg)
    for name, state in weights.items():
        why = _misfit(state, nets["D" if name == "D" else "G"])
        if why:
            raise CheckpointError(f"--init weights ({name}) do not fit this config's architecture ({why}); use the "
                                  "preset and the generator/discriminator settings they were trained with")


def _optimizer_misfit(state, net: torch.nn.Module) -> str | None:
    """Why ``state`` is not an Adam state dict over ``net``'s parameters (None when it is)."""
    shapes = [tuple(p.shape) for p in net.parameters()]
    try:
        ids = [i for group in state["param_groups"] for i in group["params"]]
        if sorted(ids) != list(range(len(shapes))):
            return f"{len(ids)} parameters, the model has {len(shapes)}"
        for i, slots in state["state"].items():
            for slot, value in slots.items():
                if isinstance(value, torch.Tensor) and value.dim() > 0 and tuple(value.shape) != shapes[ids.index(i)]:
                    return f"parameter {i} {slot}: {tuple(value.shape)} in the file, {shapes[ids.index(i)]} here"
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:
        return f"malformed ({exc.__class__.__name__}: {str(exc)[:80]})"
    return None


def check_resume_state(path: Path, state: dict, cfg: Config) -> None:
    """A one-line CheckpointError unless the training state ``state`` (read from ``path``) fits its
    own config ``cfg``: G, G_ema and D of its shapes, Adam states over their parameters, whole
    numbers for step/epoch/pos, and RNG states that can be set. Checked before any work, so a
    state that loads but does not fit never ends in a traceback mid-run."""
    from facefill.train.state import rng_state, set_rng_state

    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"{path} does not fit its own config ({what}); it was not written by this "
                               "run: move it out of checkpoints/ to resume from an older state")

    for key in ("step", "epoch", "pos"):
        if not isinstance(state[key], int) or isinstance(state[key], bool) or state[key] < 0:
            raise bad(f"{key} is {state[key]!r}, not a whole number >= 0")
    from facefill.models.generator import LEGACY_BUFFERS

    nets = _nets(cfg)
    for name in ("G", "G_ema", "D"):
        weights = state[name]
        if name != "D" and isinstance(weights, dict):  # facefill 0.1 kept stage/alpha buffers in G
            weights = {k: v for k, v in weights.items() if k not in LEGACY_BUFFERS}
        why = _misfit(weights, nets["D" if name == "D" else "G"])
        if why:
            raise bad(f"{name}: {why}")
    for name, net in (("opt_g", nets["G"]), ("opt_d", nets["D"])):
        why = _optimizer_misfit(state[name], net)
        if why:
            raise bad(f"{name}: {why}")
    current = rng_state()
    try:
        set_rng_state(state["rng"])
    except Exception as exc:  # any malformed piece: a wrong length, type or dtype
        raise bad(f"rng: {exc.__class__.__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''}") from None
    finally:
        set_rng_state(current)


__all__ = ["Callbacks", "TrainResult", "TrainingInterrupted", "train_folder", "resume_state", "initial_weights",
           "check_fits", "check_resume_state", "setup_distributed"]
