"""``paste``: ``hallucinate``'s aligned outputs put back into the user's photos, at full resolution.

Inputs are the photos (``photos``, the folder ``hallucinate`` read); for each, the outputs in
``out`` (a ``hallucinate`` output folder) whose sidecar names it (``"source"``: the photo's path
relative to the folder ``hallucinate`` read) are warped back into it
(:func:`facefill.align.unwarp.paste_faces`) and written as ``FINAL/<name>.png`` (PNG always: the
face pixels are the photo's own, bit for bit; sub-folders mirrored). Every face of a
``--faces all`` photo (``<stem>_0.png``, ``<stem>_1.png``...) goes into the one output; donor
variants ``<name>_v<k>.png`` give ``FINAL/<name>_v<k>.png``, one photo per variant.

Where each output's files are found (the sidecar with the matrix, the face mask, the validity map):

1. beside the output (``<name>.json``, ``<name>.mask.png``, ``<name>.valid.png``): ``hallucinate``
   wrote them there when it aligned raw photos on the fly, and the mask when it masked an aligned
   crop on the fly (the refined region of the donor path; a donor variant has its own);
2. otherwise in ``aligned`` (default: the folder ``hallucinate`` read, from ``out``'s run record),
   at the output's relative path with any ``_v<k>`` dropped: the ``facefill mask`` (or ``align``)
   folder of masked inputs. An aligned crop's output without a mask file (an older run) gets its
   mask drawn again from the sidecar's landmarks with the run's mask settings (:func:`landmark_mask`). The validity map is also computed from the matrix and the photo's
   size, so padding is never pasted even where no ``.valid.png`` is found.

Checks, each failing one input only: the photo must be the one the sidecar was made from (its
``photo_size``; for older sidecars without it, the face's landmarks must lie in the photo), the
output must be the sidecar's size and a face mask must be found. Outputs whose photo is not
among ``photos`` (or with no sidecar) fail too, listed by output. Runs on
:func:`facefill.pipeline.runner.run_folder`.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from facefill.align.sidecar import read_sidecar, sidecar_path
from facefill.align.unwarp import Face, paste_faces
from facefill.data.batch import BatchReport, Progress
from facefill.data.io import MASK_SUFFIX, VALID_SUFFIX, companion_path, list_images, read_image, read_mask, write_image
from facefill.errors import FacefillError, ImageError, UsageError
from facefill.options import Batch
from facefill.pipeline.outputs import MANIFEST, input_key, write_failures
from facefill.pipeline.runner import Folders, Job, Plan, default_threads, run_folder


@dataclass(frozen=True)
class PasteOptions(Batch):
    """``paste``: ``feather``: the soft edge between the new context and the photo, in pixels of a
    128 px crop, scaled with each crop's size (0: a hard edge); ``aligned_dir``: where sidecars and masks of masked inputs are
    (default: the folder ``hallucinate`` read)."""

    batch_size: int = 4  # photos in memory at once (full-size decodes, not crops)
    feather: float = 8.0
    aligned_dir: Path | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (math.isfinite(self.feather) and 0 <= self.feather <= 256):
            raise UsageError(f"--feather {self.feather}: must be a number between 0 and 256")


@dataclass(frozen=True)
class FaceRef:
    """One ``hallucinate`` output to put back: the image, its sidecar (path and content), and
    where its face mask and validity map are looked for."""

    output: Path
    sidecar: Path
    side: dict
    mask: Path
    valid: Path


def hallucinate_record(out: Path) -> dict:
    """``out``'s run record (``.facefill-run.json``): FacefillError when ``out`` is not a
    ``facefill hallucinate`` output folder."""
    try:
        record = json.loads((out / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        record = None
    if not isinstance(record, dict) or record.get("command") != "hallucinate":
        raise FacefillError(f"{out}: not a 'facefill hallucinate' output folder (no hallucinate run record "
                            f"{MANIFEST}); give the folder hallucinate wrote")
    return record


def variant_count(settings: dict) -> int:
    """How many donor variants each face has in a hallucinate run with ``settings`` (1: none)."""
    return int((settings.get("donor_settings") or {}).get("variants", 1) or 1)  # only the donor method has them


def _find(output: Path, out: Path, aligned: Path | None, variants: int) -> FaceRef | tuple[int, str]:
    """The files of one output (module docstring) and its variant index, or the reason it fails."""
    k = 0
    if variants > 1:
        m = re.fullmatch(r"(.*)_v(\d+)", output.stem)
        if m is None or int(m.group(2)) >= variants:
            return -1, f"{output}: not a donor variant <name>_v<k>.png of this {variants}-variant run; move it out of {out}"
        k, base = int(m.group(2)), m.group(1)
    else:
        base = output.stem
    if sidecar_path(output).is_file():
        side, image = read_sidecar(output), output
    else:
        image = (aligned / output.relative_to(out)).with_name(base + ".png") if aligned is not None else None
        side = read_sidecar(image) if image is not None else None
    if side is None or "matrix" not in side or "source" not in side:
        where = f" or in {aligned}" if aligned is not None else ""
        return -1, (f"{output}: no alignment sidecar ({output.stem}.json) beside it{where}; pass --aligned the "
                    "'facefill mask' or 'facefill align' folder that hallucinate read")
    masks = [companion_path(output, MASK_SUFFIX), companion_path(image, MASK_SUFFIX)]
    valids = [companion_path(image, VALID_SUFFIX), companion_path(output, VALID_SUFFIX)]
    mask = next((p for p in masks if p.is_file()), masks[-1])
    return k, FaceRef(output, sidecar_path(image), side, mask, next((p for p in valids if p.is_file()), valids[0]))


def index_outputs(out: Path, aligned: Path | None, variants: int
                  ) -> tuple[dict[str, dict[int, list[FaceRef]]], list[tuple[Path, str]]]:
    """``{photo key: {variant: [faces]}}`` over every output in ``out``, and the outputs that
    cannot be put back (no sidecar, not a variant name) with the reason."""
    groups: dict[str, dict[int, list[FaceRef]]] = {}
    problems: list[tuple[Path, str]] = []
    for output in list_images(out):
        k, ref = _find(output, out, aligned, variants)
        if isinstance(ref, str):
            problems.append((output, ref))
        else:
            groups.setdefault(str(ref.side["source"]), {}).setdefault(k, []).append(ref)
    return groups, problems


def _check_photo(photo: Path, hw: tuple[int, int], ref: FaceRef) -> None:
    """ImageError when ``photo`` (``(height, width)`` ``hw``) is not the one ``ref``'s sidecar was made from."""
    size = ref.side.get("photo_size")
    if size is not None:
        if tuple(int(v) for v in size) != tuple(hw):
            raise ImageError(f"{photo}: {hw[1]}x{hw[0]}, but {ref.sidecar} was made from a {size[1]}x{size[0]} photo; "
                             "give the original photos hallucinate read, not resized or edited copies")
        return
    m = np.vstack([np.asarray(ref.side["matrix"], np.float64), [0, 0, 1]])
    pts = np.asarray(ref.side.get("landmarks", []), np.float64).reshape(-1, 2)
    src = pts @ np.linalg.inv(m)[:2, :2].T + np.linalg.inv(m)[:2, 2]
    if len(src) and (src.min() < -1 or (src[:, 0] > hw[1]).any() or (src[:, 1] > hw[0]).any()):
        raise ImageError(f"{photo}: {hw[1]}x{hw[0]}, the face of {ref.output} lies outside it; give the original "
                         "photos hallucinate read")


