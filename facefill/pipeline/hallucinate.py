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

Runs on :func:`facefill.pipeline.runner.run_folder` (:class:`_Hallucinate` is the job): inputs
are read and aligned in threads while the model runs on the chunk before, and outputs are
composed and encoded in threads while it runs on the chunk after.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from facefill.align.landmarks import LandmarkBackend, lazy_backend
from facefill.config import AlignConfig, Config, MaskConfig
from facefill.data.batch import BatchReport, Progress
from facefill.data.io import MASK_SUFFIX, companion_path, read_image, read_mask, write_image
from facefill.data.sheet import write_contact_sheet
from facefill.data.tensors import from_uint8, masked_input, masks_from_numpy, to_uint8
from facefill.errors import FacefillError, ImageError, NoFaceError
from facefill.mask.compose import compose
from facefill.options import METHODS, AlignOptions, HallucinateOptions, RawOptions, parse_shard
from facefill.pipeline.outputs import Write, file_digest
from facefill.pipeline.runner import Folders, Job, Plan, default_threads, run_folder
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


def load_donors(bank: str | os.PathLike, settings=None, size: int = 128, progress: Progress | None = None):
    """A :class:`facefill.donor.DonorHallucinator` over the donor bank ``bank`` (a folder of
    ``facefill align`` outputs); its index is read from the cache or built (``progress`` reports
    the build). FacefillError with one line for a missing, unreadable or too small bank."""
    from facefill.donor import DonorHallucinator, DonorSettings, load_index

    return DonorHallucinator(load_index(bank, size, progress=progress), settings or DonorSettings())


#: the paths an input can take (:func:`input_kind`), in the order the summary lists them
KINDS = {"masked": "masked (facefill mask)", "aligned": "aligned crops masked on the fly",
         "raw": "photos aligned and masked on the fly"}


@dataclass
class Item:
    """One face to hallucinate: ``image`` ``(S, S, 3) uint8`` (masked, or the real crop), ``mask``
    ``(S, S) float32`` in {0, 1} (1 = face), the real crop when known, the ``(68, 2)`` landmarks
    in aligned pixels (for ``--method donor``), the path it took (:data:`KINDS`) and its output;
    for a raw photo also the :class:`facefill.align.core.AlignedFace` and its sidecar."""

    path: Path
    image: np.ndarray
    mask: np.ndarray
    real: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    kind: str = "masked"
    out: Path | None = None
    face: object | None = None
    sidecar: dict | None = None


def variant_path(path: Path, k: int) -> Path:
    """``NAME.png`` -> ``NAME_v{k}.png``: the ``k``-th donor variant of one face."""
    return path.with_name(f"{path.stem}_v{k}{path.suffix}")


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
    if companion_path(path, MASK_SUFFIX).is_file() and w == h:  # a photo beside NAME.png's mask is no masked crop
        return "masked", None
    side = read_sidecar(path)
    if side is not None and side.get("size") not in (None, h) or w != h:
        side = None  # NAME.json of another file (NAME.png beside the photo NAME.jpg): not this one's
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


def _baseline_size(files: list[Path]) -> int:
    """A baseline's image size (no model to say it): the first square input's with a mask or a
    sidecar beside it (a photo beside another file's sidecar is not square), else alignment's
    default (128)."""
    from facefill.align.sidecar import sidecar_path
    from facefill.data.io import image_size

    for path in files[:64]:
        if companion_path(path, MASK_SUFFIX).is_file() or sidecar_path(path).is_file():
            hw = image_size(path)
            if hw is not None and hw[0] == hw[1]:
                return hw[0]
    return AlignConfig().size


