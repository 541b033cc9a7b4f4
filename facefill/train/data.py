"""Training data: a folder of aligned face photos, masks made on the fly from landmarks.

Each image needs 68 landmarks in its own pixels: from the ``facefill align`` sidecar
(``<name>.json``), else detected once with dlib when the dataset is scanned (images with no face
are skipped and counted). Images are square; other sizes are resized (area) to the training
resolution, landmarks scaled with them.

An item is a dict of ``real (3, S, S)`` in [-1, 1], ``mask (1, S, S)`` in [0, 1] (1 = face),
``masked (3, S, S)`` (the real photo with the outside set to -1), ``valid (1, S, S)`` in [0, 1]
(1 = the pixel comes from the photo, 0 = padding added by alignment; from the ``.valid.png``
beside the image, all ones without one) and ``landmarks (68, 2)`` pixels. Flips and resizes
apply to ``valid`` too. Augmentation (horizontal flip) is drawn from ``(seed, epoch, index)``
only, never from a global RNG, so a resumed run sees the same data as an uninterrupted one,
whatever the number of workers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from facefill.align.sidecar import read_sidecar, read_valid
from facefill.align.landmarks import LandmarkBackend
from facefill.config import MaskConfig
from facefill.data.batch import DATA_ERRORS
from facefill.data.io import MASK_SUFFIX, companion_path, list_images, read_image
from facefill.data.tensors import from_uint8, masked_input, masks_from_numpy
from facefill.errors import FacefillError, ImageError
from facefill.mask.region import face_mask, landmarks_for

#: iBUG-68 index of each point's mirror image (for horizontal flips).
FLIP_68 = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65]
)


@dataclass(frozen=True)
class Sample:
    path: Path
    landmarks: np.ndarray  # (68, 2) in the image's own pixels
    size: int  # the image's side length


def scan(root: Path, backend: Callable[[], LandmarkBackend] | None = None,
         progress: Callable[[int, int, str], None] | None = None,
         eyes: tuple[tuple[float, float], tuple[float, float]] = ((0.40, 0.45), (0.60, 0.45)),
         ) -> tuple[list[Sample], list[tuple[Path, str]]]:
    """Find usable training images under ``root``. Landmarks come from the alignment sidecars,
    else from ``backend()`` (None: a sidecar is required). Returns ``(samples, skipped)`` where
    skipped holds ``(file, reason)`` for unreadable, non-square or face-less files, and for photos
    'facefill align' did not make (:func:`facefill.mask.region.check_aligned` with ``eyes``, the
    aligned eye centres as fractions of the side: a raw square photo is not trained on)."""
    from facefill.mask.region import check_aligned

    samples, skipped = [], []
    paths = list_images(root)
    for i, path in enumerate(paths):
        try:
            image = read_image(path)
            h, w = image.shape[:2]
            if h != w:
                raise ImageError(f"{path}: {w}x{h} is not square; align it first with 'facefill align'")
            side = read_sidecar(path)
            if companion_path(path, MASK_SUFFIX).is_file() or (side is not None and "mask" in side):
                raise ImageError(f"{path}: a 'facefill mask' output (its context is black: nothing to learn); "
                                 "train on the 'facefill align' folder it was made from")
            if backend is None and side is None:
                raise ImageError(f"{path}: no alignment sidecar (run 'facefill align' first)")
            lm = np.asarray(landmarks_for(path, image, backend), np.float32)
            if lm.shape != (68, 2):
                raise ImageError(f"{path}: expected 68 landmarks, found {lm.shape}")
            check_aligned(path, image, lm, side, eyes)
            samples.append(Sample(path, lm, h))
        except (FacefillError, *DATA_ERRORS) as exc:
            skipped.append((path, str(exc)))
        if progress is not None:
            progress(i + 1, len(paths), path.name)
    return samples, skipped


def split(samples: list[Sample], root: Path, val_fraction: float, seed: int,
          val_list: Path | None = None) -> tuple[list[Sample], list[Sample]]:
    """Train/val split. With ``val_list`` (one relative path per line) those files are the
    validation set; otherwise a file is in it when a hash of ``(seed, relative path)`` falls in
    the lowest ``val_fraction``: stable when files are added or the order changes."""
    if val_list is not None:
        names = {line.strip() for line in Path(val_list).read_text().splitlines() if line.strip()}
        val = [s for s in samples if str(s.path.relative_to(root)) in names]
    else:
        def h(s: Sample) -> float:
            digest = hashlib.sha1(f"{seed}:{s.path.relative_to(root)}".encode()).digest()
            return int.from_bytes(digest[:8], "little") / 2**64

        val = [s for s in samples if h(s) < val_fraction]
    val_set = {s.path for s in val}
    return [s for s in samples if s.path not in val_set], val


class FaceDataset(Dataset):
    """Aligned faces as training items (see the module doc). ``augment``: an
    :class:`~facefill.train.augment.AugmentConfig` (similarity warp and colour jitter, drawn from
    ``(seed, epoch, index)``, applied after the flip to the photo, landmarks and validity
    together), or None."""

    def __init__(self, samples: list[Sample], size: int, mask: MaskConfig = MaskConfig(),
                 flip: bool = True, seed: int = 0, augment=None) -> None:
        self.samples = samples
        self.size = size
        self.mask_cfg = mask
        self.flip = flip
        self.seed = seed
        self.augment = augment if augment is not None and augment.enabled else None
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image, valid, lm = decode(self.samples[index], self.size)
        if self.flip and flip_drawn(self.seed, self.epoch, index):
            image, valid = image[:, ::-1].copy(), valid[:, ::-1].copy()
            lm = lm[FLIP_68].copy()
            lm[:, 0] = self.size - 1 - lm[:, 0]
        real = from_uint8(image)[0]
        v = masks_from_numpy(valid)[0]
        landmarks = torch.from_numpy(np.ascontiguousarray(lm, np.float32))
        if self.augment is not None:
            from facefill.train.augment import augment

            real, landmarks, v = augment(real, landmarks, v, self.augment, seed=self.seed, epoch=self.epoch,
                                         index=index)
        m = masks_from_numpy(face_mask(landmarks.numpy(), self.size, self.mask_cfg.grow, self.mask_cfg.feather))[0]
        return {"real": real, "mask": m, "masked": masked_input(real, m), "landmarks": landmarks, "valid": v}


def decode(sample: Sample, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(image (S, S, 3) uint8, valid (S, S) float32 in [0, 1], landmarks (68, 2) float32)`` of
    ``sample`` at ``size`` px: read from disk, area-resized when its side differs, landmarks
    scaled with it; ``valid`` from the ``.valid.png`` beside it, all ones without one."""
    image = read_image(sample.path)
    lm = sample.landmarks.copy()
    valid = read_valid(sample.path, sample.size)
    if valid is None:
        valid = np.ones((sample.size, sample.size), np.float32)
    if sample.size != size:
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        valid = cv2.resize(valid, (size, size), interpolation=cv2.INTER_AREA)
        lm = (lm + 0.5) * (size / sample.size) - 0.5
    return image, np.ascontiguousarray(valid, np.float32), np.ascontiguousarray(lm, np.float32)


def flip_drawn(seed: int, epoch: int, index: int) -> bool:
    """Whether item ``index`` is mirrored in ``epoch`` (when flips are on): a draw from
    ``(seed, epoch, index)`` alone."""
    return bool(np.random.default_rng((seed, epoch, index)).random() < 0.5)
