"""End-to-end ``hallucinate`` throughput (read, mask, forward, keep-face compose, write PNG) per
preset, batch 1 and 256, fp32 and bf16, CPU (and GPU where available), next to the generator's
forward pass alone on the same batch size in the same session (the ceiling; ``ratio`` = end to
end / forward only).

    python benchmarks/hallucinate.py [--presets tiny small base128] [--n 256] [--threads 2]
                                     [--batches 1 256] [--precisions fp32 bf16]
Writes benchmarks/results/hallucinate.{json,md}. Models are randomly initialised (speed does not
depend on the weights); inputs are the example photos, aligned and masked once.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, device_name, peak_memory_mb, write  # noqa: E402

from facefill.pipeline.align import align_folder  # noqa: E402
from facefill.align.landmarks import get_backend  # noqa: E402
from facefill.config import get_preset  # noqa: E402
from facefill.fill.model import ModelFill  # noqa: E402
from facefill.pipeline.hallucinate import HallucinateOptions, hallucinate_folder  # noqa: E402
from facefill.pipeline.mask import mask_folder  # noqa: E402
from facefill.models import build_generator  # noqa: E402


def forward_only(G: torch.nn.Module, batch: int, n: int, device: str) -> float:
    """The generator's forward pass alone on ``n`` random inputs in batches of ``batch`` (img/s,
    fp32, same session): the ceiling the end-to-end run is compared with."""
    x = torch.rand(min(batch, n), 3, 128, 128, device=device) * 2 - 1
    with torch.no_grad():
        G(x[:1])
        sync(device)
        t = time.perf_counter()
        for _ in range(max(1, n // len(x))):
            G(x)
        sync(device)
    return max(1, n // len(x)) * len(x) / (time.perf_counter() - t)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["tiny", "small", "base128"])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 256])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp())
    try:
        align_folder(Path("examples/raw"), work / "aligned", get_backend("dlib"))
        mask_folder(work / "aligned", work / "masked1")
        src = work / "masked"
        src.mkdir()
        base = sorted(p for p in (work / "masked1").glob("*.png") if not p.name.endswith(".mask.png"))
        for i in range(args.n):
            p = base[i % len(base)]
            shutil.copy(p, src / f"{i:04d}.png")
            shutil.copy(p.with_name(p.stem + ".mask.png"), src / f"{i:04d}.mask.png")
        rows = []
        for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
            for preset in args.presets:
                cfg = get_preset(preset)
                G = build_generator(cfg).to(device).eval()
                for batch in args.batches:
                    for precision in args.precisions:
                        n = min(args.n, 32) if batch == 1 else args.n
                        files = sorted(src.glob("*.png"))
                        sub = work / f"in_{n}"
                        if not sub.exists():
                            sub.mkdir()
                            for f in files:
                                if not f.name.endswith(".mask.png") and int(f.stem) < n:
                                    shutil.copy(f, sub / f.name)
                                    shutil.copy(f.with_name(f.stem + ".mask.png"), sub / f"{f.stem}.mask.png")
                        out = work / "out"
                        shutil.rmtree(out, ignore_errors=True)
                        opts = HallucinateOptions(batch_size=batch, precision=precision, overwrite=True)
                        if device == "cuda":
                            torch.cuda.reset_peak_memory_stats()
                        t = time.perf_counter()
                        report = hallucinate_folder(sub, out, opts, device, filler=ModelFill(G=G, cfg=cfg))
                        dt = time.perf_counter() - t
                        fwd = forward_only(G, batch, n, device) if precision == "fp32" else None
                        rows.append({"preset": preset, "device": device_name(device), "batch": batch, "dtype": precision,
                                     "img_per_s": round(len(report.done) / dt, 1),
                                     "forward_only_img_per_s": round(fwd, 1) if fwd else "",
                                     "ratio": round(len(report.done) / dt / fwd, 2) if fwd else "",
                                     "peak_mem_MiB": round(peak_memory_mb(device))})
                        print(rows[-1], flush=True)
        print(write("hallucinate", rows, ["preset", "device", "batch", "dtype", "img_per_s",
                                          "forward_only_img_per_s", "ratio", "peak_mem_MiB"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