def _check_method(G: torch.nn.Module | None, opts: HallucinateOptions) -> None:
    if opts.method == "model" and G is None:
        raise FacefillError("method 'model' needs a generator (load_model)")
    if opts.method == "donor" and opts.donor is None:
        raise FacefillError("method 'donor' needs a donor bank (load_donors)")


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
    aligned and ``opts.mask`` how they are masked on the fly).

    ``G``/``cfg``: the generator and its config (from :func:`load_model`); None with a baseline
    ``opts.method``. ``checkpoint``: the weights file G came from, recorded in the output folder's
    run record so a re-run with other weights never silently keeps old outputs. Bad files are
    recorded in the report (and ``dst/failures.tsv``) and skipped; good ones are always written.
    With ``opts.grid``, the contact sheet (masked | output | real; without any real photo, masked |
    output) is written whenever at least one output exists, new or kept."""
    _check_method(G, opts)
    donors = opts.donor.index.root if opts.donor is not None and opts.method == "donor" else None
    folders = Folders(Path(src), Path(dst), f"no images found in {src}; point hallucinate at photos of faces or the "
                      "output of 'facefill mask'",
                      reads={"--real-dir": opts.real_dir, "--checkpoint": checkpoint, "--donors": donors},
                      writes=(Write("--all-scales folder", opts.all_scales_dir), Write("--grid", opts.grid, folder=False)))
    jobs: list[_Hallucinate] = []

    def make_job(plan: Plan) -> Job:
        jobs.append(_Hallucinate(plan, G, cfg, opts, torch.device(device), checkpoint))
        return jobs[0].job()

    report, _ = run_folder(folders, make_job, opts.overwrite, opts.shard, progress, should_stop)
    jobs[0].add_notes(report)
    return report


class _Hallucinate:
    """``hallucinate`` as a :class:`~facefill.pipeline.runner.Job` over one planned run."""

    def __init__(self, plan: Plan, G, cfg: Config | None, opts: HallucinateOptions, device: torch.device,
                 checkpoint: str | os.PathLike | None) -> None:
        self.plan, self.G, self.cfg, self.opts, self.device, self.checkpoint = plan, G, cfg, opts, device, checkpoint
        self.variants = opts.donor.settings.variants if opts.method == "donor" else 1
        self.size = cfg.generator.scales[-1] if cfg is not None else _baseline_size(plan.inputs)
        eyes = {"left_eye": cfg.align.left_eye, "right_eye": cfg.align.right_eye} if cfg is not None else {}
        self.align = AlignConfig(size=self.size, **eyes)
        self.mask_cfg = opts.mask or MaskConfig(grow=cfg.mask.grow if cfg is not None else 0)
        # detects landmarks in photos and in aligned crops without a sidecar (built only when there are any)
        self.backend = lazy_backend(opts.raw.landmarks, **opts.raw.backend_args(str(device)))
        self.rows = set(plan.inputs[:opts.grid_max]) if opts.grid is not None else set()
        self.owners = {q: p for p, q in plan.outputs.items()}  # output -> input, for faces="all" name clashes
        self.sheet: dict[Path, list] = {}  # input -> contact-sheet rows (masked, output, real)
        self.kinds: dict[Path, tuple[str, int]] = {}  # input -> (the path it took, faces)

    # -- names and the run record
    def marker(self, out: Path) -> Path:
        """The file that marks ``out``'s face done: itself, or its last donor variant (written last)."""
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
        """Everything that changes the outputs (resume is refused when it differs)."""
        opts = self.opts
        settings = {"method": opts.method, "keep_face": opts.keep_face, "feather": opts.feather,
                    "mask_from_landmarks": opts.mask_from_landmarks, "precision": opts.precision,
                    "all_scales": str(Path(opts.all_scales_dir).resolve()) if opts.all_scales_dir is not None else None}
        if opts.method == "model":
            weights = Path(self.checkpoint) if self.checkpoint is not None else default_model_path()
            settings["weights_sha256"] = file_digest(weights) if weights.is_file() else str(weights)
        if opts.method == "donor":
            settings["donor_bank"] = opts.donor.index.key
            settings["donor_settings"] = asdict(opts.donor.settings)
        # how photos are aligned and masked on the fly: in the record, since it changes their outputs
        raw = opts.raw
        settings["raw_photos"] = {"landmarks": raw.landmarks, "faces": raw.faces, "align": asdict(self.align),
                                  "mask": asdict(self.mask_cfg), **({"detector": raw.detector, "upsample": raw.upsample}
                                                                    if raw.landmarks == "dlib" else {})}
        return settings

    def job(self) -> Job:
        threads = default_threads()
        return Job("hallucinate", self.settings(), self.load, self.compute, self.write, self.done,
                   outputs=self.outputs, batch_size=self.opts.batch_size, read_ahead=threads, write_threads=threads)

    def outputs(self, path: Path) -> list[Path]:
        """The images this input's outputs would replace: NAME.png, or its donor variants."""
        out = self.plan.outputs[path]
        return [variant_path(out, k) for k in range(self.variants)] if self.variants > 1 else [out]

    # -- load: one input file -> its faces
    def _masked(self, path: Path, image: np.ndarray, kind: str) -> Item:
        """A masked input (``<name>.mask.png`` beside it), or with ``mask_from_landmarks`` an
        aligned crop masked from its landmarks."""
        size, out = self.size, self.plan.outputs[path]
        if image.shape[:2] != (size, size):
            raise ImageError(f"{path}: {image.shape[1]}x{image.shape[0]}, the model takes {size}x{size}; "
                             f"align the photo with 'facefill align' (default size 128)")
        from facefill.mask.region import face_mask, landmarks_for

        landmarks = None
        if kind == "aligned":  # --mask-from-landmarks: as before photos were taken
            landmarks = landmarks_for(path, image, self.backend)
            mask = (face_mask(landmarks, size, self.mask_cfg.grow, 0) > 0.5).astype(np.float32)
            return Item(path, image, mask, image, np.asarray(landmarks, np.float32), "aligned", out)
        mask_file = companion_path(path, MASK_SUFFIX)
        mask = read_mask(mask_file, (size, size))
        if mask is None:
            if mask_file.is_file():
                raise ImageError(f"{mask_file}: unreadable or not {size}x{size}; re-run 'facefill mask'")
            raise ImageError(f"{path}: no mask {mask_file.name} beside it; run 'facefill mask' on the aligned "
                             "photos, or pass --mask-from-landmarks to mask aligned photos on the fly")
        if self.opts.method == "donor":
            landmarks = np.asarray(landmarks_for(path, image, self.backend), np.float32)
        return Item(path, image, mask, self._real(path), landmarks, "masked", out)

    def _real(self, path: Path) -> np.ndarray | None:
        """The real photo of a masked input, from ``--real-dir`` (same name), for the sheet."""
        if self.opts.real_dir is None:
            return None
        for cand in (self.opts.real_dir / path.name, self.opts.real_dir / (path.stem + ".png")):
            if cand.is_file():
                return read_image(cand)
        return None

    def _raw(self, path: Path, image: np.ndarray) -> list[Item]:
        """A photo aligned and masked on the fly: one item per face (one with faces="largest")."""
        from facefill.align.core import align_image
        from facefill.pipeline.align import face_path, no_face_fix
        from facefill.pipeline.mask import mask_face, mask_settings

        engine = self.backend()
        try:
            faces = align_image(image, engine, self.align, self.opts.raw.faces, str(self.device))
        except NoFaceError:
            raise NoFaceError(f"{path}: {image.shape[1]}x{image.shape[0]}, no face found to align it on the fly; "
                              f"{no_face_fix()}") from None
        items, out, owners = [], self.plan.outputs[path], self.owners
        for i, face in enumerate(faces):
            dst = face_path(out, i, self.opts.raw.faces)
            if dst != out and owners.get(dst, path) != path:
                raise ImageError(f"{path}: face {i} would be written as {dst.name}, the output of {owners[dst]}; "
                                 "rename one of them")
            side = face.sidecar(self.plan.key(path), engine.name, self.align)
            side["mask"] = mask_settings(self.mask_cfg)
            landmarks = np.asarray(side["landmarks"], np.float64)  # as the sidecar stores them (3 decimals)
            masked, m = mask_face(face.image, landmarks, self.mask_cfg)
            items.append(Item(path, masked, m.astype(np.float32) / 255, face.image, landmarks.astype(np.float32),
                              "raw", dst, face, side))
        return items

    def load(self, path: Path) -> list[Item]:
        """The faces of one input file, each masked (and aligned) as its path needs."""
        image = read_image(path)
        if self.opts.mask_from_landmarks:
            items = [self._masked(path, image, "aligned")]
        else:
            kind, landmarks = input_kind(path, image, self.size, self.backend, self.align)
            if kind == "masked":
                items = [self._masked(path, image, "masked")]
            elif kind == "aligned":
                from facefill.pipeline.mask import mask_face

                masked, m = mask_face(image, landmarks, self.mask_cfg)
                items = [Item(path, masked, m.astype(np.float32) / 255, image, np.asarray(landmarks, np.float32),
                              "aligned", self.plan.outputs[path])]
            else:
                items = self._raw(path, image)
        self.kinds[path] = (items[0].kind, len(items))
        return items

    # -- compute: a chunk of inputs -> outputs, batched
    def compute(self, bundles: list[list[Item]]) -> list[list[dict]]:
        """Per input, per face: ``final`` ``(S, S, 3) uint8`` (donor: ``(K, S, S, 3)``, the
        variants), ``scales`` (``{side: (s, s, 3) uint8}``, the model's blocks) and ``masked``
        (the generator's input as an image, for the contact sheet)."""
        items = [it for bundle in bundles for it in bundle]
        masked = masked_input(from_uint8([it.image for it in items], self.device),
                              masks_from_numpy([it.mask for it in items], self.device))
        scales: dict[int, np.ndarray] = {}
        if self.opts.method == "model":
            with torch.no_grad(), autocast(self.device, self.opts.precision):
                outs = self.G(masked)
            # every block's output only for --all-scales; otherwise the last block's alone
            scales = {k: to_uint8(v) for k, v in outs.items()} if self.opts.all_scales_dir is not None else {}
            final = scales[max(outs)] if scales else to_uint8(outs[max(outs)])
        elif self.opts.method == "donor":
            from facefill.donor import name_seed

            final, _ = self.opts.donor(np.stack([it.image for it in items]), np.stack([it.mask for it in items]),
                                       np.stack([it.landmarks for it in items]),
                                       [name_seed(self.plan.key(it.path)) for it in items])
        else:
            from facefill.baselines import fill

            final = np.stack([fill(self.opts.method, it.image, it.mask) for it in items])
        masked_u8 = to_uint8(masked) if self.opts.grid is not None else None  # only the contact sheet shows it
        results, j = [], 0
        for bundle in bundles:
            results.append([{"final": final[j + i], "scales": {k: v[j + i] for k, v in scales.items()},
                             "masked": None if masked_u8 is None else masked_u8[j + i]} for i in range(len(bundle))])
            j += len(bundle)
        return results

    # -- write: one input's faces, face 0 last (it marks the photo done)
    def _write_face(self, it: Item, result: dict) -> tuple[np.ndarray, list[Path]]:
        opts, base, files = self.opts, it.out, []
        final = result["final"]
        if opts.all_scales_dir is not None:
            for k, v in result["scales"].items():
                files.append(write_image(Path(opts.all_scales_dir) / str(k) / base.relative_to(self.plan.dst), v))
        if self.variants > 1:
            for k in range(self.variants):  # in order: the marker (the last variant) is written last
                if it.kind == "raw":
                    files += _write_raw_companions(it, variant_path(base, k))
                files.append(write_image(variant_path(base, k), final[k]))
            return final[0], files
        if opts.method == "donor":  # donor outputs carry the face already, with their own seam correction
            out = final[0]
        else:
            out = compose(it.image, final, it.mask, opts.feather) if opts.keep_face else final
        if it.kind == "raw":
            files += _write_raw_companions(it, base)  # before the image, which marks the face done
        files.append(write_image(base, out))  # last: it marks the input done
        return out, files

    def write(self, path: Path, bundle: list[Item], results: list[dict]) -> list[Path]:
        written = [self._write_face(it, r) for it, r in reversed(list(zip(bundle, results)))][::-1]
        if path in self.rows:
            self.sheet[path] = [[r["masked"], out, it.real] for it, r, (out, _) in zip(bundle, results, written)]
        return [f for _, files in reversed(written) for f in files]

    # -- after the run
    def add_notes(self, report: BatchReport) -> None:
        """The summary's notes (donor bank, paths the inputs took) and the contact sheet."""
        opts = self.opts
        if opts.method == "donor":
            report.notes.insert(0, opts.donor.summary())
        if opts.method == "model" and not opts.keep_face and self.checkpoint is None:
            report.notes.append("note: --no-keep-face with the default model: it never learned faces (its main loss "
                                "scores the output with the real face pasted back), so the faces are striped noise; "
                                "see docs/model-card.md")
        kinds: dict[str, list[str]] = {k: [] for k in KINDS}
        faces = 0
        for path in report.done:
            kind, n = self.kinds[path]
            kinds[kind].append(self.plan.key(path))
            faces += n if kind == "raw" else 0
        if kinds["aligned"] or kinds["raw"]:
            report.notes.append(_paths_note(kinds, faces))
        if opts.grid is not None:
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
                    it = self.load(path)[0]
                    masked = to_uint8(masked_input(from_uint8(it.image), masks_from_numpy(it.mask)))[0]
                    kept = self.marker(it.out) if self.variants == 1 else variant_path(it.out, 0)
                    rows.append([masked, read_image(kept), it.real])
                except Exception as exc:
                    if not report.record_failure(path, exc):
                        raise
        if rows:
            if self.plan.targets.get("--grid") == "replace":
                report.warnings.append(f"replaced the existing file {self.opts.grid} with the contact sheet")
            rows = rows[:self.opts.grid_max]
            if all(row[2] is None for row in rows):  # no real photos known: masked | output only
                rows = [row[:2] for row in rows]
            write_contact_sheet(self.opts.grid, rows)
            report.notes.append(f"contact sheet: {self.opts.grid}")


def _write_raw_companions(item: Item, out: Path) -> list[Path]:
    """Beside ``out``, the output of face ``item`` of a raw photo: the aligned crop's
    ``.valid.png`` and sidecar (align's files) and the binary ``.mask.png`` (mask's)."""
    from facefill.pipeline.align import write_companions

    mask = (item.mask > 0.5).astype(np.uint8) * 255
    return [write_image(companion_path(out, MASK_SUFFIX), mask)] + write_companions(out, item.face, item.sidecar)


__all__ = ["KINDS", "METHODS", "AlignOptions", "HallucinateOptions", "Item", "RawOptions", "default_model_path",
           "hallucinate_folder", "input_kind", "load_donors", "load_model", "parse_shard", "variant_path"]
