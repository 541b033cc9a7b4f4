"""``hallucinate`` over a folder: masked faces in, full images out.

Each input file takes one of three paths, decided per file (:func:`input_kind`):

* ``masked``: the output of ``facefill mask`` (``<name>.png`` + ``<name>.mask.png``), used as is.
* ``aligned``: an aligned crop (``facefill align``'s output: a sidecar with landmarks, or a
  square photo at the model's size with its eyes where alignment puts them), masked on the fly
  as ``facefill mask`` would (:func:`facefill.pipeline.mask.mask_face`). With
  ``mask_from_landmarks=True`` every input is masked on the fly from its landmarks.
* ``raw``: any other photo, aligned on the fly as ``facefill align`` would
  (:func:`facefill.align.core.align_image`, :class:`RawOptions`: backend, faces, upsampling) and
  then masked; beside its output go the aligned crop's sidecar ``<name>.json`` (with the mask
  settings), ``<name>.valid.png`` (where the frame left the photo) and the binary
  ``<name>.mask.png``, so ``evaluate --masks`` and ``replace-bg`` find them. With ``faces="all"``
  a photo's faces are ``<stem>_0.png``, ``<stem>_1.png``...; no face: the photo fails.

The generator input
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from facefill.align.landmarks import LandmarkBackend, lazy_backend
from facefill.config import HALLUCINATE_METHODS as METHODS  # the one list, shared with the CLI
from facefill.config import AlignConfig, Config, MaskConfig
from facefill.data.batch import BatchReport, Progress, run_batched
from facefill.data.io import MASK_SUFFIX, list_images, read_image, write_image
from facefill.data.sheet import write_contact_sheet
from facefill.data.tensors import from_uint8, masked_input, masks_from_numpy, to_uint8
from facefill.errors import FacefillError, ImageError, NoFaceError, UsageError
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
    """G (eval, fp32) and its config from a release file, or the shipped default model, with the
    output block's last conv padded by replication: zero padding, as trained, drew a 2 px frame
    round every output (:meth:`facefill.models.generator.CascadedGenerator.pad_output`)."""
    from facefill.models.release import load_generator

    G, cfg = load_generator(Path(checkpoint) if checkpoint is not None else default_model_path(), device=device)
    return G.pad_output("replicate"), cfg


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


#: the paths an input can take (:func:`input_kind`), in the order the summary lists them
KINDS = {"masked": "masked (facefill mask)", "aligned": "aligned crops masked on the fly",
         "raw": "photos aligned and masked on the fly"}


@dataclass
class RawOptions:
    """How photos that ``facefill align`` did not make are aligned and masked on the fly: align's
    and mask's defaults. The crop's size and eye positions are the model's (its config's
    ``align``); ``mask`` None = the model's ``mask`` config (``MaskConfig()`` for a baseline)."""

    landmarks: str = "dlib"  # dlib | fan | mediapipe; also re-detects aligned crops without a sidecar
    detector: str = "hog"  # dlib: hog | cnn
    upsample: int = 1  # dlib: upsample the photo N times before detection (smaller faces)
    faces: str = "largest"  # largest | all (<stem>_0.png, <stem>_1.png, ...)
    mask: MaskConfig | None = None

    def backend(self, device: str = "cpu") -> Callable[[], LandmarkBackend]:
        """The landmark backend, built on first use (as ``facefill align`` builds it)."""
        if self.landmarks == "dlib":
            return lazy_backend("dlib", detector=self.detector, upsample=self.upsample)
        return lazy_backend(self.landmarks, **({"device": device} if self.landmarks == "fan" else {}))


@dataclass
class Item:
    path: Path
    image: np.ndarray  # (S, S, 3) uint8, the masked (or real) input
    mask: np.ndarray  # (S, S) float32 in {0, 1}
    real: np.ndarray | None = None
    landmarks: np.ndarray | None = None  # (68, 2) aligned pixels, for --method donor
    kind: str = "masked"  # masked | aligned | raw (KINDS)
    out: Path | None = None  # the output (NAME.png; NAME_{i}.png for face i of a raw photo with faces="all")
    face: object | None = None  # raw: the facefill.align.core.AlignedFace
    sidecar: dict | None = None  # raw: the aligned crop's sidecar (with its "mask" entry)


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
    raw: RawOptions = field(default_factory=RawOptions)
    all_scales_dir: Path | None = None
    real_dir: Path | None = None
    grid: Path | None = None
    grid_max: int = 16


