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
* ``padding`` ``(N,) float32``: fraction of the context that lies outside the donor's photo or
  in streaks baked into its edges (:func:`photo_pixels`), both filled when the donor is used;
* ``signature`` ``(N, 192) float32``: the photo at 8x8 in Lab (hair colour, background), used
  to make ``--variants`` differ;
* ``silhouette`` ``(N, 256) float32``: the person's outline (hair volume, shoulders) at 16x16, the
  probability of MediaPipe's selfie segmentation network (the port facefill ships for
  ``replace-bg``). Donor choice compares it with the outline most of the best donors share;
* ``p_male`` ``(N,) float32`` in [0, 1] and ``age`` ``(N,) float32`` in years: dlib-models'
  gender and age networks (:func:`facefill.models.age_gender.estimate`) on the *unmasked*
  aligned photo (a masked face reads "female"), so donor choice keeps gender and age.

Each entry is computed by :mod:`facefill.donor.describe` (:func:`describe_batch`: one array per
entry of :data:`facefill.donor.cache.FIELDS`). The index is cached **outside** the bank
(:mod:`facefill.donor.cache`) and kept up to date incrementally (:func:`load_index`): the bank is
listed and each donor's image, sidecar and validity mask are ``stat``-ed (size and mtime in ns);
only files whose size or mtime changed, or that are new, are read and described again; removed
ones are dropped. File contents are trusted to be unchanged when size and mtime are (as ``make``
and ``rsync`` trust them); nothing else of an unchanged bank is read. Nothing is ever written into
the bank. The index is a :class:`facefill.donor.source.DonorSource`, the bank kind.
"""


from __future__ import annotations

import os
import re
import stat as stat_mod
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from facefill.donor.cache import (FIELDS, INDEX_VERSION, Cached, bank_cache, cache_dir, file_digest, index_key,
                                  read_cache, save_cache)
from facefill.donor.describe import (_device_of, describe, face_stats, gender_age, padding_share, pose_from_landmarks, signatures,
                                     silhouettes)
from facefill.donor.source import DonorIndex
from facefill.errors import FacefillError

#: A bank with fewer usable donors than this is refused: donor choice needs room to avoid
#: gender, age and pose mismatches.
MIN_DONORS = 10
DESCRIPTOR_BATCH = 64
#: why a masked crop is no donor (its context is black)
MASKED = "a 'facefill mask' output (its context is black)"

Progress = Callable[[int, int, str], None]

__all__ = ["DESCRIPTOR_BATCH", "FIELDS", "INDEX_VERSION", "MIN_DONORS", "BankState", "DonorIndex", "bank_state",
           "bank_size", "build_index", "cache_dir", "describe", "describe_batch", "load_index", "pose_from_landmarks"]

#: stat rows for a file that is missing, not a regular file (a FIFO, a device: never opened), unreadable
MISSING, SPECIAL, UNREADABLE = -1, -2, -3
#: why a donor of another size is skipped (``bank info`` groups them by this line)
OTHER_SIZE = "{w}x{h}, not {size}x{size}"
_OTHER_SIZE = re.compile(r"(\d+)x(\d+), not \d+x\d+$")


def bank_size(root: str | os.PathLike, sample: int = 64) -> int | None:
    """The side in pixels most of the bank's aligned faces have: the most common square size
    among its first ``sample`` images with a sidecar (read from their headers), None when there is
    none (an empty bank, photos without sidecars)."""
    from facefill.data.io import image_size

    root = Path(root)
    try:
        names, stats = scan_bank(root)
    except OSError:
        return None
    sizes = Counter()
    for name in [n for n, st in zip(names, stats) if st[2] >= 0][:sample]:
        hw = image_size(root / name)
        if hw is not None and hw[0] == hw[1]:
            sizes[hw[0]] += 1
    return sizes.most_common(1)[0][0] if sizes else None


def _stat(path: Path) -> tuple[int, int]:
    """``(size, mtime_ns)`` of a regular file, following links; ``(MISSING | SPECIAL | UNREADABLE, errno)``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return MISSING, 0
    except OSError as exc:
        return UNREADABLE, exc.errno or 0
    return (st.st_size, st.st_mtime_ns) if stat_mod.S_ISREG(st.st_mode) else (SPECIAL, 0)


def _entry_stat(entry: os.DirEntry | None) -> tuple[int, int]:
    """:func:`_stat` of a directory entry (following links; None: missing), from the listing."""
    if entry is None:
        return MISSING, 0
    try:
        st = entry.stat()
    except FileNotFoundError:  # a link to nothing
        return MISSING, 0
    except OSError as exc:
        return UNREADABLE, exc.errno or 0
    return (st.st_size, st.st_mtime_ns) if stat_mod.S_ISREG(st.st_mode) else (SPECIAL, 0)


