"""``evaluate`` over two folders: generated vs real images, paired by relative path.

Per image: ``match`` (:mod:`facefill.metrics.match`), ``ssim`` (:mod:`facefill.metrics.ssim`),
``pieapp`` and ``lpips`` (piq; lower is better). With ``masks_dir`` (the output of
``facefill mask``), also the context metrics ``ssim_context`` and ``l1_context``, computed over
the hallucinated region only (pixels outside the face mask; :mod:`facefill.metrics.context`).
Per set: ``fid`` (:mod:`facefill.metrics.inception`, :mod:`facefill.metrics.fid`).

Every precondition (weights present, pairs complete, same sizes, enough images for FID) is
checked before any metric is computed.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from facefill.data.batch import Progress
from facefill.data.io import MASK_SUFFIX, list_images, read_image, write_bytes
from facefill.data.tensors import from_uint8
from facefill.errors import FacefillError

METRICS = ("match", "ssim", "fid", "pieapp", "lpips")
CONTEXT_METRICS = ("ssim_context", "l1_context")
HIGHER_IS_BETTER = {"match": True, "ssim": True, "fid": False, "pieapp": False, "lpips": False,
                    "ssim_context": True, "l1_context": False}
#: weight files (keys of facefill.weights.WEIGHTS) each metric loads from torch hub's cache
PIQ_WEIGHTS = {"pieapp": ("pieapp",), "lpips": ("lpips", "vgg16")}


def check_weights(metric: str) -> None:
    """WeightsNotFoundError naming every missing file of ``metric`` and where it goes."""
    from facefill.errors import WeightsNotFoundError
    from facefill.weights import WEIGHTS, hub_checkpoints, locate

    missing = [WEIGHTS[k] for k in PIQ_WEIGHTS.get(metric, ()) if locate(k)[0] is None or locate(k)[0].parent != hub_checkpoints()]
    if missing:
        steps = "; ".join(f"download {w.how} into {hub_checkpoints()}/" for w in missing)
        raise WeightsNotFoundError(f"{metric} needs weights that are not on this machine: {steps} "
                                   "(or set TORCH_HOME to a folder whose hub/checkpoints holds them)")


def _key(path: Path, root: Path) -> str:
    return str(path.relative_to(root).with_suffix(""))


def pair_folders(gen_dir: Path, real_dir: Path) -> list[tuple[Path, Path, str]]:
    """Match files by relative path (extension-insensitive). Raises listing unpaired files."""
    gen_dir, real_dir = Path(gen_dir), Path(real_dir)
    for d, what in ((gen_dir, "generated"), (real_dir, "real")):
        if not d.is_dir():
            raise FacefillError(f"{d} ({what} folder) does not exist")
    gen = {_key(p, gen_dir): p for p in list_images(gen_dir)}
    real = {_key(p, real_dir): p for p in list_images(real_dir)}
    if not gen:
        raise FacefillError(f"no images in {gen_dir}")
    only_gen, only_real = sorted(set(gen) - set(real)), sorted(set(real) - set(gen))
    if only_gen:
        raise FacefillError(f"{len(only_gen)} generated images have no real image of the same relative path in "
                            f"{real_dir}: {', '.join(only_gen[:10])}{' ...' if len(only_gen) > 10 else ''}")
    if only_real:
        raise FacefillError(f"{len(only_real)} real images have no generated counterpart in {gen_dir}: "
                            f"{', '.join(only_real[:10])}{' ...' if len(only_real) > 10 else ''} "
                            "(evaluate a matching subset: copy or link the pairs into two folders)")
    return [(gen[k], real[k], k) for k in sorted(gen)]


@dataclass
class EvalResult:
    generated: str = ""
    real: str = ""
    rows: list[dict] = field(default_factory=list)  # one per pair: {"file", metric: value}
    summary: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> mean, std, n (fid: value)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({"generated": self.generated, "real": self.real, "summary": self.summary,
                           "rows": self.rows, "notes": self.notes}, indent=2)

    def to_csv(self) -> str:
        """Per-image rows (``file`` then one column per per-image metric), then ``# metric`` summary rows."""
        cols = ["file"] + [m for m in self.summary if m != "fid"]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for row in self.rows:
            w.writerow([row["file"]] + [f"{row[c]:.6f}" for c in cols[1:]])
        for m, s in self.summary.items():
            w.writerow([f"# {m}"] + [f"{s.get('mean', s.get('value')):.6f}"])
        return buf.getvalue()

    def write(self, path: str | os.PathLike, fmt: str) -> Path:
        """Write the JSON or CSV report to ``path`` atomically (OutputError if it cannot)."""
        return write_bytes(path, (self.to_json() if fmt == "json" else self.to_csv()).encode())


