"""``hallucinate``'s inputs: which path each file takes, and the faces it yields.

Each input file takes one of three paths, decided per file (:func:`input_kind`):

* ``masked``: the output of ``facefill mask`` (``<name>.png`` + ``<name>.mask.png``), used as is.
* ``aligned``: an aligned crop (``facefill align``'s output: a sidecar with landmarks, or a
  square photo at the model's size with its eyes where alignment puts them), masked on the fly
  as ``facefill mask`` would (:func:`facefill.mask.region.mask_face`). With
  ``mask_from_landmarks=True`` every input is masked on the fly from its landmarks.
* ``raw``: any other photo, aligned on the fly as ``facefill align`` would
  (:func:`facefill.align.core.align_image`; :class:`facefill.options.AlignOptions`: backend,
  faces, upsampling) and then masked. With ``faces="all"`` a photo's faces are ``<stem>_0.png``,
  ``<stem>_1.png``...; no face: the photo fails.

:class:`FaceReader` turns one input file into its :class:`Face` items (the runner's ``load``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from facefill.align.landmarks import LandmarkBackend, lazy_backend
from facefill.config import AlignConfig, MaskConfig
from facefill.data.io import MASK_SUFFIX, companion_path, read_image, read_mask
from facefill.errors import ImageError, NoFaceError
from facefill.options import AlignOptions

#: the paths an input can take (:func:`input_kind`), in the order the summary lists them
KINDS = {"masked": "masked (facefill mask)", "aligned": "aligned crops masked on the fly",
         "raw": "photos aligned and masked on the fly"}
#: the singular of each path's words, for a summary of one input ("1 photo aligned ...", not "1 photos")
_ONE = {"masked": "masked (facefill mask)", "aligned": "aligned crop masked on the fly",
        "raw": "photo aligned and masked on the fly"}


@dataclass
class Face:
    """One face to fill: ``image`` ``(S, S, 3) uint8`` (masked, or the real crop), ``mask``
    ``(S, S) float32`` in {0, 1} (1 = face), the real crop when known, the ``(68, 2)`` landmarks
    in aligned pixels (when the method reads them), the path it took (:data:`KINDS`) and its
    output; for a raw photo also the :class:`facefill.align.core.AlignedFace` and its sidecar."""

    path: Path
    image: np.ndarray
    mask: np.ndarray
    real: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    kind: str = "masked"
    out: Path | None = None
    face: object | None = None
    sidecar: dict | None = None


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


def fill_batch(faces: list[Face], filler, names: list[str], scales: bool = False):
    """Faces (any paths) as one :class:`facefill.fill.base.FillBatch` for ``filler`` (on its
    device; landmarks where it reads them), with the filler's plan for the batch."""
    from facefill.data.tensors import from_uint8, masked_input, masks_from_numpy
    from facefill.fill.base import FillBatch

    device = filler.device
    masked = masked_input(from_uint8([f.image for f in faces], device), masks_from_numpy([f.mask for f in faces], device))
    batch = FillBatch(np.stack([f.image for f in faces]), np.stack([f.mask for f in faces]), masked,
                      np.stack([f.landmarks for f in faces]) if filler.landmarks else None, names, scales,
                      [f.real if f.kind != "masked" else None for f in faces])  # a masked input's real photo: the sheet's only
    batch.plan = filler.plan(batch)
    return batch


def paths_note(kinds: dict[str, list[str]], faces: int, show: int = 8) -> str:
    """The summary line saying which path the inputs of this run took (names when few)."""
    parts = []
    for kind, what in KINDS.items():
        names = kinds[kind]
        if not names:
            continue
        listed = ", ".join(names[:show]) + (f", ... ({len(names) - show} more)" if len(names) > show else "")
        extra = f", {faces} face{'' if faces == 1 else 's'}" if kind == "raw" else ""
        parts.append(f"{len(names)} {_ONE[kind] if len(names) == 1 else what}{extra} ({listed})")
    return "inputs: " + "; ".join(parts)


def inputs_size(files: list[Path], default: int | None = AlignConfig().size) -> int | None:
    """The image size when the method does not fix one: the first square input's with a mask or
    a sidecar beside it (a photo beside another file's sidecar is not square), else ``default``
    (alignment's, 128)."""
    from facefill.align.sidecar import sidecar_path
    from facefill.data.io import image_size

    for path in files[:64]:
        if companion_path(path, MASK_SUFFIX).is_file() or sidecar_path(path).is_file():
            hw = image_size(path)
            if hw is not None and hw[0] == hw[1]:
                return hw[0]
    return default


def sized(filler, inputs: list[Path]):
    """``filler`` (a :class:`facefill.fill.base.ContextFiller`, before its ``prepare``) told the
    inputs' aligned size (its ``size``; None for photos alone): a donor bank is read at that size.
    A filler with a frame of its own (a model) keeps its frame."""
    filler.size = inputs_size(inputs, None)
    return filler