def scan_bank(root: Path) -> tuple[list[str], np.ndarray]:
    """The bank's images as :func:`facefill.data.io.list_images` lists them (hidden files and
    companions left out, linked folders followed once; what cannot be listed below ``root`` is
    left out), as relative ``'/'``-separated names in its order, with each one's
    :func:`file_stats` row taken from the same directory listings (one ``stat`` per existing file,
    none for a missing companion, no path objects): the cheap part of recognising a large bank.
    OSError when ``root`` itself cannot be listed."""
    from facefill.data.io import COMPANION_SUFFIXES, IMAGE_EXTENSIONS

    names, rows, seen = [], [], set()

    def walk(folder: str, rel: str) -> None:
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in seen:
            return
        seen.add((st.st_dev, st.st_ino))
        try:
            with os.scandir(folder) as it:
                entries = {e.name: e for e in it if not e.name.startswith(".")}
        except OSError:
            if not rel:
                raise
            return
        images = []
        for name, e in sorted(entries.items()):
            try:
                if e.is_dir():
                    walk(e.path, f"{rel}{name}/")
                elif os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS and e.is_file():
                    images.append(name)
            except OSError:  # a link loop, a vanished entry: not a donor
                continue
        stems = {os.path.splitext(n)[0] for n in images}
        for name in images:
            if not any(name.endswith(s) and name[:-len(s)] in stems for s in COMPANION_SUFFIXES):
                stem = os.path.splitext(name)[0]
                names.append(rel + name)
                rows.append((*_entry_stat(entries[name]), *_entry_stat(entries.get(stem + ".json")),
                             *_entry_stat(entries.get(stem + COMPANION_SUFFIXES[2]))))

    walk(str(root), "")
    order = sorted(range(len(names)), key=lambda i: names[i].split("/"))
    return [names[i] for i in order], np.array(rows, np.int64).reshape(len(names), 6)[order]


def file_stats(files: list[Path]) -> np.ndarray:
    """``(N, 6) int64``: :func:`_stat` of each donor's image, sidecar and validity mask."""
    from facefill.align.sidecar import sidecar_path, valid_path

    return np.array([[v for part in (f, sidecar_path(f), valid_path(f)) for v in _stat(part)] for f in files],
                    np.int64).reshape(len(files), 6)