def _load_item(path: Path, opts: HallucinateOptions, size: int, mask_grow: int,
               backend: Callable[[], LandmarkBackend], image: np.ndarray | None = None) -> Item:
    """A masked input, or with ``opts.mask_from_landmarks`` an aligned one (the paths as before
    raw photos were taken)."""
    check_input_name(path)
    image = read_image(path) if image is None else image
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
    return Item(path, image, mask, real, landmarks, kind="aligned" if opts.mask_from_landmarks else "masked")


def input_kind(path: Path, image: np.ndarray, size: int, backend: Callable[[], LandmarkBackend],
               align: AlignConfig = AlignConfig()) -> tuple[str, np.ndarray | None]:
    """Which path an input takes, and the landmarks of an aligned crop: ``("masked", None)`` with
    a ``<name>.mask.png`` beside it; ``("aligned", landmarks)`` for an aligned crop (a sidecar with
    landmarks, or a ``size`` x ``size`` photo whose detected eye centres sit where ``align`` puts
    them: :func:`facefill.mask.region.check_aligned`); otherwise ``("raw", None)``. A masked photo
    whose mask is gone, an aligned crop of another size, and a photo at the model's size with no
    face fail with what to do."""
    from facefill.align.sidecar import read_sidecar
    from facefill.mask.region import check_aligned

    h, w = image.shape[:2]
    mask_name = path.stem + MASK_SUFFIX
    if path.with_name(mask_name).is_file():
        return "masked", None
    side = read_sidecar(path)
    if side is not None and "landmarks" in side:
        if "mask" in side:  # the output of 'facefill mask' without its mask
            raise ImageError(f"{path}: no mask {mask_name} beside it; run 'facefill mask' on the aligned "
                             "photos, or pass --mask-from-landmarks to mask aligned photos on the fly")
        if (h, w) != (size, size):
            raise ImageError(f"{path}: {w}x{h}, the model takes {size}x{size}; align the photo with "
                             f"'facefill align' (default size 128)")
        return "aligned", np.asarray(side["landmarks"], np.float64)
    if (h, w) == (size, size):
        found = backend().detect(image)
        if not found:
            raise NoFaceError(f"{path}: {w}x{h}, no mask {mask_name} beside it and no face found to mask or align "
                              "it on the fly; give the output of 'facefill mask', aligned photos (--mask-from-landmarks), "
                              "or photos with a visible frontal face (try --upsample 2 for small faces)")
        landmarks = max(found, key=lambda f: f.area).landmarks
        try:
            check_aligned(path, image, landmarks, None, (align.left_eye, align.right_eye))
            return "aligned", landmarks
        except ImageError:
            pass
    return "raw", None


def _load_items(path: Path, opts: HallucinateOptions, size: int, mask_grow: int,
                backend: Callable[[], LandmarkBackend], align: AlignConfig, key: str, out: Path,
                taken: dict[Path, Path], device: str) -> list[Item]:
    """The items of one input file: one, or with ``opts.raw.faces == "all"`` one per face of a
    raw photo (``out`` is the input's planned output; ``taken`` every input's, for clashes)."""
    check_input_name(path)
    image = read_image(path)
    if opts.mask_from_landmarks:
        return [replace_out(_load_item(path, opts, size, mask_grow, backend, image), out)]
    kind, landmarks = input_kind(path, image, size, backend, align)
    if kind == "masked":
        return [replace_out(_load_item(path, opts, size, mask_grow, backend, image), out)]
    from facefill.pipeline.mask import mask_face, mask_settings

    mask_cfg = opts.raw.mask or MaskConfig(grow=mask_grow)
    if kind == "aligned":
        masked, m = mask_face(image, landmarks, mask_cfg)
        return [Item(path, masked, (m > 127).astype(np.float32), image, np.asarray(landmarks, np.float32),
                     kind="aligned", out=out)]
    from facefill.align.core import align_image
    from facefill.pipeline.align import NO_FACE_FIX, face_path

    engine = backend()
    try:
        faces = align_image(image, engine, align, opts.raw.faces, device)
    except NoFaceError:
        raise NoFaceError(f"{path}: {image.shape[1]}x{image.shape[0]}, no face found to align it on the fly; "
                          f"{NO_FACE_FIX}") from None
    items = []
    for i, face in enumerate(faces):
        dst = face_path(out, i, opts.raw.faces)
        if dst != out and taken.get(dst, path) != path:
            raise ImageError(f"{path}: face {i} would be written as {dst.name}, the output of {taken[dst]}; "
                             "rename one of them")
        side = face.sidecar(key, engine.name, align)
        side["mask"] = mask_settings(mask_cfg)
        landmarks = np.asarray(side["landmarks"], np.float64)  # as the sidecar stores them (3 decimals)
        masked, m = mask_face(face.image, landmarks, mask_cfg)
        items.append(Item(path, masked, (m > 127).astype(np.float32), face.image, landmarks.astype(np.float32),
                          kind="raw", out=dst, face=face, sidecar=side))
    return items


