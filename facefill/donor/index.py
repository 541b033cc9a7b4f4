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
  ``replace-bg``). Donor choice compares it with the outline most of the best donors share.

The index is built once and cached **outside** the bank (:func:`cache_dir`), under a key made of
the bank's file contents, the image size and :data:`INDEX_VERSION`; a changed, added or removed
file gives a new key. Nothing is ever written into the bank.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from facefill.errors import FacefillError

INDEX_VERSION = 2
#: A bank with fewer usable donors than this is refused: donor choice needs room to avoid
#: gender, age and pose mismatches.
MIN_DONORS = 10
DESCRIPTOR_BATCH = 64

Progress = Callable[[int, int, str], None]


def cache_dir() -> Path:
    """Where donor indexes are cached: ``$FACEFILL_CACHE/donors``, else
    ``$XDG_CACHE_HOME/facefill/donors`` (default ``~/.cache/facefill/donors``)."""
    root = os.environ.get("FACEFILL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "facefill")
    return Path(root) / "donors"


def pose_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """``(..., 68, 2)`` aligned landmarks -> ``(..., 2)``: yaw proxy (nose tip's horizontal offset
    from the jaw's midpoint, over jaw width; about -0.5 .. 0.5) and pitch proxy (nose tip's height
    between eye line and chin; about 0.3 .. 0.7)."""
    lm = np.asarray(landmarks, np.float64)
    jaw_l, jaw_r, nose, chin = lm[..., 0, :], lm[..., 16, :], lm[..., 30, :], lm[..., 8, :]
    eyes_y = lm[..., 36:48, 1].mean(-1)
    width = np.maximum(np.abs(jaw_r[..., 0] - jaw_l[..., 0]), 1.0)
    yaw = (nose[..., 0] - (jaw_l[..., 0] + jaw_r[..., 0]) / 2) / width
    pitch = (nose[..., 1] - eyes_y) / np.maximum(chin[..., 1] - eyes_y, 1.0)
    return np.stack([yaw, pitch], -1).astype(np.float32)


@dataclass
class DonorIndex:
    """The index of one bank (see the module docstring for the arrays)."""

    root: Path
    size: int
    names: list[str]  # paths relative to root, '/'-separated
    landmarks: np.ndarray
    descriptors: np.ndarray
    skin: np.ndarray
    pose: np.ndarray
    padding: np.ndarray
    signature: np.ndarray
    silhouette: np.ndarray
    key: str = ""
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, why) not usable
    cached: bool = False  # read from the cache rather than built

    def __len__(self) -> int:
        return len(self.names)

    def path(self, i: int) -> Path:
        return self.root / self.names[i]

    def arrays(self) -> dict[str, np.ndarray]:
        return {"landmarks": self.landmarks, "descriptors": self.descriptors, "skin": self.skin,
                "pose": self.pose, "padding": self.padding, "signature": self.signature,
                "silhouette": self.silhouette}


def _bank_files(root: Path) -> list[Path]:
    from facefill.data.io import list_images

    return list_images(root)


def bank_key(root: Path, files: list[Path], size: int) -> str:
    """A digest of every bank file's relative name and bytes (image, sidecar, validity mask)."""
    from facefill.align.sidecar import sidecar_path, valid_path

    h = hashlib.sha256(f"facefill-donor-index/{INDEX_VERSION}/{size}".encode())
    for f in files:
        h.update(f.relative_to(root).as_posix().encode() + b"\0")
        for part in (f, sidecar_path(f), valid_path(f)):
            try:
                h.update(hashlib.sha256(part.read_bytes()).digest())
            except FileNotFoundError:
                h.update(b"-")
            except OSError as exc:
                h.update(f"unreadable:{exc.errno}".encode())
    return h.hexdigest()[:32]


