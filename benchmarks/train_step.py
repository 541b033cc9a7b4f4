"""Training throughput (img/s) and peak memory per preset and loss mix: one full step (D + G, EMA).

    python benchmarks/train_step.py [--presets tiny small base128] [--losses all no-id recipe finetune]
        [--batch 8] [--threads 2] [--devices cpu cuda]
Loss mixes: ``all`` = the preset's four terms (identity and perceptual from 32 px), ``no-id`` =
without the identity term, ``recipe`` = the default model's phase 1 (no identity, perceptual from
64 px), ``finetune`` = its phase 2 (as ``recipe`` plus the SSIM term). Writes
benchmarks/results/train_step.{json,md}. Adds CUDA rows (bf16 autocast) where a GPU exists.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses as dc
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import device_name, peak_memory_mb, timeit, write  # noqa: E402

from facefill.config import get_preset  # noqa: E402
from facefill.losses import build_generator_loss  # noqa: E402
from facefill.models import build_discriminator, build_generator  # noqa: E402
from facefill.train.step import Nets, train_step  # noqa: E402


#: Loss-weight overrides per mix (see the module docstring).
LOSS_MIXES = {
    "all": {},
    "no-id": {"id": 0.0},
    "recipe": {"id": 0.0, "feature_min_scale": 64},
    "finetune": {"id": 0.0, "feature_min_scale": 64, "pixel": 1.0, "ssim": 40.0},
}


def step_fn(preset: str, batch: int, device: str, losses: str = "all"):
    """One call = :func:`facefill.train.step.train_step` (D step, G step, EMA) as training runs it."""
    cfg = get_preset(preset)
    cfg = dc.replace(cfg, loss=dc.replace(cfg.loss, **LOSS_MIXES[losses]))
    G, D = build_generator(cfg).to(device), build_discriminator(cfg).to(device)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    nets = Nets(G, D, G_ema, torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters()))
    objective = build_generator_loss(cfg, device)
    real = torch.rand(batch, 3, 128, 128, device=device) * 2 - 1
    masked = real.clone()
    masked[..., :40, :] = -1
    mask = torch.ones(batch, 1, 128, 128, device=device)
    mask[..., :40, :] = 0
    data = {"real": real, "masked": masked, "landmarks": torch.rand(batch, 68, 2, device=device) * 40 + 44,
            "valid": torch.ones(batch, 1, 128, 128, device=device), "mask": mask}
    count = [0]

    def step():
        train_step(nets, objective, data, count[0], gan=cfg.loss.gan, precision=cfg.train.precision)
        count[0] += 1

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["tiny", "small", "base128"])
    ap.add_argument("--losses", nargs="+", default=["all"], choices=sorted(LOSS_MIXES))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--devices", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for device in args.devices:
        for preset in args.presets:
            for losses in args.losses:
                if device.startswith("cuda"):
                    torch.cuda.reset_peak_memory_stats()
                sec, n = timeit(step_fn(preset, args.batch, device, losses), device, min_time=3.0)
                rows.append({"preset": preset, "losses": losses, "device": device_name(device), "batch": args.batch,
                             "img_per_s": round(args.batch / sec, 2), "peak_mem_mb": round(peak_memory_mb(device)),
                             "steps_timed": n})
                print(rows[-1], flush=True)
    print(write("train_step", rows, ["preset", "losses", "device", "batch", "img_per_s", "peak_mem_mb", "steps_timed"]))


if __name__ == "__main__":
    main()
