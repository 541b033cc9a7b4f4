"""Training throughput (img/s) and peak memory per preset and loss mix: one full step (D + G, EMA).

    python benchmarks/train_step.py [--presets tiny small base128] [--losses all no-id recipe finetune]
        [--batch 8] [--threads 2] [--devices cpu cuda]
        [--options default fused_adam channels_last bf16 compile]   # -> results/train_step_options.*
    python benchmarks/train_step.py --data [--batch 8] [--faces 64]   # -> results/train_step_data.*
Loss mixes: ``all`` = the preset's four terms (identity and perceptual from 32 px), ``no-id`` =
without the identity term, ``recipe`` = the default model's phase 1 (no identity, perceptual from
64 px), ``finetune`` = its phase 2 (as ``recipe`` plus the SSIM term). Writes
benchmarks/results/train_step.{json,md}. Adds CUDA rows (bf16 autocast) where a GPU exists.

``--options``: one row per training option (``train.fused_adam = on``, ``train.channels_last``,
``train.precision = bf16``, ``train.compile``; ``default`` = none of them), each timed alone.
``--data``: milliseconds to build one batch from a folder of ``--faces`` synthetic 128 px faces,
through the DataLoader (per item: decode, flip, augment, mask; 0 and 2 workers) and from the
device-resident set (:class:`facefill.train.device_data.DeviceFaces`), without and with the
similarity warp and colour jitter.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses as dc
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import device_name, peak_memory_mb, timeit, write  # noqa: E402

from facefill.config import get_preset  # noqa: E402
from facefill.losses import build_generator_loss  # noqa: E402
from facefill.models import build_discriminator, build_generator  # noqa: E402
from facefill.train.loop import make_optimizer  # noqa: E402
from facefill.train.step import Nets, train_step  # noqa: E402


#: Loss-weight overrides per mix (see the module docstring).
LOSS_MIXES = {
    "all": {},
    "no-id": {"id": 0.0},
    "recipe": {"id": 0.0, "feature_min_scale": 64},
    "finetune": {"id": 0.0, "feature_min_scale": 64, "pixel": 1.0, "ssim": 40.0},
}


#: Training options per ``--options`` row: ``train.*`` overrides.
OPTIONS = {
    "default": {},
    "fused_adam": {"fused_adam": "on"},
    "channels_last": {"channels_last": True},
    "bf16": {"precision": "bf16"},
    "compile": {"compile": True},
}


def step_fn(preset: str, batch: int, device: str, losses: str = "all", option: str | None = None):
    """One call = :func:`facefill.train.step.train_step` (D step, G step, EMA) as training runs it.
    ``option``: a key of :data:`OPTIONS`, built the way :mod:`facefill.train.loop` builds it
    (None: the nets as before those options existed, torch's default Adam)."""
    cfg = get_preset(preset)
    cfg = dc.replace(cfg, loss=dc.replace(cfg.loss, **LOSS_MIXES[losses]),
                     train=dc.replace(get_preset(preset).train, **OPTIONS[option or "default"]))
    tc, dev = cfg.train, torch.device(device)
    layout = torch.channels_last if tc.channels_last else torch.contiguous_format
    G = build_generator(cfg).to(device, memory_format=layout)
    D = build_discriminator(cfg).to(device, memory_format=layout)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    if option is None:
        opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    else:
        opt_g, opt_d = make_optimizer(G, tc.lr_g, tc, dev), make_optimizer(D, tc.lr_d, tc, dev)
    nets = Nets(torch.compile(G) if tc.compile else G, D, G_ema, opt_g, opt_d)
    objective = build_generator_loss(cfg, device)
    real = torch.rand(batch, 3, 128, 128, device=device) * 2 - 1
    masked = real.clone()
    masked[..., :40, :] = -1
    mask = torch.ones(batch, 1, 128, 128, device=device)
    mask[..., :40, :] = 0
    data = {"real": real, "masked": masked, "landmarks": torch.rand(batch, 68, 2, device=device) * 40 + 44,
            "valid": torch.ones(batch, 1, 128, 128, device=device), "mask": mask}
    if tc.channels_last:
        data = {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v for k, v in data.items()}
    count = [0]

    def step():
        train_step(nets, objective, data, count[0], gan=cfg.loss.gan, precision=tc.precision)
        count[0] += 1

    return step


def synthetic_faces(folder: Path, n: int, size: int = 128) -> list:
    """``n`` random ``size`` px photos in ``folder`` as training samples, each with the same
    plausible landmarks (the timing does not depend on the face)."""
    from facefill.data.io import write_image
    from facefill.train.data import Sample

    rng = np.random.default_rng(0)
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    lm = np.stack([64 + 30 * np.cos(t), 70 + 36 * np.sin(t)], 1).astype(np.float32) * size / 128
    samples = []
    for i in range(n):
        path = write_image(folder / f"face_{i:04d}.png", rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        samples.append(Sample(path, lm, size))
    return samples


def data_rows(batch: int, n_faces: int, device: str) -> list[dict]:
    """Milliseconds per batch: DataLoader (0 and 2 workers) vs the device-resident set."""
    from torch.utils.data import DataLoader

    from facefill.config import AugmentConfig, MaskConfig
    from facefill.train.data import FaceDataset
    from facefill.train.device_data import DeviceFaces

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        samples = synthetic_faces(Path(tmp), n_faces)
        order = list(range(n_faces))
        for aug_name, aug in (("flip", None), ("flip+warp+color", AugmentConfig(geometric=True, color=True))):
            per_item = FaceDataset(samples, 128, MaskConfig(), True, 0, augment=aug)
            for workers in (0, 2):
                def loader_epoch() -> None:
                    for b in DataLoader(per_item, batch_size=batch, drop_last=True, num_workers=workers):
                        {k: v.to(device) for k, v in b.items()}
                rows.append(_data_row(f"dataloader, {workers} workers", aug_name, loader_epoch, device, batch, n_faces))
            on_device = DeviceFaces(samples, 128, MaskConfig(), True, 0, augment=aug, device=device)

            def device_epoch() -> None:
                for _ in on_device.batches(order, batch):
                    pass
            rows.append(_data_row("on the device", aug_name, device_epoch, device, batch, n_faces))
    return rows


def _data_row(path: str, augment: str, epoch_fn, device: str, batch: int, n_faces: int) -> dict:
    sec, n = timeit(epoch_fn, device, min_time=2.0)
    row = {"data": path, "augment": augment, "device": device_name(device), "batch": batch,
           "ms_per_batch": round(1000 * sec / (n_faces // batch), 2), "epochs_timed": n}
    print(row, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["tiny", "small", "base128"])
    ap.add_argument("--losses", nargs="+", default=["all"], choices=sorted(LOSS_MIXES))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--devices", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    ap.add_argument("--options", nargs="+", choices=sorted(OPTIONS), help="one row per training option")
    ap.add_argument("--data", action="store_true", help="time building batches instead of steps")
    ap.add_argument("--faces", type=int, default=64, help="faces in the --data folder")
    ap.add_argument("--min-time", type=float, default=3.0, help="seconds to time each row at least")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.data:
        rows = [r for device in args.devices for r in data_rows(args.batch, args.faces, device)]
        print(write("train_step_data", rows, ["data", "augment", "device", "batch", "ms_per_batch", "epochs_timed"]))
        return
    rows = []
    for device in args.devices:
        for preset in args.presets:
            for losses in args.losses:
                for option in args.options or [None]:
                    if device.startswith("cuda"):
                        torch.cuda.reset_peak_memory_stats()
                    sec, n = timeit(step_fn(preset, args.batch, device, losses, option), device,
                                    min_time=args.min_time, warmup=3 if option == "compile" else 1)
                    rows.append({"preset": preset, "losses": losses, "option": option or "", "device": device_name(device),
                                 "batch": args.batch, "img_per_s": round(args.batch / sec, 2),
                                 "peak_mem_mb": round(peak_memory_mb(device)), "steps_timed": n})
                    print(rows[-1], flush=True)
    columns = ["preset", "losses", "device", "batch", "img_per_s", "peak_mem_mb", "steps_timed"]
    if args.options:
        print(write("train_step_options", rows, columns[:2] + ["option"] + columns[2:]))
    else:
        print(write("train_step", rows, columns))


if __name__ == "__main__":
    main()
