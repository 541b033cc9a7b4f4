"""``hallucinate`` over a folder: masked faces in, full images out.

Inputs are the output of ``facefill mask`` (``<name>.png`` + ``<name>.mask.png``), or aligned
photos masked on the fly from their landmarks (``mask_from_landmarks=True``). The generator input
is rebuilt from image and mask (:func:`facefill.data.tensors.masked_input`: context = -1, as in
training), whatever fill colour the mask step painted. Outputs mirror the input tree as
``<name>.png`` at the model's resolution.

``method``: ``model`` (the generator: ``--checkpoint`` or the shipped default) or a classical
baseline from :mod:`facefill.baselines` (``telea``, ``ns``, ``mean``) with the same inputs and
outputs, so ``facefill evaluate`` scores them the same way.

``keep_face``: the original face pixels are pasted back (:func:`facefill.mask.compose.compose`),
so every pixel inside the mask is bit-exact; the seam is feathered ``feather`` px outside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from facefill.align.landmarks import LandmarkBackend, lazy_backend
from facefill.config import HALLUCINATE_METHODS as METHODS  # the one list, shared with the CLI
from facefill.config import Config
from facefill.data.batch import BatchReport, Progress, run_batched
from facefill.data.io import MASK_SUFFIX, list_images, read_image, write_image
from facefill.data.sheet import write_contact_sheet
from facefill.data.tensors import from_uint8, masked_input, masks_from_numpy, to_uint8
from facefill.errors import FacefillError, ImageError, UsageError
from facefill.mask.compose import compose
from facefill.pipeline.outputs import (Write, check_input_name, check_write_plan, file_digest, input_key, open_run,
                                       plan_outputs, write_failures)
from facefill.runtime import autocast


def default_model_path() -> Path:
    """The generator weights shipped inside the package (see docs/model-card.md)."""
    from facefill.weights import find

    return find("default-generator")


def load_model(checkpoint: str | os.PathLike | None = None, device: str | torch.device = "cpu"
               ) -> tuple[torch.nn.Module, Config]:
    """G (eval, fp32) and its config from a release file, or the shipped default model."""
    from facefill.models.release import load_generator

    return load_generator(Path(checkpoint) if checkpoint is not None else default_model_path(), device=device)


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with 0 <= i < n (shards count from 0); None -> ``(0, 1)``.
    A bad value is a usage error (exit 2)."""
    if not text:
        return 0, 1
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard {text!r}: expected i/n with shards counted from 0, e.g. 0/4 .. 3/4") from None
    if not 0 <= i < n:
        example = f"0/{n} .. {n - 1}/{n}" if n >= 1 else "0/4 .. 3/4"
        raise UsageError(f"--shard {text!r}: need 0 <= i < n (shards count from 0: {example})")
    return i, n


@dataclass
class Item:
    path: Path
    image: np.ndarray  # (S, S, 3) uint8, the masked (or real) input
    mask: np.ndarray  # (S, S) float32 in {0, 1}
    real: np.ndarray | None = None
    landmarks: np.ndarray | None = None  # (68, 2) aligned pixels, for --method donor


def variant_path(path: Path, k: int) -> Path:
    """``NAME.png`` -> ``NAME_v{k}.png``: the ``k``-th donor variant of one face."""
    return path.with_name(f"{path.stem}_v{k}{path.suffix}")


def load_donors(bank: str | os.PathLike, settings=None, size: int = 128, progress: Progress | None = None):
    """A :class:`facefill.donor.DonorHallucinator` over the donor bank ``bank`` (a folder of
    ``facefill align`` outputs); its index is read from the cache or built (``progress`` reports
    the build). FacefillError with one line for a missing, unreadable or too small bank."""
    from facefill.donor import DonorHallucinator, DonorSettings, load_index

    return DonorHallucinator(load_index(bank, size, progress=progress), settings or DonorSettings())


@dataclass
class HallucinateOptions:
    method: str = "model"  # model | telea | ns | mean | donor
    donor: object | None = None  # method 'donor': a facefill.donor.DonorHallucinator (load_donors)
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