def _load_donor(path: Path, size: int, stats: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(image (S, S, 3) uint8, landmarks (68, 2), valid (S, S) float32 or None)``; ValueError
    saying why a file cannot be a donor. ``stats``: its :func:`file_stats` row; a companion that
    is not a regular file (a FIFO) is never opened."""
    from facefill.align.sidecar import read_sidecar, read_valid, sidecar_path, valid_path
    from facefill.data.io import read_image

    for part, what in zip((path, sidecar_path(path), valid_path(path)), stats[0::2]):
        if what in (SPECIAL, UNREADABLE):
            raise ValueError(f"{part.name} is {'not a regular file' if what == SPECIAL else 'unreadable'}")
    from facefill.data.io import MASK_SUFFIX, companion_path

    side = read_sidecar(path)
    if companion_path(path, MASK_SUFFIX).is_file() or (side is not None and "mask" in side):
        raise ValueError(MASKED)
    if side is None or "landmarks" not in side:
        raise ValueError("no alignment sidecar (.json) with landmarks")
    try:
        lm = np.asarray(side["landmarks"], np.float32)
    except (TypeError, ValueError):
        lm = np.zeros(0, np.float32)
    if lm.shape != (68, 2) or not np.isfinite(lm).all():
        raise ValueError("sidecar landmarks are not 68 finite points")
    image = read_image(path)  # ImageError for a corrupt file
    if image.shape[:2] != (size, size):
        raise ValueError(OTHER_SIZE.format(w=image.shape[1], h=image.shape[0], size=size))
    return image, lm, read_valid(path, size)


def photo_pixels(image: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """``(S, S) bool``: the pixels of a donor ``image (S, S, 3) uint8`` that are its photo's own,
    neither outside it (``valid``, None: all inside) nor streaks its earlier crop baked in at its
    edges (:func:`facefill.donor.warp.baked_padding`, filled like padding when the donor is used)."""
    from facefill.donor.warp import baked_padding

    inside = np.ones(image.shape[:2], bool) if valid is None else np.asarray(valid) > 0.5
    return inside & ~baked_padding(image.astype(np.float32) / 255.0, inside, scale=image.shape[0] / 128)


def describe_batch(images: np.ndarray, landmarks: np.ndarray, valids: list, size: int, embedder,
                   segmenter) -> dict[str, np.ndarray]:
    """The index rows of a batch of donors: ``images (B, S, S, 3) uint8``, ``landmarks (B, 68, 2)``,
    ``valids`` (B ``(S, S)`` masks or None) -> ``{field: (B, *FIELDS[field]) float32}``, one entry
    per :data:`facefill.donor.cache.FIELDS`."""
    from facefill.mask.region import face_mask

    masks = np.stack([face_mask(l, size) for l in landmarks])
    rows = {"landmarks": landmarks, "descriptors": describe(images, landmarks, masks, embedder),
            "skin": face_stats(images, masks), "pose": pose_from_landmarks(landmarks),
            "padding": np.array([padding_share(photo_pixels(im, v), m) for im, v, m in zip(images, valids, masks)]),
            "signature": signatures(images), "silhouette": silhouettes(images, segmenter)}
    rows["p_male"], rows["age"] = gender_age(images, landmarks, None, _device_of(embedder))
    return {k: np.asarray(rows[k], np.float32).reshape(len(images), *FIELDS[k]) for k in FIELDS}


def _networks(embedder, segmenter):
    if embedder is None:
        from facefill.models.embedders import FaceEmbedder

        embedder = FaceEmbedder()
    if segmenter is None:
        from facefill.segment.selfie import SelfieSegmenter

        segmenter = SelfieSegmenter()
    return embedder, segmenter


def describe_files(root: Path, files: list[Path], stats: np.ndarray, size: int, embedder=None, segmenter=None,
                   progress: Progress | None = None) -> tuple[list[str], dict[str, np.ndarray], list[list]]:
    """Read and describe ``files`` (their :func:`file_stats` rows ``stats``): ``(names,
    {field: (N, ...)} and "digests": (N, 16) uint8, skipped)`` with ``skipped`` ``[name, why,
    stats row]`` for files that cannot be donors. ``progress(done, total, name)`` after each usable file."""
    from facefill.align.sidecar import sidecar_path, valid_path

    embedder, segmenter = _networks(embedder, segmenter)
    names, parts, skipped, batch, digests = [], {k: [] for k in FIELDS}, [], [], []

    def flush() -> None:
        rows = describe_batch(np.stack([b[1] for b in batch]), np.stack([b[2] for b in batch]), [b[3] for b in batch],
                              size, embedder, segmenter)
        names.extend(b[0] for b in batch)
        for k, v in rows.items():
            parts[k].append(v)
        batch.clear()

    for k, f in enumerate(files):
        name = f.relative_to(root).as_posix()
        try:
            batch.append((name, *_load_donor(f, size, stats[k])))
            digests.append(file_digest([f, sidecar_path(f), valid_path(f)]))
        except (ValueError, OSError, FacefillError) as exc:
            skipped.append([name, str(exc).replace(str(f) + ": ", ""), [int(v) for v in stats[k]]])
            continue  # not counted in the progress: a bank of nothing but skipped files shows no bar
        if len(batch) == DESCRIPTOR_BATCH:
            flush()
        if progress is not None:
            progress(k + 1, len(files), name)
    if batch:
        flush()
    arrays = {k: np.concatenate(v) if v else np.zeros((0, *FIELDS[k]), np.float32) for k, v in parts.items()}
    arrays["digests"] = np.array(digests, np.uint8).reshape(len(names), 16)
    return names, arrays, skipped


def build_index(root: str | os.PathLike, size: int = 128, embedder=None, progress: Progress | None = None,
                files: list[Path] | None = None, segmenter=None) -> DonorIndex:
    """Read every donor under ``root`` and compute its index entries, with no cache (see
    :func:`load_index`), with ``embedder`` (default :class:`facefill.models.embedders.FaceEmbedder`)
    and ``segmenter`` (default :class:`facefill.segment.selfie.SelfieSegmenter`), each on its own
    device. Files that cannot be donors are listed in ``skipped``."""
    root = Path(root)
    files = _bank_files(root) if files is None else files
    names, arrays, skipped = describe_files(root, files, file_stats(files), size, embedder, segmenter, progress)
    key = index_key(names, arrays.pop("digests"), size)
    return DonorIndex(root, size, names, **arrays, key=key,
                      skipped=[(s[0], s[1]) for s in skipped])


def _bank_files(root: Path) -> list[Path]:
    from facefill.data.io import list_images

    return list_images(root)


@dataclass
class BankState:
    """A bank folder against its cached index, found by listing the bank and ``stat``-ing each
    donor's files (no image read). ``names``/``stats``: the bank now (:func:`scan_bank`); ``cached``: the
    usable cached index or None (``problem``: why a cached one was not usable); ``keep``: per file,
    its row in ``cached`` when its size and mtimes are unchanged, else -1; ``kept_skipped``: the
    cached entries of unchanged files that cannot be donors; ``added``/``changed``/``removed``: names."""

    root: Path
    size: int
    folder: Path
    names: list[str]
    stats: np.ndarray
    cached: Cached | None
    problem: str | None
    keep: np.ndarray
    kept_skipped: list[list] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[Path]:
        return [self.root / n for n in self.names]

    @property
    def fresh(self) -> bool:
        return self.cached is not None and not (self.added or self.changed or self.removed)

    @property
    def todo(self) -> list[int]:
        """Positions in ``files`` of the files to read and describe."""
        done = {s[0] for s in self.kept_skipped}
        return [i for i, n in enumerate(self.names) if self.keep[i] < 0 and n not in done]

    def describe(self) -> str:
        if self.cached is None:
            return "not indexed" + (f" (the cached index was not usable: {self.problem})" if self.problem else "")
        if self.fresh:
            return "fresh"
        return f"stale: {len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed"

    def index(self) -> DonorIndex:
        """The cached index, memory-mapped (only when :attr:`fresh`)."""
        c = self.cached
        return DonorIndex(self.root, self.size, c.names, **c.arrays, key=c.key, cached=True,
                          skipped=[(s[0], s[1]) for s in c.skipped], state="index read from the cache")


def _check_bank(root: Path, cdir: Path) -> None:
    if not root.is_dir():
        raise FacefillError(f"donor bank {root} is not a folder; give a folder of 'facefill align' outputs "
                            "(tools/fetch_faces.sh OUT, then facefill align OUT/celeba BANK)")
    rr = root.resolve()
    if cdir.resolve() == rr or rr in cdir.resolve().parents:
        raise FacefillError(f"the donor index cache {cdir} lies inside the donor bank {root}; the bank is never "
                            "written to: set FACEFILL_CACHE to a folder outside it")


def bank_state(root: str | os.PathLike, size: int = 128, cache: str | os.PathLike | None = None) -> BankState:
    """Compare the bank ``root`` with its cached index (``cache``: default
    :func:`facefill.donor.cache.cache_dir`); reads no image. FacefillError with one line for a
    missing or unreadable bank, or a cache inside it."""
    root = Path(root)
    cdir = Path(cache) if cache is not None else cache_dir()
    _check_bank(root, cdir)
    try:
        names, stats = scan_bank(root)
    except OSError as exc:
        raise FacefillError(f"donor bank {root} cannot be read ({exc.strerror or exc}); check its permissions") from None
    folder = bank_cache(cdir, root, size)
    try:
        cached, problem = read_cache(folder, size)
    except OSError as exc:  # the cache folder itself cannot be read (HOME a file, no permission)
        cached, problem = None, None if isinstance(exc, (FileNotFoundError, NotADirectoryError)) else str(exc.strerror or exc)
    state = BankState(root, size, folder, names, stats, cached, problem, np.full(len(names), -1, np.int64))
    if cached is not None:
        _compare(state, cached)
    return state


def _compare(state: BankState, cached: Cached) -> None:
    old = {n: i for i, n in enumerate(cached.names)}
    old_skipped = {s[0]: s for s in cached.skipped if s[0] not in old}
    rows = np.array([old.get(n, -1) for n in state.names], np.int64)
    hit = np.flatnonzero(rows >= 0)
    same = np.zeros(len(rows), bool)
    same[hit] = (np.asarray(cached.stats[rows[hit]]) == state.stats[hit]).all(1)
    state.keep[same] = rows[same]
    for i, n in enumerate(state.names):
        if same[i]:
            continue
        if n in old_skipped and old_skipped[n][2] == [int(v) for v in state.stats[i]]:
            state.kept_skipped.append(old_skipped[n])
        else:
            (state.changed if rows[i] >= 0 or n in old_skipped else state.added).append(n)
    state.removed = sorted((set(old) | set(old_skipped)) - set(state.names))


def update_index(state: BankState, embedder=None, segmenter=None, progress: Progress | None = None,
                 min_donors: int = MIN_DONORS) -> DonorIndex:
    """Describe the added and changed files of ``state`` (:attr:`BankState.todo`), take every
    unchanged donor's rows from the cache, and cache the result when it has at least
    ``min_donors`` donors. The index's ``notes`` say when a damaged cache was replaced or the
    index could not be cached."""
    todo, cached = state.todo, state.cached
    new_names, new, new_skipped = describe_files(state.root, [state.root / state.names[i] for i in todo], state.stats[todo],
                                                 state.size, embedder, segmenter, progress)
    new_row = {n: j for j, n in enumerate(new_names)}
    listed = [i for i, n in enumerate(state.names) if state.keep[i] >= 0 or n in new_row]
    names = [state.names[i] for i in listed]
    from_cache = state.keep[listed] >= 0
    old_rows, new_rows = state.keep[listed][from_cache], [new_row[n] for n, c in zip(names, from_cache) if not c]
    arrays = {}
    for k, dtype in [*((k, np.float32) for k in FIELDS), ("digests", np.uint8)]:
        a = np.empty((len(names), *new[k].shape[1:]), dtype)
        a[from_cache] = (cached.digests if k == "digests" else cached.arrays[k])[old_rows] if len(old_rows) else 0
        a[~from_cache] = new[k][new_rows] if new_rows else 0
        arrays[k] = a
    digests = arrays.pop("digests")
    skipped = sorted(state.kept_skipped + new_skipped)
    result = Cached(state.size, names, state.stats[listed], digests, arrays, skipped, index_key(names, digests, state.size))
    notes = [f"the cached index in {state.folder} was not used ({state.problem}); it was rebuilt"] if state.problem else []
    how = "index built" if not from_cache.any() else f"index updated: {len(todo)} files read, {int(from_cache.sum())} donors from the cache"
    if len(names) >= min_donors:
        try:
            save_cache(state.folder, result)
            how += " and cached"
        except OSError as exc:
            how += ", not cached"
            notes.append(f"the donor index could not be cached in {state.folder.parent} ({exc.strerror or exc}), so it "
                         "is built again on every run: set FACEFILL_CACHE to a writable folder")
    return DonorIndex(state.root, state.size, names, **arrays, key=result.key, state=how, notes=notes,
                      skipped=[(s[0], s[1]) for s in skipped])


def load_index(root: str | os.PathLike, size: int = 128, embedder=None, progress: Progress | None = None,
               cache: str | os.PathLike | None = None, min_donors: int = MIN_DONORS, segmenter=None) -> DonorIndex:
    """The index of the bank ``root``: read from the cache (memory-mapped) when no donor file was
    added, changed or removed, else brought up to date (:func:`update_index`; only new and changed
    files are described, with ``embedder`` and ``segmenter``: :func:`describe_files`) and cached
    (``cache`` overrides :func:`facefill.donor.cache.cache_dir`; the cache must not lie inside the
    bank). FacefillError with one line when the bank is missing, unreadable or holds fewer than
    ``min_donors`` usable donors."""
    state = bank_state(root, size, cache)
    index = state.index() if state.fresh else update_index(state, embedder, segmenter, progress, min_donors)
    return check_enough(index, len(state.names), min_donors)


def check_enough(index: DonorIndex, images: int, min_donors: int = MIN_DONORS, asked: str = "the inputs are at") -> DonorIndex:
    """``index``, or FacefillError with one line when it has fewer than ``min_donors`` donors
    (of ``images`` listed), or when its donors are 'facefill mask' outputs. When too few donors
    have the index's size because the bank was aligned at another, the line names both sizes and
    the fix; ``asked``: who wants the index's size ("the inputs are at", "--size asks for")."""
    masked = sum(why == MASKED for _, why in index.skipped)
    if masked and masked >= len(index):
        raise FacefillError(f"donor bank {index.root} holds 'facefill mask' outputs ({masked} masked crops: their context is "
                            "black, nothing to take); give the 'facefill align' folder they were made from")
    if len(index) < min_donors:
        root, size = index.root, index.size
        other = Counter(m.group(1) for _, why in index.skipped if (m := _OTHER_SIZE.search(why)) and m.group(1) == m.group(2))
        if other:
            side, n = other.most_common(1)[0]
            raise FacefillError(f"donor bank {root} is aligned at {side}x{side} ({n} of {images} images), {asked} "
                                f"{size}x{size}: align the bank at {size} ('facefill align PHOTOS {root} --size {size}') "
                                f"or use it at {side} (the queries aligned with 'facefill align PHOTOS ALIGNED --size {side}')")
        why = f"; e.g. {index.skipped[0][0]}: {index.skipped[0][1]}" if index.skipped else ""
        raise FacefillError(f"donor bank {root} has {len(index)} usable donors (of {images} images{why}); it needs "
                            f"at least {min_donors} aligned faces of {size}x{size} with sidecars: run 'facefill align PHOTOS {root}'")
    return index