def landmark_mask(side: dict, size: int, settings: dict) -> np.ndarray | None:
    """The face mask hallucinate drew on the fly for an aligned crop that had no mask file
    (``(S, S) float32`` in {0, 1}): from the sidecar's landmarks with the run's mask settings
    (``settings``: the hallucinate run record's), as :func:`facefill.pipeline.mask.mask_face`
    (or, with ``--mask-from-landmarks``, hallucinate's own hard mask) draws it. None without landmarks."""
    from facefill.mask.region import face_mask

    if "landmarks" not in side:
        return None
    landmarks = np.asarray(side["landmarks"], np.float64)
    cfg = (settings.get("raw_photos") or {}).get("mask") or {}
    grow = int(cfg.get("grow", 0))
    if settings.get("mask_from_landmarks"):
        return (face_mask(landmarks, size, grow, 0) > 0.5).astype(np.float32)
    return (face_mask(landmarks, (size, size), grow, int(cfg.get("feather", 0))) >= 0.5).astype(np.float32)


def load_face(photo: Path, hw: tuple[int, int], ref: FaceRef, settings: dict | None = None) -> Face:
    """One output as a :class:`~facefill.align.unwarp.Face`, checked against its photo;
    ``settings``: the hallucinate run's (for masks drawn on the fly, :func:`landmark_mask`)."""
    _check_photo(photo, hw, ref)
    image = read_image(ref.output)
    size = int(ref.side.get("size") or image.shape[0])
    if image.shape[:2] != (size, size):
        raise ImageError(f"{ref.output}: {image.shape[1]}x{image.shape[0]}, its sidecar {ref.sidecar} says "
                         f"{size}x{size}; re-run hallucinate")
    mask = read_mask(ref.mask, (size, size))
    if mask is None and not ref.mask.is_file() and settings is not None:
        mask = landmark_mask(ref.side, size, settings)
    if mask is None:
        raise ImageError(f"{ref.output}: no face mask {ref.mask.name} ({size}x{size}) beside it or its sidecar; "
                         "pass --aligned the 'facefill mask' folder that hallucinate read")
    return Face(image, np.asarray(ref.side["matrix"], np.float64), mask, read_mask(ref.valid, (size, size)))