def _load_item(path: Path, opts: HallucinateOptions, size: int, mask_grow: int,
               backend: Callable[[], LandmarkBackend]) -> Item:
    check_input_name(path)
    image = read_image(path)
    if image.shape[:2] != (size, size):
        raise ImageError(f"{path}: {image.shape[1]}x{image.shape[0]}, the model takes {size}x{size}; "
                         f"align the photo with 'facefill align' (default size 128)")
    mask_file = path.with_name(path.stem + MASK_SUFFIX)
    real = None
    if opts.mask_from_landmarks:
        from facefill.mask.region import face_mask, landmarks_for

        mask = (face_mask(landmarks_for(path, image, backend), size, mask_grow, 0) > 0.5).astype(np.float32)
        real = image
    elif mask_file.is_file():
        m = cv2.imread(str(mask_file), cv2.IMREAD_GRAYSCALE)
        if m is None or m.shape != (size, size):
            raise ImageError(f"{mask_file}: unreadable or not {size}x{size}; re-run 'facefill mask'")
        mask = (m > 127).astype(np.float32)
    else:
        raise ImageError(f"{path}: no mask {mask_file.name} beside it; run 'facefill mask' on the aligned "
                         "photos, or pass --mask-from-landmarks to mask aligned photos on the fly")
    landmarks = None
    if opts.method == "donor":
        from facefill.mask.region import landmarks_for

        landmarks = np.asarray(landmarks_for(path, image, backend), np.float32)
    if real is None and opts.real_dir is not None:
        for cand in (opts.real_dir / path.name, opts.real_dir / (path.stem + ".png")):
            if cand.is_file():
                real = read_image(cand)
                break
    return Item(path, image, mask, real, landmarks)


