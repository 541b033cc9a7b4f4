"""Batch inference: run a trained generator over a folder of masked faces.

Inputs are the output of ``facefill mask`` (``<name>.png`` + ``<name>.mask.png``), or aligned
photos masked on the fly from their landmarks (``mask_from_landmarks=True``). The generator
input is rebuilt from image and mask (outside = -1, as in training), whatever fill colour the
mask step used. Outputs mirror the input tree as ``<name>.png`` at the model's resolution.

``keep_face``: the original face pixels are pasted back over the hallucination, so every pixel
inside the mask is bit-exact. The seam is feathered outside the mask: within ``feather`` px of
it, the nearest face-edge colour is blended into the hallucination with a weight falling from
1 to 0 (``feather=0``: hard seam).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from facefill.align.landmarks import LandmarkBackend, lazy_backend
from facefill.config import Config
from facefill.data.batch import BatchReport
from facefill.data.io import MASK_SUFFIX, list_images, mirror_path, read_image, write_image
from facefill.errors import FacefillError, ImageError, WeightsNotFoundError
from facefill.info import Component, register

DEFAULT_MODEL = "default-small.safetensors"


def default_model_path() -> Path:
    """The generator weights shipped inside the package (see docs/model-card.md)."""
    return Path(str(resources.files("facefill") / "weights" / DEFAULT_MODEL))


def load_model(checkpoint: str | os.PathLike | None = None, device: str | torch.device = "cpu"
               ) -> tuple[torch.nn.Module, Config]:
    """G (eval, fp32) and its config from a release file, or the shipped default model."""
    from facefill.models.release import load_generator

    path = Path(checkpoint) if checkpoint is not None else default_model_path()
    if checkpoint is None and not path.is_file():
        raise WeightsNotFoundError(f"the default model {path} is missing from this installation; "
                                   "reinstall facefill or pass --checkpoint RUN/generator.safetensors")
    return load_generator(path, device=device)


@register
def _default_model_component() -> Component:
    path = default_model_path()
    return Component("default generator (small preset)", "weights", path.is_file(),
                     str(path) if path.is_file() else "missing: reinstall facefill")


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with 0 <= i < n; None -> ``(0, 1)``."""
    if not text:
        return 0, 1
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise FacefillError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
    if not 0 <= i < n:
        raise FacefillError(f"--shard {text!r}: need 0 <= i < n")
    return i, n


