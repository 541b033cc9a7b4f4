"""Images/s per metric (match, ssim, fid features, and pieapp/lpips where their weights exist).

    python benchmarks/evaluate.py [--n 64] [--batch 32] [--threads 2]
Writes benchmarks/results/evaluate.{json,md}; adds CUDA rows where a GPU exists.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import device_name, timeit, write  # noqa: E402

from facefill.metrics.ssim import SSIM_SETTINGS
from facefill.pipeline.evaluate import check_weights  # noqa: E402
from facefill.errors import WeightsNotFoundError  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import piq

    from facefill.metrics.inception import load_inception
    from facefill.models.embedders import FaceEmbedder

    rows = []
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        x = torch.rand(args.batch, 3, 128, 128, device=device)
        y = torch.rand_like(x)
        emb = FaceEmbedder().to(device)
        inception = load_inception().to(device)
        jobs = {
            "ssim": lambda: piq.ssim(x, y, reduction="none", **SSIM_SETTINGS),
            "match (2 embeddings per pair)": lambda: emb(torch.cat([x, y]) * 2 - 1),
            "fid features (both sides)": lambda: inception(torch.cat([x, y])),
        }
        for metric, cls in (("pieapp", lambda: piq.PieAPP(reduction="none")), ("lpips", lambda: piq.LPIPS(reduction="none"))):
            try:
                check_weights(metric)
            except WeightsNotFoundError:
                rows.append({"metric": metric, "device": device_name(device), "pairs_per_s": "weights not on this machine"})
                continue
            net = cls().to(device)
            jobs[metric] = lambda net=net: net(x, y)
        for name, fn in jobs.items():
            with torch.no_grad():
                sec, _ = timeit(fn, device, min_time=2.0)
            rows.append({"metric": name, "device": device_name(device), "pairs_per_s": round(args.batch / sec, 1)})
            print(rows[-1], flush=True)
    print(write("evaluate", rows, ["metric", "device", "pairs_per_s"]))


if __name__ == "__main__":
    main()