def hallucinate_folder(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    G: torch.nn.Module | None,
    cfg: Config | None,
    opts: HallucinateOptions = HallucinateOptions(),
    device: str | torch.device = "cpu",
    progress: Progress | None = None,
    checkpoint: str | os.PathLike | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> BatchReport:
    """Hallucinate every masked face under ``src`` into ``dst``.

    ``G``/``cfg``: the generator and its config (from :func:`load_model`); None with a baseline
    ``opts.method``. ``checkpoint``: the weights file G came from, recorded in the output folder's
    run record so a re-run with other weights never silently keeps old outputs. Bad files are
    recorded in the report (and ``dst/failures.tsv``) and skipped; good ones are always written.
    With ``opts.grid``, the contact sheet (masked | output | real) is written whenever at least one
    output exists, new or kept."""
    src, dst = Path(src), Path(dst)
    if opts.method not in METHODS:
        raise FacefillError(f"unknown method {opts.method!r}; choose one of {', '.join(METHODS)}")
    if opts.method == "model" and G is None:
        raise FacefillError("method 'model' needs a generator (load_model)")
    if opts.method == "donor" and opts.donor is None:
        raise FacefillError("method 'donor' needs a donor bank (load_donors)")
    variants = opts.donor.settings.variants if opts.method == "donor" else 1
    files = list_images(src)
    if not files:
        raise FacefillError(f"no images found in {src}; point hallucinate at the output of 'facefill mask'")
    writes = [Write("output folder", dst), Write("--all-scales folder", opts.all_scales_dir),
              Write("--grid", opts.grid, folder=False)]
    reads = {"input folder": src, "--real-dir": opts.real_dir, "--checkpoint": checkpoint,
             "--donors": opts.donor.index.root if opts.donor is not None else None}
    grid_state = check_write_plan(writes, reads).get("--grid")
    i, n = opts.shard
    files = files[i::n]
    plan = plan_outputs(files, src, dst)
    names = plan
    if variants > 1:  # NAME_v0.png .. NAME_v{K-1}.png; the last one, written last, marks the input done
        plan = {p: variant_path(q, variants - 1) for p, q in names.items()}
    size = cfg.generator.scales[-1] if cfg is not None else read_image(files[0]).shape[0]
    device = torch.device(device)
    settings = {"method": opts.method, "keep_face": opts.keep_face, "feather": opts.feather,
                "mask_from_landmarks": opts.mask_from_landmarks, "precision": opts.precision,
                "all_scales": str(Path(opts.all_scales_dir).resolve()) if opts.all_scales_dir is not None else None}
    if opts.method == "model":
        weights = Path(checkpoint) if checkpoint is not None else default_model_path()
        settings["weights_sha256"] = file_digest(weights) if weights.is_file() else str(weights)
    if opts.method == "donor":
        from dataclasses import asdict

        settings["donor_bank"] = opts.donor.index.key
        settings["donor_settings"] = asdict(opts.donor.settings)
    has_outputs = any(p.is_file() for p in plan.values())

    backend = lazy_backend("dlib")  # only for --mask-from-landmarks inputs without a sidecar
    mask_grow = cfg.mask.grow if cfg is not None else 0
    report = BatchReport(total=len(files))
    if opts.method == "donor":
        report.notes.append(opts.donor.summary())
    todo = []
    for path in files:
        (report.skipped if not opts.overwrite and plan[path].is_file() else todo).append(path)
    sheet: list[list[np.ndarray | None]] = []

    def process(items: list[Item]) -> list[list[Path]]:
        masked = masked_input(from_uint8([it.image for it in items], device), masks_from_numpy([it.mask for it in items], device))
        if opts.method == "model":
            with torch.no_grad(), autocast(device, opts.precision):
                outs = {k: to_uint8(v) for k, v in G(masked).items()}
            final = outs[max(outs)]
        elif opts.method == "donor":
            from facefill.donor import name_seed

            outs = {}
            donated, _ = opts.donor(np.stack([it.image for it in items]), np.stack([it.mask for it in items]),
                                    np.stack([it.landmarks for it in items]),
                                    [name_seed(input_key(it.path, src)) for it in items])
            final = donated[:, 0]
        else:
            from facefill.baselines import fill

            outs = {}
            final = np.stack([fill(opts.method, it.image, it.mask) for it in items])
        masked_u8 = to_uint8(masked)

        def finish(j: int) -> tuple[np.ndarray, list[Path]]:  # compose + encode + write: threads overlap
            it = items[j]
            # donor outputs carry the face already, with their own seam correction: no feather on top
            out = compose(it.image, final[j], it.mask, opts.feather) if opts.keep_face and opts.method != "donor" else final[j]
            files_j = []
            if opts.all_scales_dir is not None:
                for k, v in outs.items():
                    files_j.append(write_image(plan_outputs([it.path], src, Path(opts.all_scales_dir) / str(k))[it.path], v[j]))
            if variants > 1:
                for k in range(variants):  # in order: the marker (the last variant) is written last
                    files_j.append(write_image(variant_path(names[it.path], k), donated[j, k]))
                return donated[j, 0], files_j
            files_j.append(write_image(plan[it.path], out))  # last: it marks the input done
            return out, files_j

        results = list(writer.map(finish, range(len(items))))
        for j, (out, _) in enumerate(results):
            if opts.grid is not None and len(sheet) < opts.grid_max:
                sheet.append([masked_u8[j], out, items[j].real])
        return [files for _, files in results]

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as writer, open_run(
            dst, "hallucinate", settings, overwrite=opts.overwrite, has_outputs=has_outputs,
            keys={input_key(p, src) for p in files}, shard=opts.shard) as run:
        run_batched(todo, lambda p: _load_item(p, opts, size, mask_grow, backend), process, opts.batch_size,
                    report, progress, should_stop, on_done=lambda p, written: run.record(input_key(p, src), written))
        write_failures(dst, report.failed)
    if opts.grid is not None:
        for path in report.skipped:  # a resumed run still gets a full sheet, from the kept outputs
            if len(sheet) >= opts.grid_max:
                break
            try:
                it = _load_item(path, opts, size, mask_grow, backend)
                masked = to_uint8(masked_input(from_uint8(it.image), masks_from_numpy(it.mask)))[0]
                sheet.append([masked, read_image(plan[path]), it.real])
            except Exception as exc:
                if not report.record_failure(path, exc):
                    raise
        if sheet:
            if grid_state == "replace":
                report.notes.append(f"replaced the existing contact sheet {opts.grid}")
            write_contact_sheet(opts.grid, sheet)
            report.notes.append(f"contact sheet: {opts.grid}")
    return report
