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
``--bank-scale N [--bank-add A]`` times the bank index at scale, in results/donor_bank.{json,md}:
the base bank (the faces before ``--first-val``) described for real; a bank of N links to its
files (every face about N/865 times) recognised unchanged, its cached rows tiled from the base
index because describing N faces does not fit on 2 shared cores (the read-back path, checks
and memory-mapping are the same as for a described bank); every copy's rows but the first moved
by noise as large as a real synthetic donor's rows differ from its original's (measured on 48
described for the purpose), so that choice sees N different donors, not 58 copies of each
(``--bank-real``: N synthetic donor files written and described for real instead); A
synthetic donors (base faces flipped, shifted and colour-jittered) added and indexed, counting
the files read; donor choice in ms per
face at each size; peak resident memory per step (its high-water mark reset before it; the
real bank's describe is `facefill bank index` in a process of its own) and of the whole process; ``hallucinate --method donor`` end to end (warm, the validation
faces masked on the fly) with the base bank and with the scaled one. ``--work DIR`` keeps the banks and the cache for a rerun. Writes
benchmarks/results/donor.{json,md} for the methods (``--methods`` with no
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
from common import device_name, process_peak_rss_mb, reset_peak_rss, step_peak_rss_mb, write  # noqa: E402


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


def _jittered(src: Path, dst: Path, name: str, rng: np.random.Generator) -> None:
    """A synthetic donor ``dst/name.png`` from the aligned face ``src``: flipped (half the time),
    shifted by up to 4 px and colour-jittered (per-channel gains 0.85-1.15), with its sidecar's
    landmarks moved alike and the pixels shifted in from outside marked invalid (``.valid.png``)."""
    from facefill.align.sidecar import read_sidecar, read_valid, write_companions
    from facefill.data.io import read_image, write_image
    from facefill.train.data import FLIP_68

    image, side = read_image(src), dict(read_sidecar(src))
    size = image.shape[0]
    lm = np.asarray(side["landmarks"], np.float64)
    valid = read_valid(src, size)
    valid = np.ones((size, size), np.float32) if valid is None else valid
    if rng.random() < 0.5:
        image, valid, lm = image[:, ::-1], valid[:, ::-1], lm[FLIP_68].copy()
        lm[:, 0] = size - 1 - lm[:, 0]
    dy, dx = (int(v) for v in rng.integers(-4, 5, 2))
    image, valid = np.roll(image, (dy, dx), (0, 1)), np.roll(valid, (dy, dx), (0, 1))
    if dy:
        valid[slice(0, dy) if dy > 0 else slice(dy, None)] = 0
    if dx:
        valid[:, slice(0, dx) if dx > 0 else slice(dx, None)] = 0
    lm = lm + [dx, dy]
    image = np.clip(image * rng.uniform(0.85, 1.15, 3), 0, 255).round().astype(np.uint8)
    side["landmarks"] = np.round(lm, 3).tolist()
    out = dst / f"{name}.png"
    write_companions(out, side, valid > 0.5)
    write_image(out, image)


#: index arrays a fabricated copy keeps exactly: the photo it links to is the base's (the warp
#: reads its landmarks), the rest varies as it does between a real jittered copy and its original
EXACT_FIELDS = ("landmarks",)


def _jitter_spread(base_index, bank: Path, work: Path, cache: Path, n: int = 48) -> dict[str, float]:
    """How far a synthetic donor's index rows lie from its original's: ``n`` base faces jittered
    (:func:`_jittered`) into ``work/jitter_probe`` and described for real; per array the RMS of
    the row differences (a flip changes pose and outline, a colour gain the skin and signature)."""
    from facefill.donor.index import load_index

    probe = work / "jitter_probe"
    if not probe.exists():
        probe.mkdir()
        rng = np.random.default_rng(2)
        for k in range(n):
            _jittered(bank / base_index.names[k], probe, f"j{k:05d}", rng)
    probed = load_index(probe, cache=cache)
    rows = [int(name[1:6]) for name in probed.names]  # j00007 is base face 7
    return {k: float(np.sqrt(np.mean((np.asarray(v, np.float64) - np.asarray(base_index.arrays()[k], np.float64)[rows]) ** 2)))
            for k, v in probed.arrays().items() if np.asarray(v).dtype.kind == "f" and k not in EXACT_FIELDS}


def _fabricated_cache(base_index, big: Path, cache: Path, size: int, spread: dict[str, float]) -> None:
    """Cache an index of ``big`` (links to the base bank's files, ``c<copy>_<name>``) whose rows are
    the base index's rows, tiled, without describing anything: what a described bank of that size
    would leave in the cache (same arrays and checks), so reading it back can be timed at a scale
    we cannot describe here. Copy 0 is the base itself; every later copy's rows get Gaussian noise
    of ``spread`` per array (:func:`_jitter_spread`, clipped to each array's range), so that the
    bank holds 50,000 different donors as the issue's synthetic bank would, not 58 exact copies of
    each face (which donor choice skips one by one as duplicates)."""
    from facefill.align.sidecar import sidecar_path, valid_path
    from facefill.donor.cache import Cached, bank_cache, file_digest, index_key, save_cache
    from facefill.donor.index import _bank_files, file_stats

    files = _bank_files(big)
    names = [f.relative_to(big).as_posix() for f in files]
    row = {n: i for i, n in enumerate(base_index.names)}
    rows = np.array([row[n.split("_", 1)[1]] for n in names])
    copy = np.array([not n.startswith("c000_") for n in names])
    digests = np.stack([file_digest([f, sidecar_path(f), valid_path(f)]) for f in files])
    rng = np.random.default_rng(3)
    arrays = {}
    for k, v in base_index.arrays().items():
        a = np.ascontiguousarray(v[rows])
        if k in spread and spread[k] > 0:
            noise = rng.normal(0, spread[k], a[copy].shape).astype(a.dtype)
            lo, hi = float(np.min(v)), float(np.max(v))
            a[copy] = np.clip(a[copy] + noise, lo, hi)
        arrays[k] = a
    save_cache(bank_cache(cache, big, size), Cached(size, names, file_stats(files), digests, arrays, [],
                                                    index_key(names, digests, size)))


def _choice_ms(index, queries: int = 64, repeats: int = 5) -> dict:
    """Donor choice (every cost term for every donor, gender and age included, then the picks; 3
    variants) per query face:
    wall and CPU ms, medians of ``repeats`` (the machine may be shared: CPU time moves less with its load)."""
    from facefill.donor.select import choose, costs
    from facefill.donor.settings import DonorSettings

    rng = np.random.default_rng(0)
    pick = rng.choice(len(index), queries, replace=False)
    desc = np.asarray(index.descriptors[pick]) + rng.normal(0, 0.05, (queries, 128)).astype(np.float32)
    lm, skin, settings = np.asarray(index.landmarks[pick]), np.asarray(index.skin[pick]), DonorSettings(variants=3)
    gender_age = (np.asarray(index.p_male[pick]), np.asarray(index.age[pick]))  # as hallucinate passes them
    allowed = np.ones(len(index), bool)
    costs(index, desc, lm, skin, settings, gender_age, allowed)  # warm: pages mapped
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        choose(index, costs(index, desc, lm, skin, settings, gender_age, allowed), settings, list(range(queries)))
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"choice_ms_per_face": round(1000 * float(np.median(wall)) / queries, 2),
            "choice_cpu_ms_per_face": round(1000 * float(np.median(cpu)) / queries, 2)}


