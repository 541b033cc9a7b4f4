"""The donor index: what donor choice needs to know about every face in a donor bank.

A bank is a folder of ``facefill align`` outputs: ``<name>.png`` (``(S, S, 3) uint8``) with its
sidecar ``<name>.json`` (68 landmarks) and, where the eye-centred frame left the photo,
``<name>.valid.png``. For each usable donor the index holds (``N`` donors):

* ``landmarks`` ``(N, 68, 2) float32``: aligned pixels;
* ``descriptors`` ``(N, 128) float32``: dlib face descriptors of the *face-masked* photo (the
  context blanked, exactly as a query arrives), so query and donor are compared like for like;
  they carry gender, age and look;
* ``skin`` ``(N, 6) float32``: CIE Lab mean and std of the face region;
* ``pose`` ``(N, 2) float32``: yaw and pitch proxies from the landmarks (:func:`pose_from_landmarks`);
* ``padding`` ``(N,) float32``: fraction of the context that lies outside the donor's photo;
* ``signature`` ``(N, 192) float32``: the photo at 8x8 in Lab (hair colour, background), used
  to make ``--variants`` differ;
* ``silhouette`` ``(N, 256) float32``: the person's outline (hair volume, shoulders) at 16x16, the
  probability of MediaPipe's selfie segmentation network (the port facefill ships for
  ``replace-bg``). Donor choice compares it with the outline most of the best donors share;
* ``p_male`` ``(N,) float32`` in [0, 1] and ``age`` ``(N,) float32`` in years: dlib-models'
  gender and age networks (:func:`facefill.models.age_gender.estimate`) on the *unmasked*
  aligned photo (a masked face reads "female"), so donor choice keeps gender and age.

Each entry is computed by :mod:`facefill.donor.describe`. The index is built once and cached
**outside** the bank (:mod:`facefill.donor.cache`: where, under which key, reading and saving); a
changed, added or removed file gives a new key. Nothing is ever written into the bank. The index
is a :class:`facefill.donor.source.DonorSource`, the bank kind.
"""


from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from facefill.donor.cache import INDEX_VERSION, bank_key, cache_dir, read_index, save_index
from facefill.donor.describe import (_device_of, describe, face_stats, gender_age, padding_share, pose_from_landmarks,
                                     signatures, silhouettes)
from facefill.donor.source import DonorIndex
from facefill.errors import FacefillError

#: A bank with fewer usable donors than this is refused: donor choice needs room to avoid
#: gender, age and pose mismatches.
MIN_DONORS = 10
DESCRIPTOR_BATCH = 64
#: why a masked crop is no donor (its context is black)
MASKED = "a 'facefill mask' output (its context is black)"

Progress = Callable[[int, int, str], None]

__all__ = ["DESCRIPTOR_BATCH", "INDEX_VERSION", "MIN_DONORS", "DonorIndex", "bank_key", "build_index", "cache_dir",
           "describe", "load_index", "pose_from_landmarks"]


def _bank_files(root: Path) -> list[Path]:
    from facefill.data.io import list_images

    return list_images(root)