@dataclass
class FaceReader:
    """Reads one input file into its faces, each masked (and aligned) as its path needs.

    ``outputs``/``key``: the run's planned output of each input and its name relative to the
    input folder; ``align``: the frame (size, eyes) faces are aligned into; ``mask``: how faces are
    masked on the fly; ``raw``: how photos are aligned; ``landmarks``: masked inputs get their
    landmarks too (detected when their sidecar has none); ``device``: for the landmark backend and
    the alignment warp."""

    outputs: dict[Path, Path]
    key: Callable[[Path], str]
    align: AlignConfig
    mask: MaskConfig
    raw: AlignOptions = AlignOptions()
    mask_from_landmarks: bool = False
    landmarks: bool = False
    real_dir: Path | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        # detects landmarks in photos and in aligned crops without a sidecar (built only when there are any)
        self.backend = lazy_backend(self.raw.landmarks, **self.raw.backend_args(self.device))
        self.owners = {q: p for p, q in self.outputs.items()}  # output -> input, for faces="all" name clashes

    def settings(self) -> dict:
        """How photos are aligned and masked on the fly (the run record's ``raw_photos``: it
        changes their outputs)."""
        from facefill.mask.region import mask_settings

        raw = self.raw
        return {"landmarks": raw.landmarks, "faces": raw.faces, "align": asdict(self.align), "mask": mask_settings(self.mask),
                **({"detector": raw.detector, "upsample": raw.upsample} if raw.landmarks == "dlib" else {})}

    def __call__(self, path: Path) -> list[Face]:
        image = read_image(path)
        if self.mask_from_landmarks:
            return [self._masked(path, image, "aligned")]
        kind, landmarks = input_kind(path, image, self.align.size, self.backend, self.align)
        if kind == "masked":
            return [self._masked(path, image, "masked")]
        if kind == "aligned":
            from facefill.mask.region import mask_face

            masked, m = mask_face(image, landmarks, self.mask)
            return [Face(path, masked, m.astype(np.float32) / 255, image, np.asarray(landmarks, np.float32),
                         "aligned", self.outputs[path])]
        return self._raw(path, image)

    def _masked(self, path: Path, image: np.ndarray, kind: str) -> Face:
        """A masked input (``<name>.mask.png`` beside it), or with ``mask_from_landmarks`` an
        aligned crop masked from its landmarks."""
        size, out = self.align.size, self.outputs[path]
        if image.shape[:2] != (size, size):
            raise ImageError(f"{path}: {image.shape[1]}x{image.shape[0]}, the model takes {size}x{size}; "
                             f"align the photo with 'facefill align' (default size 128)")
        from dataclasses import replace

        from facefill.mask.region import face_region, landmarks_for

        landmarks = None
        if kind == "aligned":  # --mask-from-landmarks: as before photos were taken
            landmarks = landmarks_for(path, image, self.backend)
            mask = (face_region(image, landmarks, replace(self.mask, feather=0)) > 0.5).astype(np.float32)
            return Face(path, image, mask, image, np.asarray(landmarks, np.float32), "aligned", out)
        mask_file = companion_path(path, MASK_SUFFIX)
        mask = read_mask(mask_file, (size, size))
        if mask is None:
            if mask_file.is_file():
                raise ImageError(f"{mask_file}: unreadable or not {size}x{size}; re-run 'facefill mask'")
            raise ImageError(f"{path}: no mask {mask_file.name} beside it; run 'facefill mask' on the aligned "
                             "photos, or pass --mask-from-landmarks to mask aligned photos on the fly")
        if not mask.any():  # all 0, or a 0/1 PNG: no face to keep, and every method would hand back its own face
            raise ImageError(f"{mask_file}: the mask is empty (no pixel above 127: the face is white, 255, the "
                             "context black); re-run 'facefill mask' on the aligned photo")
        if self.landmarks:
            landmarks = np.asarray(landmarks_for(path, image, self.backend), np.float32)
        return Face(path, image, mask, self._real(path), landmarks, "masked", out)

    def _real(self, path: Path) -> np.ndarray | None:
        """The real photo of a masked input, from ``real_dir`` (same name), for the sheet."""
        if self.real_dir is None:
            return None
        for cand in (self.real_dir / path.name, self.real_dir / (path.stem + ".png")):
            if cand.is_file():
                return read_image(cand)
        return None

    def _raw(self, path: Path, image: np.ndarray) -> list[Face]:
        """A photo aligned and masked on the fly: one face per face found (one with faces="largest")."""
        from facefill.align.core import align_image
        from facefill.mask.region import mask_face, mask_settings
        from facefill.pipeline.align import face_path, no_face_fix

        backend = self.backend()
        try:
            found = align_image(image, backend, self.align, self.raw.faces, self.device)
        except NoFaceError:
            raise NoFaceError(f"{path}: {image.shape[1]}x{image.shape[0]}, no face found to align it on the fly; "
                              f"{no_face_fix()}") from None
        faces, out = [], self.outputs[path]
        for i, face in enumerate(found):
            dst = face_path(out, i, self.raw.faces)
            if dst != out and self.owners.get(dst, path) != path:
                raise ImageError(f"{path}: face {i} would be written as {dst.name}, the output of {self.owners[dst]}; "
                                 "rename one of them")
            side = face.sidecar(self.key(path), backend.name, self.align)
            side["mask"] = mask_settings(self.mask)
            landmarks = np.asarray(side["landmarks"], np.float64)  # as the sidecar stores them (3 decimals)
            masked, m = mask_face(face.image, landmarks, self.mask)
            faces.append(Face(path, masked, m.astype(np.float32) / 255, face.image, landmarks.astype(np.float32),
                              "raw", dst, face, side))
        return faces