def _mask_for(masks_dir: Path, key: str, shape: tuple[int, int]) -> np.ndarray:
    import cv2

    path = masks_dir / (key + MASK_SUFFIX)
    m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) if path.is_file() else None
    if m is None or m.shape != shape:
        raise FacefillError(f"{path}: missing, unreadable or not {shape[1]}x{shape[0]}; --masks must be the "
                            "output folder of 'facefill mask' for these faces")
    return (m > 127).astype(np.float32)


def evaluate(
    gen_dir: str | os.PathLike,
    real_dir: str | os.PathLike,
    metrics: tuple[str, ...] = ("match", "ssim", "fid"),
    device: str | torch.device = "cpu",
    batch_size: int = 32,
    real_stats: str | os.PathLike | None = None,
    inception_weights: str | os.PathLike | None = None,
    progress: Progress | None = None,
    masks_dir: str | os.PathLike | None = None,
) -> EvalResult:
    """Compute ``metrics`` over all pairs (plus the context metrics with ``masks_dir``)."""
    from facefill.align.sidecar import read_sidecar
    from facefill.metrics.match import match_scores
    from facefill.metrics.ssim import ssim

    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise FacefillError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    device = torch.device(device)
    gen_dir, real_dir = Path(gen_dir), Path(real_dir)
    pairs = pair_folders(gen_dir, real_dir)
    result = EvalResult(str(gen_dir), str(real_dir))
    if gen_dir.resolve() == real_dir.resolve():
        result.notes.append(f"warning: the generated and real folders are the same folder ({gen_dir}): "
                            "every score compares an image with itself")
    elif all(g.read_bytes() == r.read_bytes() for g, r, _ in pairs[:8]):
        result.notes.append("warning: the first generated files are byte-identical to the real ones: "
                            "is the generated folder a copy of the real one?")
    if "fid" in metrics and len(pairs) < 2:
        raise FacefillError(f"fid needs at least 2 images per side, {gen_dir} has {len(pairs)}; "
                            "leave fid out (--metrics match ssim) or evaluate more images")
    for m in metrics:
        check_weights(m)
    masks_dir = Path(masks_dir) if masks_dir is not None else None
    if masks_dir is not None and not masks_dir.is_dir():
        raise FacefillError(f"--masks {masks_dir} does not exist; give the output folder of 'facefill mask'")
    if masks_dir is not None:
        missing = [k for _, _, k in pairs if not (masks_dir / (k + MASK_SUFFIX)).is_file()]
        if missing:
            raise FacefillError(f"{len(missing)} pairs have no {MASK_SUFFIX} in {masks_dir}: {', '.join(missing[:10])}")
    nets: dict[str, torch.nn.Module] = {}
    if "match" in metrics:
        from facefill.models.embedders import FaceEmbedder

        nets["match"] = FaceEmbedder().to(device)
    if "pieapp" in metrics or "lpips" in metrics:
        import piq

        if "pieapp" in metrics:
            nets["pieapp"] = piq.PieAPP(reduction="none", stride=27).to(device)
        if "lpips" in metrics:
            nets["lpips"] = piq.LPIPS(reduction="none").to(device)
    inception = cached_real = None
    if "fid" in metrics:
        from facefill.metrics.fid import load_stats
        from facefill.metrics.inception import load_inception

        inception = load_inception(inception_weights).to(device)
        if real_stats is not None and Path(real_stats).is_file():
            cached_real = load_stats(real_stats)
    feats_gen, feats_real, mismatched = [], [], []
    per_image = [m for m in metrics if m != "fid"] + (list(CONTEXT_METRICS) if masks_dir is not None else [])

    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        gens, reals, lms, names, masks = [], [], [], [], []
        for g, r, key in chunk:
            gi, ri = read_image(g), read_image(r)
            if gi.shape != ri.shape:
                mismatched.append(f"{key} ({gi.shape[1]}x{gi.shape[0]} vs {ri.shape[1]}x{ri.shape[0]})")
                continue
            side = read_sidecar(r)
            lms.append(np.asarray(side["landmarks"], np.float32) if side and "landmarks" in side else None)
            gens.append(gi), reals.append(ri), names.append(key)
            if masks_dir is not None:
                masks.append(_mask_for(masks_dir, key, gi.shape[:2]))
        if mismatched or not gens:
            continue  # reported below, before any result is used
        x, y = from_uint8(gens, device, signed=False), from_uint8(reals, device, signed=False)
        rows = [{"file": n} for n in names]

        def put(metric: str, values) -> None:
            for row, v in zip(rows, values):
                row[metric] = float(v)

        with torch.no_grad():
            if "ssim" in metrics:
                put("ssim", ssim(x, y).tolist())
            if "match" in metrics:
                put("match", match_scores(nets["match"], x, y, lms))
            for m in ("pieapp", "lpips"):
                if m in metrics:
                    put(m, nets[m](x, y).reshape(len(names)).tolist())
            if masks_dir is not None:
                from facefill.metrics.context import context_l1, context_ssim

                fm = torch.from_numpy(np.stack(masks))[:, None].to(device)
                put("ssim_context", context_ssim(x, y, fm).reshape(-1).tolist())
                put("l1_context", context_l1(x, y, fm).reshape(-1).tolist())
            if inception is not None:
                feats_gen.append(inception(x).cpu())
                if cached_real is None:
                    feats_real.append(inception(y).cpu())
        result.rows.extend(rows)
        if progress is not None:
            progress(min(start + batch_size, len(pairs)), len(pairs), chunk[-1][2])
    if mismatched:
        raise FacefillError(f"{len(mismatched)} pairs differ in size: {', '.join(mismatched[:10])}"
                            f"{' ...' if len(mismatched) > 10 else ''}; both sides must be the same size (e.g. 128x128 aligned)")
    for m in per_image:
        vals = np.array([row[m] for row in result.rows], np.float64)
        result.summary[m] = {"mean": float(vals.mean()), "std": float(vals.std()), "n": len(vals)}
    if inception is not None:
        from facefill.metrics.fid import feature_stats, frechet_distance, save_stats

        mu_g, s_g = feature_stats(torch.cat(feats_gen))
        if cached_real is not None:
            mu_r, s_r, _ = cached_real
            result.notes.append(f"real feature statistics read from {real_stats}")
        else:
            mu_r, s_r = feature_stats(torch.cat(feats_real))
            if real_stats is not None:
                save_stats(real_stats, mu_r, s_r, inception.source, len(pairs))
                result.notes.append(f"real feature statistics saved to {real_stats}")
        n = len(result.rows)
        result.summary["fid"] = {"value": frechet_distance(mu_g, s_g, mu_r, s_r), "n": n}
        if n < 2048:
            result.notes.append(f"FID on {n} images is biased upwards (the standard uses >= 10k; "
                                "compare FIDs only at equal N)")
    return result
