"""The donor index cache: where it lives, what it holds, reading it (never trusted) and saving it.

Each bank has one folder in the cache (:func:`bank_cache`: ``cache_dir()/<digest of the bank's
resolved path and image size>``), **outside** the bank:

* ``manifest.json``: the format version, size, bank path, the donors' names, the files that could
  not be donors (with why), the generation of the arrays, their checksums, and the index's ``key``;
* ``<array>.<generation>.npy``, one per entry of :data:`FIELDS`, and ``stats.<generation>.npy``
  ``(N, 6) int64``: size and mtime (ns) of each donor's image, sidecar and validity mask when it
  was described, and ``digests.<generation>.npy`` ``(N, 16) uint8``: a digest of their bytes. Arrays are read memory-mapped (``mmap_mode="r"``): every ``--shard`` process on
  a machine shares one copy in the page cache.

A save writes a new generation, then replaces the manifest atomically, then removes the old
generation's files (a reader that mapped them keeps its copy). :func:`read_cache` checks
everything it reads (:func:`check_manifest`, shapes, dtypes, finite values, checksums) and
returns the reason instead of an index when anything is off: the caller rebuilds and says why.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

INDEX_VERSION = 5  # 3: memory-mapped arrays per bank; 4: p_male and age; 5: padding counts baked streaks

#: Every per-donor array of the index: name -> the shape of one donor's row (``()``: a scalar).
#: Build, update, cache and checks are all driven by this table: a new array needs its entry here,
#: a field of :class:`facefill.donor.source.DonorIndex` and its computation in
#: :func:`facefill.donor.index.describe_batch`; nothing else.
FIELDS: dict[str, tuple[int, ...]] = {"landmarks": (68, 2), "descriptors": (128,), "skin": (6,), "pose": (2,),
                                      "padding": (), "signature": (192,), "silhouette": (256,),
                                      "p_male": (), "age": ()}
ARRAYS = tuple(FIELDS)
MANIFEST = "manifest.json"


def cache_dir() -> Path:
    """Where donor indexes are cached: ``$FACEFILL_CACHE/donors``, else
    ``$XDG_CACHE_HOME/facefill/donors`` (default ``~/.cache/facefill/donors``)."""
    root = os.environ.get("FACEFILL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "facefill")
    return Path(root) / "donors"


def bank_cache(cdir: Path, root: Path, size: int) -> Path:
    """The cache folder of bank ``root`` at ``size`` px under ``cdir``."""
    ident = f"facefill-donor-index/{INDEX_VERSION}/{size}/{Path(root).resolve()}"
    return cdir / hashlib.sha256(ident.encode()).hexdigest()[:24]


@dataclass
class Cached:
    """An index as cached: ``names`` (N), ``stats (N, 6) int64``, ``digests (N, 16) uint8``
    (:func:`file_digest` of each donor's files), ``arrays`` (:data:`FIELDS`, each ``(N, *shape)
    float32``, memory-mapped when read), ``skipped``: ``[name, why, stats (6 ints)]`` for files
    that could not be donors, ``key``: :func:`index_key`."""

    size: int
    names: list[str]
    stats: np.ndarray
    digests: np.ndarray
    arrays: dict[str, np.ndarray]
    skipped: list[list] = field(default_factory=list)
    key: str = ""


def index_key(names: list[str], digests: np.ndarray, size: int) -> str:
    """The bank's content key for run records: a digest of the donors' names and of each one's
    file contents (``digests (N, 16) uint8``, :func:`file_digest`, taken when it was described). A
    file touched but not changed is described again and gives the same key."""
    h = hashlib.sha256(f"facefill-donor-bank/{size}\0".encode() + "\0".join(names).encode())
    h.update(np.ascontiguousarray(digests, np.uint8).tobytes())
    return h.hexdigest()[:32]


def file_digest(paths: list[Path]) -> np.ndarray:
    """``(16,) uint8``: a digest of the bytes of ``paths`` (regular files; a missing one counts as absent)."""
    h = hashlib.blake2b(digest_size=16)
    for p in paths:
        try:
            h.update(hashlib.sha256(p.read_bytes()).digest())
        except FileNotFoundError:
            h.update(b"-")
    return np.frombuffer(h.digest(), np.uint8)


def _digest(a: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(a).data, digest_size=16).hexdigest()


def save_cache(folder: Path, cached: Cached) -> None:
    """Write ``cached`` under ``folder`` as a new generation (OSError when it cannot)."""
    folder.mkdir(parents=True, exist_ok=True)
    old = _read_json(folder / MANIFEST)
    gen = secrets.token_hex(6)
    arrays = {**{k: np.ascontiguousarray(v, np.float32) for k, v in cached.arrays.items()},
              "stats": np.ascontiguousarray(cached.stats, np.int64), "digests": np.ascontiguousarray(cached.digests, np.uint8)}
    for k, v in arrays.items():
        _atomic(folder / f"{k}.{gen}.npy", lambda f, v=v: np.save(f, v, allow_pickle=False))
    manifest = {"version": INDEX_VERSION, "size": cached.size, "generation": gen, "names": cached.names,
                "skipped": cached.skipped, "key": cached.key, "count": len(cached.names),
                "checksums": {k: _digest(v) for k, v in arrays.items()}}
    _atomic(folder / MANIFEST, lambda f: f.write(json.dumps(manifest).encode()))
    if isinstance(old, dict) and isinstance(old.get("generation"), str) and old["generation"] != gen:
        for p in folder.glob(f"*.{old['generation']}.npy"):
            p.unlink(missing_ok=True)


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _read_json(path: Path):
    try:
        if not path.is_file():
            return None
        return json.loads(path.read_bytes().decode())
    except (OSError, ValueError):
        return None


_GEN = re.compile(r"[0-9a-f]{12}")


def check_name(name) -> bool:
    """A donor name as the index may hold it: a relative '/'-separated path inside the bank."""
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name:
        return False
    p = PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts and "." not in p.parts and str(p) == name


def check_manifest(m, size: int) -> str | None:
    """What is wrong with a manifest for an index at ``size`` px, or None."""
    if not isinstance(m, dict):
        return "its manifest is not a JSON object"
    if m.get("version") != INDEX_VERSION:
        return f"it is of format {m.get('version')!r}, not {INDEX_VERSION}"
    if m.get("size") != size:
        return f"it is for {m.get('size')!r} px donors, not {size}"
    names, skipped = m.get("names"), m.get("skipped")
    if not isinstance(names, list) or not all(check_name(n) for n in names) or len(set(names)) != len(names):
        return "its donor names are missing or not paths inside the bank"
    if not isinstance(skipped, list) or not all(isinstance(s, list) and len(s) == 3 and check_name(s[0])
                                                and isinstance(s[1], str) and _stat_row(s[2]) for s in skipped):
        return "its list of skipped files is damaged"
    if m.get("count") != len(names) or not isinstance(m.get("key"), str):
        return "its donor count or key is damaged"
    if not isinstance(m.get("generation"), str) or not _GEN.fullmatch(m["generation"]) or not isinstance(m.get("checksums"), dict):
        return "its array list is damaged"
    return None


def _stat_row(row) -> bool:
    return isinstance(row, list) and len(row) == 6 and all(type(v) is int for v in row)


def read_cache(folder: Path, size: int) -> tuple[Cached | None, str | None]:
    """``(the index cached in folder, None)``, or ``(None, why not)``: ``why`` is None when
    nothing is cached, else one phrase saying what was wrong (damaged, old format...)."""
    manifest = folder / MANIFEST
    if not manifest.exists():
        return None, None
    m = _read_json(manifest)
    if m is None:
        return None, "its manifest is unreadable or not JSON"
    why = check_manifest(m, size)
    if why:
        return None, why
    n, arrays = len(m["names"]), {}
    for k, shape, dtype in [*((k, s, np.float32) for k, s in FIELDS.items()), ("stats", (6,), np.int64),
                            ("digests", (16,), np.uint8)]:
        path = folder / f"{k}.{m['generation']}.npy"
        try:
            a = np.load(path, mmap_mode="r", allow_pickle=False) if path.is_file() else None
        except (OSError, ValueError, EOFError):
            a = None
        if a is None or a.dtype != dtype or a.shape != (n, *shape):
            return None, f"its {k} array is missing or not {(n, *shape)} {np.dtype(dtype).name}"
        if m["checksums"].get(k) != _digest(a):
            return None, f"its {k} array does not match its checksum"
        if dtype is np.float32 and not np.isfinite(a).all():
            return None, f"its {k} array holds NaN or infinite values"
        arrays[k] = a
    stats, digests = arrays.pop("stats"), arrays.pop("digests")
    if index_key(m["names"], digests, size) != m["key"]:
        return None, "its key does not match its donors"
    return Cached(size, list(m["names"]), stats, digests, arrays, [list(s) for s in m["skipped"]], m["key"]), None