def replace_out(item: Item, out: Path) -> Item:
    item.out = out
    return item


def _write_raw_companions(item: Item, out: Path) -> list[Path]:
    """Beside ``out``, the output of face ``item`` of a raw photo: the aligned crop's
    ``.valid.png`` and sidecar (align's files) and the binary ``.mask.png`` (mask's)."""
    from facefill.pipeline.align import write_companions

    mask = (item.mask > 0.5).astype(np.uint8) * 255
    return [write_image(out.with_name(out.stem + MASK_SUFFIX), mask)] + write_companions(out, item.face, item.sidecar)


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
    """Hallucinate every masked face, aligned crop or photo under ``src`` into ``dst`` (each
    file's path is decided on its own: :func:`input_kind`; ``opts.raw`` says how photos are
    aligned and masked on the fly).

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
    if opts.raw.faces not in ("largest", "all"):
        raise FacefillError(f"faces must be 'largest' or 'all', got {opts.raw.faces!r}")
    variants = opts.donor.settings.variants if opts.method == "donor" else 1
    files = list_images(src)
    if not files:
        raise FacefillError(f"no images found in {src}; point hallucinate at photos of faces or the output of 'facefill mask'")
    writes = [Write("output folder", dst), Write("--all-scales folder", opts.all_scales_dir),
              Write("--grid", opts.grid, folder=False)]
    reads = {"input folder": src, "--real-dir": opts.real_dir, "--checkpoint": checkpoint,
             "--donors": opts.donor.index.root if opts.donor is not None else None}
    grid_state = check_write_plan(writes, reads).get("--grid")
    i, n = opts.shard
    files = files[i::n]
    names = plan_outputs(files, src, dst)

    def marker(out: Path) -> Path:  # NAME_v0.png .. NAME_v{K-1}.png: the last one, written last, marks the input done
        return variant_path(out, variants - 1) if variants > 1 else out

    plan = {p: marker(q) for p, q in names.items()}
    size = cfg.generator.scales[-1] if cfg is not None else _baseline_size(files)
    align_cfg = AlignConfig(size=size, **({"left_eye": cfg.align.left_eye, "right_eye": cfg.align.right_eye}
                                          if cfg is not None else {}))
    device = torch.device(device)
    settings = {"method": opts.method, "keep_face": opts.keep_face, "feather": opts.feather,
                "mask_from_landmarks": opts.mask_from_landmarks, "precision": opts.precision,
                "all_scales": str(Path(opts.all_scales_dir).resolve()) if opts.all_scales_dir is not None else None}
    if opts.method == "model":
        weights = Path(checkpoint) if checkpoint is not None else default_model_path()
        settings["weights_sha256"] = file_digest(weights) if weights.is_file() else str(weights)
    if opts.method == "donor":
        settings["donor_bank"] = opts.donor.index.key
        settings["donor_settings"] = asdict(opts.donor.settings)
    mask_grow = opts.raw.mask.grow if opts.raw.mask is not None else cfg.mask.grow if cfg is not None else 0
    raw_mask = opts.raw.mask or MaskConfig(grow=mask_grow)
    # how photos are aligned and masked on the fly: in the record, since it changes their outputs
    settings["raw_photos"] = {"landmarks": opts.raw.landmarks, "faces": opts.raw.faces, "align": asdict(align_cfg),
                              "mask": asdict(raw_mask), **({"detector": opts.raw.detector, "upsample": opts.raw.upsample}
                                                          if opts.raw.landmarks == "dlib" else {})}

    def first_face(path: Path) -> Path | None:
        """With faces="all", the marker of a raw photo's face 0 when its sidecar says it is this
        photo's (a photo's faces are written last to first)."""
        if opts.raw.faces != "all":
            return None
        from facefill.align.sidecar import read_sidecar
        from facefill.pipeline.align import face_path

        first = marker(face_path(names[path], 0, "all"))
        side = read_sidecar(face_path(names[path], 0, "all") if variants == 1 else first)
        return first if first.is_file() and side is not None and side.get("source") == input_key(path, src) else None

    has_outputs = any(p.is_file() or first_face(f) is not None for f, p in plan.items())
    # detects landmarks in photos and in aligned crops without a sidecar (only when there are any)
    backend = opts.raw.backend(str(device))
    report = BatchReport(total=len(files))
    if opts.method == "donor":
        report.notes.append(opts.donor.summary())
    if opts.method == "model" and not opts.keep_face and checkpoint is None:
        report.notes.append("note: --no-keep-face with the default model: it never learned faces (its main loss "
                            "scores the output with the real face pasted back), so the faces are striped noise; "
                            "see docs/model-card.md")
    todo = []
    for path in files:
        done = plan[path].is_file() or first_face(path) is not None
        (report.skipped if not opts.overwrite and done else todo).append(path)
    sheet: list[list[np.ndarray | None]] = []
    kinds: dict[str, list[str]] = {k: [] for k in KINDS}
    faces_found = [0]

    def load(path: Path) -> list[Item]:
        return _load_items(path, opts, size, mask_grow, backend, align_cfg, input_key(path, src), names[path],
                           names, str(device))

    def process(bundles: list[list[Item]]) -> list[list[Path]]:
        items = [it for bundle in bundles for it in bundle]
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
            base = it.out
            # donor outputs carry the face already, with their own seam correction: no feather on top
            out = compose(it.image, final[j], it.mask, opts.feather) if opts.keep_face and opts.method != "donor" else final[j]
            files_j = []
            if opts.all_scales_dir is not None:
                for k, v in outs.items():
                    files_j.append(write_image(Path(opts.all_scales_dir) / str(k) / base.relative_to(dst), v[j]))
            if variants > 1:
                for k in range(variants):  # in order: the marker (the last variant) is written last
                    if it.kind == "raw":
                        files_j += _write_raw_companions(it, variant_path(base, k))
                    files_j.append(write_image(variant_path(base, k), donated[j, k]))
                return donated[j, 0], files_j
            if it.kind == "raw":
                files_j += _write_raw_companions(it, base)  # before the image, which marks the face done
            files_j.append(write_image(base, out))  # last: it marks the input done
            return out, files_j

        spans, start = [], 0
        for bundle in bundles:
            spans.append(range(start, start + len(bundle)))
            start += len(bundle)

        def finish_bundle(span: range) -> list[tuple[np.ndarray, list[Path]]]:
            return [finish(j) for j in reversed(span)][::-1]  # face 0 last: it marks the photo done

        results = [r for rs in writer.map(finish_bundle, spans) for r in rs]
        for j, (out, _) in enumerate(results):
            if opts.grid is not None and len(sheet) < opts.grid_max:
                sheet.append([masked_u8[j], out, items[j].real])
        for bundle in bundles:
            kinds[bundle[0].kind].append(input_key(bundle[0].path, src))
            faces_found[0] += len(bundle) if bundle[0].kind == "raw" else 0
        return [[f for j in span for f in results[j][1]] for span in spans]

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as writer, open_run(
            dst, "hallucinate", settings, overwrite=opts.overwrite, has_outputs=has_outputs,
            keys={input_key(p, src) for p in files}, shard=opts.shard) as run:
        run_batched(todo, load, process, opts.batch_size, report, progress, should_stop,
                    on_done=lambda p, written: run.record(input_key(p, src), written))
        write_failures(dst, report.failed)
    if any(kinds["aligned"] + kinds["raw"]):
        report.notes.append(_paths_note(kinds, faces_found[0]))
    if opts.grid is not None:
        for path in report.skipped:  # a resumed run still gets a full sheet, from the kept outputs
            if len(sheet) >= opts.grid_max:
                break
            try:
                it = load(path)[0]
                masked = to_uint8(masked_input(from_uint8(it.image), masks_from_numpy(it.mask)))[0]
                sheet.append([masked, read_image(marker(it.out) if variants == 1 else variant_path(it.out, 0)), it.real])
            except Exception as exc:
                if not report.record_failure(path, exc):
                    raise
        if sheet:
            if grid_state == "replace":
                report.notes.append(f"replaced the existing contact sheet {opts.grid}")
            write_contact_sheet(opts.grid, sheet)
            report.notes.append(f"contact sheet: {opts.grid}")
    return report


def _baseline_size(files: list[Path]) -> int:
    """A baseline's image size (no model to say it): the first input's with a mask or a sidecar
    beside it, else alignment's default (128)."""
    from facefill.align.sidecar import sidecar_path

    for path in files[:64]:
        if path.with_name(path.stem + MASK_SUFFIX).is_file() or sidecar_path(path).is_file():
            return read_image(path).shape[0]
    return AlignConfig().size


def _paths_note(kinds: dict[str, list[str]], faces: int, show: int = 8) -> str:
    """The summary line saying which path the inputs of this run took (names when few)."""
    parts = []
    for kind, what in KINDS.items():
        names = kinds[kind]
        if not names:
            continue
        listed = ", ".join(names[:show]) + (f", ... ({len(names) - show} more)" if len(names) > show else "")
        extra = f", {faces} faces" if kind == "raw" else ""
        parts.append(f"{len(names)} {what}{extra} ({listed})")
    return "inputs: " + "; ".join(parts)