def _load_donor(path: Path, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(image (S, S, 3) uint8, landmarks (68, 2), valid (S, S) float32 or None)``; ValueError
    saying why a file cannot be a donor."""
    from facefill.align.sidecar import read_sidecar, read_valid
    from facefill.data.io import read_image

    side = read_sidecar(path)
    if side is None or "landmarks" not in side:
        raise ValueError("no alignment sidecar (.json) with landmarks")
    lm = np.asarray(side["landmarks"], np.float32)
    if lm.shape != (68, 2) or not np.isfinite(lm).all():
        raise ValueError("sidecar landmarks are not 68 finite points")
    image = read_image(path)  # ImageError for a corrupt file
    if image.shape[:2] != (size, size):
        raise ValueError(f"{image.shape[1]}x{image.shape[0]}, not {size}x{size}")
    return image, lm, read_valid(path, size)


def _face_stats(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``(B, S, S, 3) uint8`` + ``(B, S, S)`` face masks -> ``(B, 6)`` Lab mean and std over the face."""
    out = np.zeros((len(images), 6), np.float32)
    for i, (im, m) in enumerate(zip(images, masks)):
        lab = cv2.cvtColor(im.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[m > 0.5]
        if len(lab):
            out[i, :3], out[i, 3:] = lab.mean(0), lab.std(0)
    return out


def describe(images: np.ndarray, landmarks: np.ndarray, masks: np.ndarray, embedder) -> np.ndarray:
    """Face descriptors of face-masked photos: ``images (B, S, S, 3) uint8``, ``landmarks
    (B, 68, 2)``, ``masks (B, S, S)`` in [0, 1] (1 = face) -> ``(B, 128) float32``. The context is
    blanked before the descriptor is taken, so a query (which has no context) and a donor are
    described alike."""
    import torch

    from facefill.data.tensors import from_uint8, masked_input, masks_from_numpy

    x = masked_input(from_uint8(images), masks_from_numpy(masks))
    with torch.no_grad():
        return embedder(x, torch.as_tensor(np.asarray(landmarks), dtype=torch.float32)).numpy().astype(np.float32)


def silhouettes(images: np.ndarray, segmenter) -> np.ndarray:
    """``(B, S, S, 3) uint8`` photos -> ``(B, 256) float32``: person probability at 16x16."""
    import torch

    probs = segmenter.predict(torch.from_numpy(np.ascontiguousarray(images))).cpu().numpy()
    return np.stack([cv2.resize(p, (16, 16), interpolation=cv2.INTER_AREA).reshape(-1) for p in probs]).astype(np.float32)


def build_index(root: str | os.PathLike, size: int = 128, embedder=None, progress: Progress | None = None,
                files: list[Path] | None = None, segmenter=None) -> DonorIndex:
    """Read every donor under ``root`` and compute its index entries (no caching here; see
    :func:`load_index`). Files that cannot be donors are listed in ``skipped``."""
    from facefill.mask.region import face_mask

    root = Path(root)
    files = _bank_files(root) if files is None else files
    if embedder is None:
        from facefill.models.embedders import FaceEmbedder

        embedder = FaceEmbedder()
    if segmenter is None:
        from facefill.segment.selfie import SelfieSegmenter

        segmenter = SelfieSegmenter()
    names, lms, descs, skins, pads, sigs, sils, skipped = [], [], [], [], [], [], [], []
    batch: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []

    def flush() -> None:
        if not batch:
            return
        ims = np.stack([b[1] for b in batch])
        lm = np.stack([b[2] for b in batch])
        masks = np.stack([face_mask(l, size) for l in lm])
        descs.append(describe(ims, lm, masks, embedder))
        skins.append(_face_stats(ims, masks))
        sils.append(silhouettes(ims, segmenter))
        for (name, im, l, valid), m in zip(batch, masks):
            context = m < 0.5
            pads.append(0.0 if valid is None else float(((valid < 0.5) & context).sum() / max(context.sum(), 1)))
            small = cv2.resize(im, (8, 8), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
            sigs.append(cv2.cvtColor(small, cv2.COLOR_RGB2LAB).reshape(-1))
            names.append(name), lms.append(l)
        batch.clear()

    for k, f in enumerate(files):
        name = f.relative_to(root).as_posix()
        try:
            image, lm, valid = _load_donor(f, size)
        except (ValueError, OSError, FacefillError) as exc:
            skipped.append((name, str(exc).replace(str(f) + ": ", "")))
            continue
        batch.append((name, image, lm, valid))
        if len(batch) == DESCRIPTOR_BATCH:
            flush()
        if progress is not None:
            progress(k + 1, len(files), name)
    flush()
    n = len(names)
    lm_arr = np.asarray(lms, np.float32).reshape(n, 68, 2)
    return DonorIndex(root, size, names, lm_arr,
                      np.concatenate(descs) if descs else np.zeros((0, 128), np.float32),
                      np.concatenate(skins) if skins else np.zeros((0, 6), np.float32),
                      pose_from_landmarks(lm_arr).reshape(n, 2),
                      np.asarray(pads, np.float32), np.asarray(sigs, np.float32).reshape(n, 192),
                      np.concatenate(sils) if sils else np.zeros((0, 256), np.float32), skipped=skipped)


def _save(index: DonorIndex, path: Path) -> None:
    buf = io.BytesIO()
    meta = {"version": INDEX_VERSION, "size": index.size, "names": index.names, "skipped": index.skipped,
            "root": str(index.root)}
    np.savez(buf, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **index.arrays())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


def _read(path: Path, root: Path, key: str) -> DonorIndex | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            arrays = {k: z[k] for k in ("landmarks", "descriptors", "skin", "pose", "padding", "signature",
                                        "silhouette")}
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None  # a damaged cache file is rebuilt, never trusted
    if meta.get("version") != INDEX_VERSION or len(meta["names"]) != len(arrays["descriptors"]):
        return None
    return DonorIndex(root, int(meta["size"]), list(meta["names"]), key=key, cached=True,
                      skipped=[tuple(s) for s in meta["skipped"]], **arrays)


def load_index(root: str | os.PathLike, size: int = 128, embedder=None, progress: Progress | None = None,
               cache: str | os.PathLike | None = None, min_donors: int = MIN_DONORS) -> DonorIndex:
    """The index of the bank ``root``: read from the cache when the bank's contents are
    unchanged, else built and cached (``cache`` overrides :func:`cache_dir`; the cache must not
    lie inside the bank). FacefillError with one line when the bank is missing, unreadable or
    holds fewer than ``min_donors`` usable donors."""
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
    index = _read(path, root, key) if path.is_file() else None
    if index is None:
        index = build_index(root, size, embedder, progress, files)
        index.key = key
        if len(index) >= min_donors:
            try:
                _save(index, path)
            except OSError:
                pass  # an unwritable cache only costs a rebuild next time
    if len(index) < min_donors:
        why = f"; e.g. {index.skipped[0][0]}: {index.skipped[0][1]}" if index.skipped else ""
        raise FacefillError(f"donor bank {root} has {len(index)} usable donors (of {len(files)} images{why}); it needs at "
                            f"least {min_donors} aligned faces of {size}x{size} with sidecars: run 'facefill align PHOTOS {root}'")
    return index