def paste_folder(out: str | os.PathLike, photos: str | os.PathLike, final: str | os.PathLike,
                 opts: PasteOptions = PasteOptions(), progress: Progress | None = None,
                 should_stop: Callable[[], bool] | None = None) -> BatchReport:
    """Put the outputs in ``out`` (a ``hallucinate`` output folder) back into the photos under
    ``photos``; write ``final/<name>.png`` per photo (module docstring). Photos without an output
    and outputs without a photo fail, listed in the report and ``final/failures.tsv``."""
    out, photos, final = Path(out), Path(photos), Path(final)
    if not out.is_dir():
        raise FacefillError(f"{out}: no such folder; give the output folder of 'facefill hallucinate'")
    record = hallucinate_record(out)
    settings = record.get("settings") or {}
    aligned = opts.aligned_dir
    source = record.get("input") or settings.get("input")  # the run record's top level; in settings before 2026-12
    if aligned is None and source:
        read = Path(source)
        aligned = read if read.is_dir() else read.parent
    folders = Folders(photos, final, f"no photos found in {photos}; give the folder of photos hallucinate read",
                      reads={"hallucinate output": out, "--aligned": aligned})
    jobs: list[_Paste] = []

    def make_job(plan: Plan) -> Job:
        jobs.append(_Paste(plan, out, aligned, settings, opts))
        return jobs[0].job()

    report, plan = run_folder(folders, make_job, opts.overwrite, opts.shard, progress, should_stop)
    orphans = jobs[0].orphans()
    if orphans:  # outputs that no photo of this run takes: listed by output, after the photos' own failures
        report.failed.extend(orphans)
        write_failures(plan.dst, report.failed, plan.inputs)
    return report


class _Paste:
    """``paste`` as a :class:`~facefill.pipeline.runner.Job` over one planned run: one input is
    one photo, its output the photo with every face of it put back (one per donor variant)."""

    def __init__(self, plan: Plan, out: Path, aligned: Path | None, settings: dict, opts: PasteOptions) -> None:
        self.plan, self.out, self.aligned, self.opts = plan, out, aligned, opts
        self.variants = variant_count(settings)
        self.groups, self.problems = index_outputs(out, aligned, self.variants)
        self.hallucinate_settings = settings

    def finals(self, photo: Path) -> list[Path]:
        """The files written for ``photo``: ``NAME.png``, or ``NAME_v<k>.png`` per variant (the last marks it done)."""
        from facefill.pipeline.hallucinate import variant_path

        base = self.plan.outputs[photo]
        return [variant_path(base, k) for k in range(self.variants)] if self.variants > 1 else [base]

    def orphans(self) -> list[tuple[Path, str]]:
        """This shard's share of the outputs that no photo takes: no sidecar, or their photo is not
        under the photos folder (every shard lists all photos, and takes orphans ``i::n``)."""
        keys = {input_key(p, self.plan.src) for p in list_images(self.plan.src)}
        lost = [(ref.output, f"{ref.output}: its photo {src} (sidecar {ref.sidecar}) is not in {self.plan.src}; "
                 "give the folder of photos hallucinate read")
                for src, variants in self.groups.items() if src not in keys
                for refs in variants.values() for ref in refs]
        i, n = self.opts.shard
        return sorted(self.problems + lost, key=lambda f: str(f[0]))[i::n]

    def load(self, photo: Path) -> tuple[np.ndarray, dict[int, list[Face]]]:
        key = self.plan.key(photo)
        if key not in self.groups:
            raise ImageError(f"{photo}: no output in {self.out} names this photo as its source (hallucinate found "
                             f"no face in it, failed it, or ran on other photos); see {self.out}/failures.tsv")
        image = read_image(photo)
        hw = image.shape[:2]
        faces = {k: [load_face(photo, hw, ref, self.hallucinate_settings) for ref in sorted(refs, key=lambda r: str(r.output))]
                 for k, refs in self.groups[key].items()}
        missing = [k for k in range(self.variants) if k not in faces]
        if missing:
            raise ImageError(f"{photo}: donor variant {missing[0]} of its faces is missing in {self.out}; re-run hallucinate")
        return image, faces

    def compute(self, items: list[tuple[np.ndarray, dict[int, list[Face]]]]) -> list[list[np.ndarray]]:
        return [[paste_faces(image, faces[k], self.opts.feather) for k in range(self.variants)] for image, faces in items]

    def write(self, photo: Path, _, results: list[np.ndarray]) -> list[Path]:
        return [write_image(path, result) for path, result in zip(self.finals(photo), results)]  # the last marks it done

    def job(self) -> Job:
        settings = {"feather": self.opts.feather, "hallucinate_output": str(self.out.resolve()),
                    "aligned": str(self.aligned.resolve()) if self.aligned is not None else None,
                    "hallucinate_settings": self.hallucinate_settings}  # a re-run hallucinate is other context
        threads = default_threads()
        return Job("paste", settings, self.load, self.compute, self.write, done=lambda p: self.finals(p)[-1].is_file(),
                   started=lambda p: any(f.is_file() for f in self.finals(p)), outputs=self.finals,
                   batch_size=self.opts.batch_size, read_ahead=threads, write_threads=threads)


__all__ = ["FaceRef", "PasteOptions", "hallucinate_record", "index_outputs", "landmark_mask", "load_face", "paste_folder", "variant_count"]