def _bank_scale_rows(bank: Path, work: Path, scale: int, add: int, size: int = 128, real: bool = False) -> list[dict]:
    """Scaling of the bank index: the base bank described for real; a bank of ``scale`` links to it
    recognised unchanged (its cache rows tiled from the base, :func:`_fabricated_cache`), or with
    ``real`` a bank of ``scale`` synthetic donors (:func:`_jittered` files) described for real;
    ``add`` synthetic donors added and indexed, counting the files read; donor choice in ms per
    face at each size; peak memory."""
    import gc
    import os
    import subprocess

    from facefill.donor.index import bank_state, load_index

    cache = _cache(work)
    rows, cpu, peak = [], [], []

    def timed(f):
        gc.collect()
        reset_peak_rss()
        t0, c0 = time.perf_counter(), time.process_time()
        out = f()
        cpu.append(round(time.process_time() - c0, 2))
        peak.append(round(step_peak_rss_mb()))
        return out, time.perf_counter() - t0

    base, build_s = timed(lambda: load_index(bank, cache=cache))
    rows.append({"step": f"base bank described ({len(base)} real faces)", "donors": len(base), "seconds": round(build_s, 1),
                 "cpu_s": cpu[-1], "read": len(base) if not base.cached else 0, "step_peak_rss_mb": peak[-1]})
    big = work / f"bank_x{scale}"
    shutil.rmtree(big, ignore_errors=True)  # made anew: a rerun's added donors must be new files
    big.mkdir()
    if real:  # every donor a file of its own, described like any bank
        rng = np.random.default_rng(0)
        t0 = time.perf_counter()
        for k in range(scale):
            _jittered(bank / base.names[k % len(base)], big, f"s{k:05d}", rng)
        made_s = time.perf_counter() - t0
        # described as a user does it, `facefill bank index` in a process of its own: its peak is
        # that process's alone, not this one's (which holds the other banks' indexes)
        t0, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-m", "facefill", "bank", "index", str(big), "--device", "cpu", "-q"], check=True,
                       env={**os.environ, "FACEFILL_CACHE": str(cache.parent), "OMP_NUM_THREADS": str(torch.get_num_threads())})
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        rows.append({"step": f"{scale} synthetic donors written ({made_s:.0f} s) and described (`facefill bank index`, "
                             "its own process)", "donors": scale, "seconds": round(time.perf_counter() - t0, 1),
                     "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2), "read": scale,
                     "step_peak_rss_mb": round(after.ru_maxrss / 1024)})
    else:
        for c in range(-(-scale // len(base))):
            for n in base.names[:scale - c * len(base)]:
                for part in bank.glob(Path(n).stem + ".*"):
                    (big / f"c{c:03d}_{part.name}").symlink_to(part.resolve())
        _fabricated_cache(base, big, cache, size, _jitter_spread(base, bank, work, cache))
    state = bank_state(big, size, cache)
    fresh = [timed(lambda: load_index(big, cache=cache)) for _ in range(3)]  # the median of 3
    index, fresh_s = fresh[0][0], float(np.median([t for _, t in fresh]))
    assert index.cached and state.fresh, state.describe()
    row = {"step": "unchanged bank recognised (list, stat, checks, memory-map; median of 3), then donor choice",
           "donors": len(index), "seconds": round(fresh_s, 2), "cpu_s": float(np.median(cpu[-3:])), "read": 0}
    del fresh
    choice, _ = timed(lambda: _choice_ms(index))
    rows.append({**row, **choice, "step_peak_rss_mb": max(peak[-4:])})
    rng = np.random.default_rng(1)
    for k in range(add):
        _jittered(bank / base.names[k % len(base)], big, f"j{k:05d}", rng)
    seen = []
    grown, add_s = timed(lambda: load_index(big, cache=cache, progress=lambda d, t, n: seen.append(n)))
    where = {n: i for i, n in enumerate(grown.names)}
    same = [where[n] for n in index.names]
    assert np.array_equal(np.asarray(grown.descriptors)[same], np.asarray(index.descriptors)), "kept rows changed"
    del index, state
    row = {"step": f"{add} synthetic donors added and indexed, then donor choice", "donors": len(grown),
           "seconds": round(add_s, 1), "cpu_s": cpu[-1], "read": len(seen)}
    choice, _ = timed(lambda: _choice_ms(grown))
    rows.append({**row, **choice, "step_peak_rss_mb": max(peak[-2:])})
    for r in rows:
        r.update(peak_rss_mb=round(process_peak_rss_mb()), device=device_name("cpu"))
    return rows


def _cache(work: Path) -> Path:
    """The donor-index cache of a benchmark run (``$FACEFILL_CACHE/donors`` for a child process)."""
    return work / "cache" / "donors"


def _end_to_end_rows(queries: Path, banks: list[Path], work: Path) -> list[dict]:
    """``hallucinate --method donor`` over the aligned faces in ``queries`` (masked on the fly, as a
    user runs it), warm (the filler prepared and one pass run first), with each bank of ``banks``
    (their indexes cached under ``work/cache``): faces/s, CPU ms per face, and each bank's speed as
    a share of the first bank's."""
    from facefill.donor import DonorHallucinator, DonorSettings, load_index
    from facefill.fill.donor import DonorFill
    from facefill.options import HallucinateOptions
    from facefill.pipeline.hallucinate import hallucinate_folder

    import gc

    rows = []
    for bank in banks:
        filler = None
        gc.collect()  # the last bank's filler and its mapped index let go before this one's peak starts
        reset_peak_rss()
        filler = DonorFill(hallucinator=DonorHallucinator(load_index(bank, cache=_cache(work)), DonorSettings()))
        filler.prepare("cpu")
        opts = HallucinateOptions(method="donor", donors=bank)
        out = work / "e2e"
        for _ in range(2):  # the first pass warms the networks and the memory-mapped pages
            shutil.rmtree(out, ignore_errors=True)
            t0, c0 = time.perf_counter(), time.process_time()
            report = hallucinate_folder(queries, out, opts, filler=filler)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        n = len(report.done)
        rows.append({"step": f"hallucinate end to end, {n} faces, warm", "donors": len(filler.hallucinator.source),
                     "seconds": round(wall, 2), "cpu_s": round(cpu, 2), "faces_per_s": round(n / wall, 1),
                     "cpu_ms_per_face": round(1000 * cpu / n, 1), "step_peak_rss_mb": round(step_peak_rss_mb())})
    for r in rows:
        r.update(vs_first_bank=round(r["faces_per_s"] / rows[0]["faces_per_s"], 2), device=device_name("cpu"),
                 peak_rss_mb=round(process_peak_rss_mb()))
    return rows


def _methods(args, work: Path) -> list[dict]:
    """Every method of ``args.methods`` run and scored on the validation faces (the table above)."""
    import cv2

    from facefill.align.sidecar import read_valid
    from facefill.metrics.inception import load_inception

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
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("aligned", type=Path)
    ap.add_argument("--val-list", type=Path, default=Path("facefill/data/splits/celeba_val.txt"))
    ap.add_argument("--first-val", default="000900")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--methods", nargs="*", default=["real others", "donor", "donor, other people", "model", "ns"])
    ap.add_argument("--bank-scale", type=int, default=0, help="links in the scaling bank (e.g. 50000)")
    ap.add_argument("--bank-add", type=int, default=1000, help="synthetic donors added to it and indexed")
    ap.add_argument("--bank-real", action="store_true", help="make the scaling bank of real synthetic files and "
                    "describe them all (about 20 minutes for 50,000 on 2 cores) instead of links and tiled rows")
    ap.add_argument("--work", type=Path, default=None, help="keep the outputs here (default: a temporary folder)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="facefill-donor-bench-"))
    if args.bank_scale:
        bank = work / "bank"
        if not bank.exists():
            link_subset(args.aligned, bank, sorted(p.name.replace(".json", ".png") for p in args.aligned.glob("*.json")
                                                   if p.stem < args.first_val))
        bank_rows = _bank_scale_rows(bank, work, args.bank_scale, args.bank_add, real=args.bank_real)
        queries = work / "val"
        if not queries.exists():
            link_subset(args.aligned, queries, [n.strip() for n in args.val_list.read_text().split()
                                                if (args.aligned / n.strip()).is_file()])
        bank_rows += _end_to_end_rows(queries, [bank, work / f"bank_x{args.bank_scale}"], work)
        for r in bank_rows:
            print(json.dumps(r), flush=True)
        print(write("donor_bank", bank_rows, ["device", "step", "donors", "seconds", "cpu_s", "read", "choice_ms_per_face",
                                              "choice_cpu_ms_per_face", "faces_per_s", "cpu_ms_per_face", "vs_first_bank",
                                              "step_peak_rss_mb", "peak_rss_mb"]))
    rows = [] if not args.methods else _methods(args, work)
    for r in rows:
        r["device"] = device_name("cpu")
    if rows:
        print(write("donor", rows, ["method", "n", "fid", "kid_x1e3", "seam_median", "seam_p90", "forehead_p90",
                                    "ssim_context", "l1_context", "faces_per_s", "cpu_ms_per_face"]))
    if args.work is None:
        shutil.rmtree(work)

if __name__ == "__main__":
    main()
