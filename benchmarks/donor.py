"""Donor context against the default model and classical inpainting, on faces none of them saw.

    tools/fetch_faces.sh FACES && facefill align FACES/celeba ALIGNED
    python benchmarks/donor.py ALIGNED [--val-list facefill/data/splits/celeba_val.txt] [--first-val 900]

The donor bank is ALIGNED's files numbered below ``--first-val`` (CelebA 000001-000899, the
default model's own training faces); the validation faces are those in ``--val-list``
(000900-000999: never a donor, never trained on). Every method gets the same masked input
(``facefill mask`` defaults) and keeps the face bit for bit. Per method:

* FID and KID (x 10^3, mean +- std over 100 subsets) against the validation photos, each output
  given its real photo's padding (align's ``.valid.png``) so that padding does not count;
* seam ratio (median, 90th percentile) and forehead step (90th percentile of the absolute
  value), :mod:`facefill.metrics.seam`;
* context SSIM and L1 (pixels outside the face mask and inside the photo);
* end-to-end faces/s of ``hallucinate_folder`` (index cached), threads as set, and the CPU time
  per face (all threads): wall time depends on what else the machine runs, CPU time much less.

Rows: ``real others`` (99 bank photos against the validation photos: the floor at this N),
``donor``, ``donor, other people`` (donors closer than 0.5 in descriptor distance, very likely
the same person, excluded), ``model`` (shipped default), ``ns`` (OpenCV Navier-Stokes).
``--bank-scale K`` also times building the index of a bank of K links to every donor (a bank of
10,000+ entries from the ~865 faces we have) in a fresh cache, and reports peak memory, in
results/donor_bank.{json,md}. Writes benchmarks/results/donor.{json,md} (``--methods`` with no
names skips them). Contact sheets: tools/donor_sheet.py.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import device_name, write  # noqa: E402


def link_subset(src: Path, dst: Path, names: list[str]) -> None:
    """Symlink ``names`` (and their sidecars) from src into dst."""
    dst.mkdir(parents=True, exist_ok=True)
    for n in names:
        stem = Path(n).stem
        for f in src.glob(stem + ".*"):
            (dst / f.name).symlink_to(f.resolve())


def features(images: list[np.ndarray], inception) -> torch.Tensor:
    from facefill.data.tensors import from_uint8

    out = []
    with torch.no_grad():
        for i in range(0, len(images), 32):
            out.append(inception(from_uint8(images[i:i + 32], signed=False)))
    return torch.cat(out)


def score(name: str, outputs: dict[str, np.ndarray], reals: dict, masks: dict, valids: dict, real_feats, inception,
          seconds: float | None) -> dict:
    from facefill.metrics.context import context_l1, context_ssim
    from facefill.metrics.fid import feature_stats, frechet_distance
    from facefill.metrics.kid import kid
    from facefill.metrics.seam import forehead_step, seam_ratio
    from facefill.data.tensors import from_uint8

    keys = sorted(outputs)
    padded = [np.where(valids[k][..., None] > 0.5, outputs[k], reals[k]) if valids[k] is not None else outputs[k]
              for k in keys]
    f = features(padded, inception)
    fid = frechet_distance(*feature_stats(f), *feature_stats(real_feats))
    kid_mean, kid_std = kid(f, real_feats)
    seams = np.array([seam_ratio(outputs[k], reals[k], masks[k], valids[k]) for k in keys])
    steps = np.abs([forehead_step(outputs[k], reals[k], masks[k], valids[k]) for k in keys])
    x = from_uint8([outputs[k] for k in keys], signed=False)
    y = from_uint8([reals[k] for k in keys], signed=False)
    fm = torch.from_numpy(np.stack([masks[k] for k in keys]))[:, None]
    vm = torch.from_numpy(np.stack([valids[k] if valids[k] is not None else np.ones_like(masks[k]) for k in keys]))[:, None]
    ctx = (1 - fm) * vm  # context pixels inside the photo
    ssim_c = context_ssim(x, y, 1 - ctx).mean().item()
    l1_c = context_l1(x, y, 1 - ctx).mean().item()
    return {"method": name, "n": len(keys), "fid": round(fid, 1), "kid_x1e3": f"{kid_mean * 1e3:.1f} ± {kid_std * 1e3:.1f}",
            "kid": kid_mean, "seam_median": round(float(np.nanmedian(seams)), 2),
            "seam_p90": round(float(np.nanpercentile(seams, 90)), 2),
            "forehead_p90": round(float(np.nanpercentile(steps, 90)), 1),
            "ssim_context": round(ssim_c, 3), "l1_context": round(l1_c, 3),
            "faces_per_s": round(len(keys) / seconds, 1) if seconds else ""}


def read_folder(folder: Path, keys: list[str]) -> dict[str, np.ndarray]:
    from facefill.data.io import read_image

    return {k: read_image(folder / f"{k}.png") for k in keys}


def _prepare(aligned: Path, work: Path, val_list: Path, first_val: str) -> tuple[list[str], list[str], Path, Path]:
    """The validation faces (listed in ``val_list``) and the bank (the faces before ``first_val``),
    linked into ``work/val`` and ``work/bank``, the validation faces masked into ``work/masked``.
    Returns the validation keys, the bank's sidecar names, and the two folders."""
    from facefill.pipeline.mask import mask_folder

    val_names = [n.strip() for n in val_list.read_text().split() if (aligned / n.strip()).is_file()]
    bank_names = sorted(p.name for p in aligned.glob("*.json") if p.stem < first_val)
    val, bank = work / "val", work / "bank"
    if not val.exists():
        link_subset(aligned, val, val_names)
        link_subset(aligned, bank, [n.replace(".json", ".png") for n in bank_names])
        mask_folder(val, work / "masked")
    return [Path(n).stem for n in val_names], bank_names, val, bank


