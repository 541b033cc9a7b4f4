"""Training throughput (img/s) and peak memory per preset: one full step (D + G, all four losses).

    python benchmarks/train_step.py [--presets tiny small base128] [--batch 8] [--threads 2]
Writes benchmarks/results/train_step.{json,md}. Adds CUDA rows (bf16 autocast) where a GPU exists.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import device_name, peak_memory_mb, timeit, write  # noqa: E402

from facefill.config import get_preset  # noqa: E402
from facefill.models import build_discriminator, build_generator  # noqa: E402
from facefill.models.generator import pyramid  # noqa: E402
from facefill.train.loop import build_losses  # noqa: E402
from facefill.train.losses import d_loss  # noqa: E402


def step_fn(preset: str, batch: int, device: str):
    cfg = get_preset(preset)
    G, D = build_generator(cfg).to(device), build_discriminator(cfg).to(device)
    objective = build_losses(cfg, torch.device(device))
    opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    real = torch.rand(batch, 3, 128, 128, device=device) * 2 - 1
    masked = real.clone()
    masked[..., :40, :] = -1
    lm = torch.rand(batch, 68, 2, device=device) * 40 + 44
    amp = device.startswith("cuda")

    def step():
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=amp):
            outs = G(masked)
            reals = pyramid(real, tuple(outs))
            r, f = D(reals, masked), D({n: o.detach() for n, o in outs.items()}, masked)
            ld = sum(d_loss(r[n].float(), f[n].float(), cfg.loss.gan) for n in outs)
        opt_d.zero_grad()
        ld.backward()
        opt_d.step()
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=amp):
            f = D(outs, masked)
        lg, _ = objective({n: o.float() for n, o in outs.items()}, real, lm, {n: v.float() for n, v in f.items()})
        opt_g.zero_grad()
        lg.backward()
        opt_g.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["tiny", "small", "base128"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        for preset in args.presets:
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            sec, n = timeit(step_fn(preset, args.batch, device), device, min_time=3.0)
            rows.append({"preset": preset, "device": device_name(device), "batch": args.batch,
                         "img_per_s": round(args.batch / sec, 2), "peak_mem_mb": round(peak_memory_mb(device)),
                         "steps_timed": n})
            print(rows[-1], flush=True)
    print(write("train_step", rows, ["preset", "device", "batch", "img_per_s", "peak_mem_mb", "steps_timed"]))


if __name__ == "__main__":
    main()