def compose(face: np.ndarray, generated: np.ndarray, mask: np.ndarray, feather: int) -> np.ndarray:
    """Paste ``face`` (uint8) over ``generated`` (uint8): every pixel with ``mask > 0.5`` is the
    face's, bit for bit. Outside, within ``feather`` px of the mask, the face's nearest edge
    colour is blended into the hallucination with a weight falling linearly to 0, so the seam
    is soft without touching a face pixel."""
    inside = mask > 0.5
    out = generated.copy()
    out[inside] = face[inside]
    if feather <= 0 or not inside.any() or inside.all():
        return out
    outside = (~inside).astype(np.uint8)
    dist, labels = cv2.distanceTransformWithLabels(outside, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(inside)
    lookup = np.zeros(labels.max() + 1, np.int64)
    lookup[labels[ys, xs]] = np.arange(len(ys))
    band = (~inside) & (dist <= feather)
    nearest = lookup[labels[band]]
    w = (1.0 - dist[band] / (feather + 1.0))[:, None]
    edge = face[ys[nearest], xs[nearest]].astype(np.float32)
    out[band] = (w * edge + (1 - w) * generated[band].astype(np.float32) + 0.5).astype(np.uint8)
    return out


@dataclass
class Item:
    path: Path
    image: np.ndarray  # (S, S, 3) uint8, the masked (or real) input
    mask: np.ndarray  # (S, S) float32 in [0, 1]
    real: np.ndarray | None = None


@dataclass
class HallucinateOptions:
    keep_face: bool = True
    feather: int = 2
    batch_size: int = 16
    precision: str = "auto"  # auto (bf16 on CUDA) | fp32 | bf16
    overwrite: bool = False
    shard: tuple[int, int] = (0, 1)
    mask_from_landmarks: bool = False
    all_scales_dir: Path | None = None
    real_dir: Path | None = None
    grid: Path | None = None
    grid_max: int = 16


def _load_item(path: Path, opts: HallucinateOptions, size: int, cfg: Config,
               backend: Callable[[], LandmarkBackend]) -> Item:
    image = read_image(path)
    if image.shape[:2] != (size, size):
        raise ImageError(f"{path}: {image.shape[1]}x{image.shape[0]}, the model takes {size}x{size}; "
                         "align the photo with 'facefill align' (default size 128)")
    mask_file = path.with_name(path.stem + MASK_SUFFIX)
    real = None
    if mask_file.is_file() and not opts.mask_from_landmarks:
        m = cv2.imread(str(mask_file), cv2.IMREAD_GRAYSCALE)
        if m is None or m.shape != (size, size):
            raise ImageError(f"{mask_file}: unreadable or not {size}x{size}; re-run 'facefill mask'")
        mask = (m > 127).astype(np.float32)
    elif opts.mask_from_landmarks:
        from facefill.mask.region import face_mask, landmarks_for

        mask = (face_mask(landmarks_for(path, image, backend), size, cfg.mask.grow, 0) > 0.5).astype(np.float32)
        real = image
    else:
        raise ImageError(f"{path}: no mask {mask_file.name} beside it; run 'facefill mask' on the aligned "
                         "photos, or pass --mask-from-landmarks to mask aligned photos on the fly")
    if real is None and opts.real_dir is not None:
        for cand in (opts.real_dir / path.name, opts.real_dir / (path.stem + ".png")):
            if cand.is_file():
                real = read_image(cand)
                break
    return Item(path, image, mask, real)


def hallucinate_folder(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    G: torch.nn.Module,
    cfg: Config,
    opts: HallucinateOptions = HallucinateOptions(),
    device: str | torch.device = "cpu",
    progress: Callable[[int, int, str], None] | None = None,
) -> BatchReport:
    """Hallucinate every masked face under ``src`` into ``dst``. Bad files are recorded in the
    report and skipped; good ones are always written. With ``opts.grid``, the contact sheet is
    written whenever at least one output was."""
    src, dst = Path(src), Path(dst)
    files = list_images(src)
    if not files:
        raise FacefillError(f"no images found in {src}; point hallucinate at the output of 'facefill mask'")
    i, n = opts.shard
    files = files[i::n]
    size = cfg.generator.scales[-1]
    device = torch.device(device)
    amp = opts.precision == "bf16" or (opts.precision == "auto" and device.type == "cuda")
    backend = lazy_backend("dlib")  # only for --mask-from-landmarks inputs without a sidecar
    report = BatchReport(total=len(files))
    sheet_rows: list = []
    todo: list[Path] = []
    for path in files:
        if not opts.overwrite and mirror_path(path, src, dst).exists():
            report.skipped.append(path)
        else:
            todo.append(path)
    done = len(report.skipped)
    for start in range(0, len(todo), opts.batch_size):
        items: list[Item] = []
        for path in todo[start:start + opts.batch_size]:
            try:
                items.append(_load_item(path, opts, size, cfg, backend))
            except Exception as exc:
                if not report.record_failure(path, exc):
                    raise
        if items:
            x = torch.from_numpy(np.stack([it.image for it in items])).permute(0, 3, 1, 2).float() / 127.5 - 1
            m = torch.from_numpy(np.stack([it.mask for it in items]))[:, None]
            masked = (x * m - (1 - m)).to(device)
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                outs = G(masked)
            outs = {k: ((v.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
                    for k, v in outs.items()}
            final = outs[max(outs)]
            for j, it in enumerate(items):
                out = compose(it.image, final[j], it.mask, opts.feather) if opts.keep_face else final[j]
                report.written.append(write_image(mirror_path(it.path, src, dst), out))
                if opts.all_scales_dir is not None:
                    for k, v in outs.items():
                        write_image(mirror_path(it.path, src, Path(opts.all_scales_dir) / str(k)), v[j])
                if opts.grid is not None and len(sheet_rows) < opts.grid_max:
                    sheet_rows.append((masked[j].float().cpu(), out, it.real))
        done += len(todo[start:start + opts.batch_size])
        if progress is not None:
            progress(done, len(files), todo[min(start + opts.batch_size, len(todo)) - 1].name)
    if opts.grid is not None and sheet_rows:
        write_contact_sheet(opts.grid, sheet_rows)
    return report


def write_contact_sheet(path: Path, rows: list) -> Path:
    """One row per image: masked input | output | real (when known; else blank)."""
    cells = []
    for masked, out, real in rows:
        mimg = ((masked.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
        r = real if real is not None else np.full_like(out, 255)
        cells.append(np.concatenate([mimg, out, r], axis=1))
    sheet = np.concatenate(cells, axis=0)
    return write_image(path, sheet)