def _run_method(method: str, work: Path, bank: Path, keys: list[str], inputs: dict) -> dict:
    """Hallucinate the masked validation faces with ``method`` (``donor``, ``donor, other people``,
    ``model``, a baseline) and score them; ``inputs``: reals, masks, valids, real_feats, inception."""
    from facefill.donor import DonorSettings
    from facefill.fill.donor import DonorFill
    from facefill.fill.registry import make_filler
    from facefill.pipeline.hallucinate import HallucinateOptions, hallucinate_folder

    out = work / method.replace(", ", "-").replace(" ", "-")
    shutil.rmtree(out, ignore_errors=True)
    if method.startswith("donor"):
        opts = HallucinateOptions(method="donor", donors=bank, batch_size=32)
        filler = DonorFill(bank, DonorSettings(duplicate=0.5 if "other" in method else 0.25)).prepare("cpu")
    else:
        opts = HallucinateOptions(method=method, batch_size=32)
        filler = make_filler(opts).prepare("cpu")  # weights loaded before the clock starts
    t0, c0 = time.perf_counter(), time.process_time()
    report = hallucinate_folder(work / "masked", out, opts, filler=filler)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert not report.failed, report.failed
    row = score(method, read_folder(out, keys), inputs["reals"], inputs["masks"], inputs["valids"],
                inputs["real_feats"], inputs["inception"], seconds)
    row["cpu_ms_per_face"] = round(1000 * cpu / len(keys), 1)
    return row


def _bank_scale_row(bank: Path, work: Path, scale: int) -> dict:
    """Index a bank of ``scale`` linked copies of ``bank`` into a fresh cache: build and cached
    load times, peak memory, cache size."""
    from facefill.donor.index import load_index

    big = work / f"bank_x{scale}"
    if not big.exists():
        big.mkdir()
        for c in range(scale):
            for f in bank.iterdir():
                (big / f"c{c:02d}_{f.name}").symlink_to(f.resolve())
    cache = Path(tempfile.mkdtemp(prefix="facefill-donor-cache-"))
    t0 = time.perf_counter()
    index = load_index(big, cache=cache)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    load_index(big, cache=cache)
    cached = time.perf_counter() - t0
    row = {"donors": len(index), "build_s": round(build, 1), "cached_s": round(cached, 2),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
           "cache_mb": round(sum(p.stat().st_size for p in cache.iterdir()) / 2**20, 1),
           "device": device_name("cpu")}
    shutil.rmtree(cache)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("aligned", type=Path)
    ap.add_argument("--val-list", type=Path, default=Path("facefill/data/splits/celeba_val.txt"))
    ap.add_argument("--first-val", default="000900")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--methods", nargs="*", default=["real others", "donor", "donor, other people", "model", "ns"])
    ap.add_argument("--bank-scale", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None, help="keep the outputs here (default: a temporary folder)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import cv2

    from facefill.align.sidecar import read_valid
    from facefill.metrics.inception import load_inception

    work = args.work or Path(tempfile.mkdtemp(prefix="facefill-donor-bench-"))
    keys, bank_names, val, bank = _prepare(args.aligned, work, args.val_list, args.first_val)
    inputs = {"reals": read_folder(val, keys),
              "masks": {k: (np.asarray(cv2.imread(str(work / "masked" / f"{k}.mask.png"), 0)) > 127).astype(np.float32)
                        for k in keys},
              "valids": {k: read_valid(val / f"{k}.png", 128) for k in keys},
              "inception": load_inception()}
    inputs["real_feats"] = features([inputs["reals"][k] for k in keys], inputs["inception"])
    rows = []
    for method in args.methods:
        if method == "real others":
            others = read_folder(bank, [Path(n).stem for n in bank_names[-len(keys):]])
            rows.append(score(method, dict(zip(keys, others.values())), inputs["reals"], inputs["masks"],
                              {k: None for k in keys}, inputs["real_feats"], inputs["inception"], None))
        else:
            rows.append(_run_method(method, work, bank, keys, inputs))
        print(json.dumps(rows[-1]), flush=True)
    if args.bank_scale:
        bank_row = _bank_scale_row(bank, work, args.bank_scale)
        print(json.dumps(bank_row), flush=True)
        print(write("donor_bank", [bank_row], ["device", "donors", "build_s", "cached_s", "peak_rss_mb", "cache_mb"]))
    for r in rows:
        r["device"] = device_name("cpu")
    if rows:
        print(write("donor", rows, ["method", "n", "fid", "kid_x1e3", "seam_median", "seam_p90", "forehead_p90",
                                    "ssim_context", "l1_context", "faces_per_s", "cpu_ms_per_face"]))
    if args.work is None:
        shutil.rmtree(work)

if __name__ == "__main__":
    main()
