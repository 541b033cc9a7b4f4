"""The donor index cache: where it lives, the key a bank's contents give, reading and saving.

The index is cached **outside** the bank (:func:`cache_dir`) under a key made of the bank's file
contents, the image size and :data:`INDEX_VERSION` (:func:`bank_key`); a changed, added or removed
file gives a new key. A damaged or old-format file reads as None (rebuilt, never trusted).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from facefill.donor.source import DonorIndex

INDEX_VERSION = 3  # 3: p_male and age
ARRAYS = ("landmarks", "descriptors", "skin", "pose", "padding", "signature", "silhouette", "p_male", "age")


def cache_dir() -> Path:
    """Where donor indexes are cached: ``$FACEFILL_CACHE/donors``, else
    ``$XDG_CACHE_HOME/facefill/donors`` (default ``~/.cache/facefill/donors``)."""
    root = os.environ.get("FACEFILL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "facefill")
    return Path(root) / "donors"


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


def save_index(index: DonorIndex, path: Path) -> None:
    """Write ``index`` to ``path`` atomically (OSError when it cannot)."""
    buf = io.BytesIO()
    meta = {"version": INDEX_VERSION, "size": index.size, "names": index.names, "skipped": index.skipped,
            "root": str(index.root)}
    np.savez(buf, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **index.arrays())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


def read_index(path: Path, root: Path, key: str) -> DonorIndex | None:
    """The index cached at ``path`` for the bank ``root``, or None (missing, damaged, old format)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            arrays = {k: z[k] for k in ARRAYS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError):
        return None  # a damaged cache file is rebuilt, never trusted
    if meta.get("version") != INDEX_VERSION or len(meta["names"]) != len(arrays["descriptors"]):
        return None
    return DonorIndex(root, int(meta["size"]), list(meta["names"]), key=key, cached=True,
                      skipped=[tuple(s) for s in meta["skipped"]], **arrays)