def _load_donor(path: Path, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(image (S, S, 3) uint8, landmarks (68, 2), valid (S, S) float32 or None)``; ValueError
    saying why a file cannot be a donor."""
    from facefill.align.sidecar import read_sidecar, read_valid
    from facefill.data.io import read_image

    from facefill.data.io import MASK_SUFFIX, companion_path

    side = read_sidecar(path)
    if companion_path(path, MASK_SUFFIX).is_file() or (side is not None and "mask" in side):
        raise ValueError(MASKED)
    if side is None or "landmarks" not in side:
        raise ValueError("no alignment sidecar (.json) with landmarks")
    lm = np.asarray(side["landmarks"], np.float32)
    if lm.shape != (68, 2) or not np.isfinite(lm).all():
        raise ValueError("sidecar landmarks are not 68 finite points")
    image = read_image(path)  # ImageError for a corrupt file
    if image.shape[:2] != (size, size):
        raise ValueError(f"{image.shape[1]}x{image.shape[0]}, not {size}x{size}")
    return image, lm, read_valid(path, size)


def _describe_batch(batch: list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]], size: int, embedder,
                    segmenter) -> dict[str, list]:
    """The index entries of a batch of donors ``(name, image, landmarks, valid)``: lists per array."""
    from facefill.mask.region import face_mask

    ims = np.stack([b[1] for b in batch])
    lm = np.stack([b[2] for b in batch])
    masks = np.stack([face_mask(l, size) for l in lm])
    p_male, age = gender_age(ims, lm, None, _device_of(embedder))
    return {"p_male": [p_male], "age": [age],
            "names": [b[0] for b in batch], "landmarks": list(lm), "descriptors": [describe(ims, lm, masks, embedder)],
            "skin": [face_stats(ims, masks)], "silhouette": [silhouettes(ims, segmenter)],
            "padding": [padding_share(b[3], m) for b, m in zip(batch, masks)], "signature": [signatures(ims)]}


def _extend(parts: dict[str, list], more: dict[str, list]) -> None:
    for key, values in more.items():
        parts[key] += values


def build_index(root: str | os.PathLike, size: int = 128, embedder=None, progress: Progress | None = None,
                files: list[Path] | None = None, segmenter=None) -> DonorIndex:
    """Read every donor under ``root`` and compute its index entries (no caching here; see
    :func:`load_index`) with ``embedder`` (default :class:`facefill.models.embedders.FaceEmbedder`)
    and ``segmenter`` (default :class:`facefill.segment.selfie.SelfieSegmenter`), each on its own
    device. Files that cannot be donors are listed in ``skipped``."""
    root = Path(root)
    files = _bank_files(root) if files is None else files
    if embedder is None:
        from facefill.models.embedders import FaceEmbedder

        embedder = FaceEmbedder()
    if segmenter is None:
        from facefill.segment.selfie import SelfieSegmenter

        segmenter = SelfieSegmenter()
    parts: dict[str, list] = {k: [] for k in ("names", "landmarks", "descriptors", "skin", "silhouette", "padding",
                                              "signature", "p_male", "age")}
    skipped, batch = [], []
    for k, f in enumerate(files):
        name = f.relative_to(root).as_posix()
        try:
            image, lm, valid = _load_donor(f, size)
        except (ValueError, OSError, FacefillError) as exc:
            skipped.append((name, str(exc).replace(str(f) + ": ", "")))
            continue
        batch.append((name, image, lm, valid))
        if len(batch) == DESCRIPTOR_BATCH:
            _extend(parts, _describe_batch(batch, size, embedder, segmenter))
            batch = []
        if progress is not None:
            progress(k + 1, len(files), name)
    if batch:
        _extend(parts, _describe_batch(batch, size, embedder, segmenter))
    n = len(parts["names"])
    lm_arr = np.asarray(parts["landmarks"], np.float32).reshape(n, 68, 2)

    def joined(key: str, width: int) -> np.ndarray:
        return np.concatenate(parts[key]).reshape(n, width).astype(np.float32) if parts[key] else np.zeros((0, width), np.float32)

    return DonorIndex(root, size, parts["names"], lm_arr, joined("descriptors", 128), joined("skin", 6),
                      pose_from_landmarks(lm_arr).reshape(n, 2), np.asarray(parts["padding"], np.float32),
                      joined("signature", 192), joined("silhouette", 256), joined("p_male", 1).reshape(n),
                      joined("age", 1).reshape(n), skipped=skipped)


def load_index(root: str | os.PathLike, size: int = 128, embedder=None, progress: Progress | None = None,
               cache: str | os.PathLike | None = None, min_donors: int = MIN_DONORS, segmenter=None) -> DonorIndex:
    """The index of the bank ``root``: read from the cache when the bank's contents are
    unchanged, else built (with ``embedder`` and ``segmenter``: :func:`build_index`) and cached
    (``cache`` overrides :func:`facefill.donor.cache.cache_dir`; the cache must not lie inside the
    bank). FacefillError with one line when the bank is missing, unreadable or holds fewer than
    ``min_donors`` usable donors."""
    root = Path(root)
    if not root.is_dir():
        raise FacefillError(f"donor bank {root} is not a folder; give a folder of 'facefill align' outputs "
                            "(tools/fetch_faces.sh OUT, then facefill align OUT/celeba BANK)")
    cdir = Path(cache) if cache is not None else cache_dir()
    rr = root.resolve()
    if cdir.resolve() == rr or rr in cdir.resolve().parents:
        raise FacefillError(f"the donor index cache {cdir} lies inside the donor bank {root}; the bank is never "
                            "written to: set FACEFILL_CACHE to a folder outside it")
    try:
        files = _bank_files(root)
    except OSError as exc:
        raise FacefillError(f"donor bank {root} cannot be read ({exc.strerror or exc}); check its permissions") from None
    key = bank_key(root, files, size)
    path = cdir / f"{key}.npz"
    index = read_index(path, root, key)
    if index is None:
        index = build_index(root, size, embedder, progress, files, segmenter)
        index.key = key
        if len(index) >= min_donors:
            try:
                save_index(index, path)
            except OSError:
                pass  # an unwritable cache only costs a rebuild next time
    masked = sum(why == MASKED for _, why in index.skipped)
    if masked and masked >= len(index):
        raise FacefillError(f"donor bank {root} holds 'facefill mask' outputs ({masked} masked crops: their context is black, "
                            "nothing to take); give the 'facefill align' folder they were made from")
    if len(index) < min_donors:
        why = f"; e.g. {index.skipped[0][0]}: {index.skipped[0][1]}" if index.skipped else ""
        raise FacefillError(f"donor bank {root} has {len(index)} usable donors (of {len(files)} images{why}); it needs at "
                            f"least {min_donors} aligned faces of {size}x{size} with sidecars: run 'facefill align PHOTOS {root}'")
    return index
