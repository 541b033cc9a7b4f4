"""Forward throughput (img/s) and peak memory of the cascaded generator, per preset and batch.

    python benchmarks/generator.py [--presets tiny small base128 paper] [--batches 1 64]
                                   [--devices cpu cuda] [--threads N]

Prints a Markdown table and writes benchmarks/results/generator.{json,md}. CPU peak memory is
the process's peak RSS (cumulative over the run, so read it per preset in separate runs for
exact figures); CUDA peak memory is reset per row.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import device_name, peak_memory_mb, timeit, write  # noqa: E402

from facefill.config import get_preset  # noqa: E402
from facefill.models import build_generator  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["tiny", "small", "base128", "paper"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 64])
    ap.add_argument("--devices", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for device in args.devices:
        for preset in args.presets:
            cfg = get_preset(preset)
            G = build_generator(cfg).to(device).eval()
            params = sum(p.numel() for p in G.parameters())
            for batch in args.batches:
                if device == "cpu" and preset == "paper" and batch > 8:
                    continue  # minutes per call on a laptop-class CPU; not informative
                x = torch.rand(batch, 3, 128, 128, device=device) * 2 - 1
                if device.startswith("cuda"):
                    torch.cuda.reset_peak_memory_stats()
                dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32

                def step():
                    with torch.inference_mode(), torch.autocast(device.split(":")[0], dtype=dtype, enabled=args.dtype == "bf16"):
                        G(x)

                sec, n = timeit(step, device)
                row = {"device": device_name(device), "preset": preset, "params_M": round(params / 1e6, 2),
                       "batch": batch, "dtype": args.dtype, "img_per_s": round(batch / sec, 1),
                       "ms_per_batch": round(sec * 1e3, 1), "peak_mem_MiB": round(peak_memory_mb(device)), "calls": n}
                rows.append(row)
                print(row, flush=True)
    print(write("generator", rows, ["device", "preset", "params_M", "batch", "dtype", "img_per_s", "ms_per_batch", "peak_mem_MiB"]))


if __name__ == "__main__":
    main()
