"""``hallucinate`` over a folder: faces in, full images out.

Every input file takes its own path (:mod:`facefill.pipeline.face_inputs`: masked by ``facefill
mask``, an aligned crop masked on the fly (its ``<name>.mask.png`` written beside the output), or
a photo aligned and masked on the fly (also the crop's ``<name>.json`` and ``<name>.valid.png``),
for ``paste``, ``evaluate --masks`` and ``replace-bg``). Outputs mirror the input tree as
``<name>.png`` (``<name>_v0.png`` .. with several variants; a filler's ``record`` lists what made each in ``OUT/<record>``).

The context is filled by a :class:`facefill.fill.base.ContextFiller` (the registry's
:mod:`facefill.fill.registry`, or one given ready) from the generator input rebuilt from image
and mask (:func:`facefill.data.tensors.masked_input`: context = -1, as in training), so every
method sees the same inputs. ``keep_face``: the face is pasted back
(:func:`facefill.mask.compose.compose`), bit-exact inside the mask, feathered ``feather`` px outside.

Runs on :func:`facefill.pipeline.runner.run_folder` (:class:`HallucinateJob`): inputs are read and
the filler's plan made (donor choice) in threads while it fills the chunk before; writes overlap too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from facefill.align.sidecar import write_companions
from facefill.config import AlignConfig
from facefill.data.batch import BatchReport, Progress
from facefill.data.io import MASK_SUFFIX, companion_path, read_image, write_image
from facefill.data.sheet import write_comparison_sheet
from facefill.data.tensors import from_uint8, masked_input, masks_from_numpy, to_uint8
from facefill.errors import FacefillError
from facefill.fill.base import ContextFiller, FillBatch
from facefill.fill.model import default_model_path, load_model
from facefill.fill.registry import make_filler
from facefill.mask.compose import compose
from facefill.options import METHODS, HallucinateOptions, parse_shard
from facefill.pipeline.face_inputs import KINDS, Face, FaceReader, fill_batch, input_kind, inputs_size, paths_note, sized
from facefill.pipeline.outputs import Write, file_digest, update_records
from facefill.pipeline.runner import Folders, Job, Plan, default_threads, run_folder


def variant_path(path: Path, k: int) -> Path:
    """``NAME.png`` -> ``NAME_v{k}.png``: the ``k``-th variant of one face."""
    return path.with_name(f"{path.stem}_v{k}{path.suffix}")


def hallucinate_folder(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    opts: HallucinateOptions = HallucinateOptions(),
    device: str | torch.device = "cpu",
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    filler: ContextFiller | None = None,
) -> BatchReport:
    """Hallucinate every masked face, aligned crop or photo under ``src`` into ``dst`` (each
    file's path is decided on its own: :func:`facefill.pipeline.face_inputs.input_kind`;
    ``opts.raw`` says how photos are aligned and ``opts.mask`` how they are masked on the fly).

    ``filler``: the way of filling context, prepared on ``device`` once the paths are checked; default
    the one ``opts.method`` names, made from ``opts``. Give one to reuse a loaded model or a donor bank
    with its own settings; its ``name`` must be ``opts.method``. Bad files are recorded in the report (and
    ``dst/failures.tsv``) and skipped; good ones are always written. With ``opts.grid``, the
    contact sheet (masked | output | real; without any real photo, masked | output) is written
    whenever at least one output exists, new or kept."""
    filler = filler or make_filler(opts)
    if filler.name != opts.method:
        raise ValueError(f"the filler is {filler.name!r}, the options say --method {opts.method}")
    jobs: list[HallucinateJob] = []
    def make_job(plan: Plan) -> Job:  # the paths are checked first: a donor index is built only after that
        jobs.append(HallucinateJob(plan, sized(filler, plan.inputs).prepare(device), opts))
        return jobs[0].job()

    report, _ = run_folder(hallucinate_paths(src, dst, opts, filler), make_job, opts.overwrite, opts.shard, progress,
                           should_stop)
    jobs[0].add_notes(report)
    return report


def hallucinate_paths(src, dst, opts: HallucinateOptions, filler: ContextFiller) -> Folders:
    """What a run reads and writes (``plan_run`` checks them before any work)."""
    empty = f"no images found in {src}; point hallucinate at photos of faces or the output of 'facefill mask'"
    return Folders(Path(src), Path(dst), empty, reads={"--real-dir": opts.real_dir, **filler.reads()},
                   writes=(Write("--all-scales folder", opts.all_scales_dir), Write("--grid", opts.grid, folder=False)))


class HallucinateJob:
    """``hallucinate`` over one planned run, as a :class:`~facefill.pipeline.runner.Job`: names
    and done-markers, the run record, the chunk's fill, the writes and the summary."""

    def __init__(self, plan: Plan, filler: ContextFiller, opts: HallucinateOptions) -> None:
        self.plan, self.filler, self.opts, self.variants = plan, filler, opts, filler.variants
        self.align = filler.frame or AlignConfig(size=filler.size or inputs_size(plan.inputs))
        self.read = FaceReader(plan.outputs, plan.key, self.align, opts.mask_config(filler.mask), opts.raw,
                               opts.mask_from_landmarks, filler.landmarks, opts.real_dir, str(filler.device))
        self.rows = set(plan.inputs[:opts.grid_max]) if opts.grid is not None else set()
        self.sheet: dict[Path, list] = {}  # input -> contact-sheet rows (masked, output, real)
        self.kinds: dict[Path, tuple[str, int]] = {}  # input -> (the path it took, faces)
        self.records: dict[Path, dict] = {}  # output -> its row in OUT/<filler.record>

    # -- names and the run record
    def marker(self, out: Path) -> Path:
        """The file that marks ``out``'s face done: itself, or its last variant (written last)."""
        return variant_path(out, self.variants - 1) if self.variants > 1 else out

    def first_face(self, path: Path) -> Path | None:
        """With faces="all", the marker of a raw photo's face 0 when its sidecar says it is this
        photo's (a photo's faces are written last to first)."""
        if self.opts.raw.faces != "all":
            return None
        from facefill.align.sidecar import read_sidecar
        from facefill.pipeline.align import face_path

        zero = face_path(self.plan.outputs[path], 0, "all")
        first = self.marker(zero)
        side = read_sidecar(zero if self.variants == 1 else first)
        return first if first.is_file() and side is not None and side.get("source") == self.plan.key(path) else None

    def done(self, path: Path) -> bool:
        return self.marker(self.plan.outputs[path]).is_file() or self.first_face(path) is not None

    def settings(self) -> dict:
        """Everything that changes the outputs (resume is refused when it differs); a file in the
        filler's settings is recorded by its content's digest."""
        opts = self.opts
        settings = {"method": opts.method, "keep_face": opts.keep_face, "feather": opts.feather,
                    "mask_from_landmarks": opts.mask_from_landmarks, "precision": opts.precision,
                    "all_scales": str(Path(opts.all_scales_dir).resolve()) if opts.all_scales_dir is not None else None}
        for key, value in self.filler.settings().items():
            settings[key] = (file_digest(value) if value.is_file() else str(value)) if isinstance(value, Path) else value
        settings["raw_photos"] = self.read.settings()
        return settings

    def job(self) -> Job:
        threads = default_threads()
        return Job("hallucinate", self.settings(), self.load, self.compute, self.write, self.done,
                   outputs=self.outputs, batch_size=self.opts.batch_size, read_ahead=threads, write_threads=threads,
                   prepare=self.prepare)

    def outputs(self, path: Path) -> list[Path]:
        """The images this input's outputs would replace: NAME.png, or its variants."""
        out = self.plan.outputs[path]
        return [variant_path(out, k) for k in range(self.variants)] if self.variants > 1 else [out]

    def load(self, path: Path) -> list[Face]:
        """The faces of one input file, each masked (and aligned) as its path needs."""
        faces = self.read(path)
        self.kinds[path] = (faces[0].kind, len(faces))
        return faces

    # -- prepare and compute: a chunk of inputs -> outputs, batched
    def prepare(self, bundles: list[list[Face]]) -> tuple[list[list[Face]], FillBatch]:
        """A chunk's faces as the filler's batch and plan (one chunk ahead of :meth:`compute`)."""
        faces = [f for bundle in bundles for f in bundle]
        return bundles, fill_batch(faces, self.filler, [self.plan.key(f.path) for f in faces], self.opts.all_scales_dir is not None)

    def compute(self, prepared: tuple[list[list[Face]], FillBatch]) -> list[list[dict]]:
        """Per input, per face: ``final`` ``(K, S, S, 3) uint8`` (variants), ``scales`` (``{side: (s, s, 3) uint8}``),
        ``masked`` (the generator's input, for the sheet), ``failed`` (None or why), ``records`` and ``masks`` (per variant, or None)."""
        bundles, batch = prepared
        filled = self.filler.fill(batch)
        masked_u8 = to_uint8(batch.masked) if self.opts.grid is not None else None  # only the contact sheet shows it
        per_face = [{"final": filled.final[j], "scales": {k: v[j] for k, v in filled.scales.items()},
                     "masked": None if masked_u8 is None else masked_u8[j], "failed": filled.failed.get(j),
                     "records": None if filled.records is None else filled.records[j],
                     "masks": None if filled.masks is None else filled.masks[j]} for j in range(len(batch.names))]
        starts = np.cumsum([0] + [len(b) for b in bundles])
        return [per_face[a:b] for a, b in zip(starts[:-1], starts[1:])]

    # -- write: one input's faces, face 0 last (it marks the photo done)
    def _write_face(self, face: Face, result: dict) -> tuple[np.ndarray, list[Path]]:
        opts, base, files = self.opts, face.out, []
        if opts.all_scales_dir is not None:
            for k, v in result["scales"].items():
                files.append(write_image(Path(opts.all_scales_dir) / str(k) / base.relative_to(self.plan.dst), v))
        names = [variant_path(base, k) for k in range(self.variants)] if self.variants > 1 else [base]
        masks = result.get("masks") if result.get("masks") is not None else [face.mask] * len(names)  # each output's face
        pasted = self.filler.keeps_face or not opts.keep_face  # the filler kept the face, or --no-keep-face
        images = [final if pasted else compose(face.image, final, m, opts.feather) for final, m in zip(result["final"], masks)]
        for k, (name, image, mask) in enumerate(zip(names, images, masks)):  # in order: the marker (last variant) last
            if face.kind == "raw":  # companions before the image, which marks the face done
                files += write_companions(name, face.sidecar, face.face.valid, mask)
            elif face.kind == "aligned" or not np.array_equal(mask > 0.5, face.mask > 0.5):  # drawn on the fly, or narrowed
                files.append(write_image(companion_path(name, MASK_SUFFIX), (mask > 0.5).astype(np.uint8) * 255))
            files.append(write_image(name, image))
            if result.get("records"):  # "what made it" for OUT/<filler.record>
                self.records[name] = {"output": name.relative_to(self.plan.dst).as_posix(), **result["records"][k]}
        return images, files

    def write(self, path: Path, bundle: list[Face], results: list[dict]) -> list[Path]:
        for r in (r for r in results if r.get("failed")):  # this input fails alone (failures.tsv), before any write
            raise FacefillError(f"{path}: {r['failed']}")
        written = [self._write_face(f, r) for f, r in reversed(list(zip(bundle, results)))][::-1]
        if path in self.rows:
            self.sheet[path] = [[r["masked"], *outs, f.real] for f, r, (outs, _) in zip(bundle, results, written)]
        return [f for _, files in reversed(written) for f in files]

    # -- after the run
    def add_notes(self, report: BatchReport) -> None:
        """The summary's notes (the filler's, paths the inputs took), OUT/<filler.record>, the contact sheet."""
        report.notes[:0] = self.filler.notes(self.opts.keep_face)
        kinds: dict[str, list[str]] = {k: [] for k in KINDS}
        faces = 0
        for path in report.done:
            kind, n = self.kinds[path]
            kinds[kind].append(self.plan.key(path))
            faces += n if kind == "raw" else 0
        if kinds["aligned"] or kinds["raw"]:
            report.notes.append(paths_note(kinds, faces))
        if self.filler.record is not None and (self.records or (self.plan.dst / self.filler.record).is_file()):
            update_records(self.plan.dst / self.filler.record, self.records.values())
            report.notes.append(f"what made each output: {self.plan.dst / self.filler.record}")
        if self.opts.grid is not None:
            self._contact_sheet(report)

    def _contact_sheet(self, report: BatchReport) -> None:
        """Rows in input order: new outputs from this run, kept ones read back (a resumed run
        still gets a full sheet)."""
        rows: list[list[np.ndarray | None]] = []
        skipped = set(report.skipped)
        for path in self.plan.inputs:
            if len(rows) >= self.opts.grid_max:
                break
            if path in self.sheet:
                rows += self.sheet[path]
            elif path in skipped:
                try:
                    face = self.load(path)[0]
                    masked = to_uint8(masked_input(from_uint8(face.image), masks_from_numpy(face.mask)))[0]
                    kept = [variant_path(face.out, k) if self.variants > 1 else face.out for k in range(self.variants)]
                    rows.append([masked, *[read_image(p) for p in kept], face.real])
                except Exception as exc:
                    if not report.record_failure(path, exc):
                        raise
        if rows:
            if self.plan.targets.get("--grid") == "replace":
                report.warnings.append(f"replaced the existing file {self.opts.grid} with the contact sheet")
            write_comparison_sheet(self.opts.grid, rows, self.opts.grid_max)
            report.notes.append(f"contact sheet: {self.opts.grid}")


__all__ = ["KINDS", "METHODS", "HallucinateJob", "HallucinateOptions", "default_model_path", "hallucinate_folder",
           "input_kind", "load_model", "parse_shard", "variant_path"]
