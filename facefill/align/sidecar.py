"""The files ``align`` writes beside each aligned crop, and how later stages read them.

For ``<name>.png`` (``(S, S, 3) uint8``):

* ``<name>.json``: the sidecar: format version, source photo, backend, output size, eye targets,
  detector score and box (source pixels), the ``(2, 3)`` source->aligned matrix, the 68
  landmarks in aligned pixels, and ``photo_size`` (the photo's ``[height, width]``, upright;
  absent in sidecars written before ``facefill paste``, which checks it). ``mask`` adds a ``"mask"`` entry with its settings.
* ``<name>.valid.png``: ``(S, S) uint8``, 255 where the output pixel was sampled from inside
  the photo and 0 where the eye-centred frame reached past the photo's edge (padding).
  Training ignores invalid pixels in every loss, so a model never learns to draw black bars.
  Written only when some pixel is invalid; no file means every pixel is valid.
* ``<name>.mask.png``: ``(S, S) uint8``, 255 = face, written by ``mask`` and by ``hallucinate``
  beside the output of a photo it aligned and masked on the fly (:func:`write_companions`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from facefill.data.io import MASK_SUFFIX, VALID_SUFFIX, companion_path, read_mask, write_bytes, write_image

SIDECAR_VERSION = 2


def sidecar_path(image_path: str | Path) -> Path:
    return Path(image_path).with_suffix(".json")


def valid_path(image_path: str | Path) -> Path:
    return companion_path(image_path, VALID_SUFFIX)


def read_sidecar(image_path: str | Path) -> dict | None:
    """The alignment sidecar next to an aligned image, or None (missing or not JSON)."""
    path = sidecar_path(image_path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return None
    return data if isinstance(data, dict) else None


def write_sidecar(image_path: str | Path, data: dict) -> Path:
    """Write ``data`` as the sidecar of ``image_path``, atomically (OutputError if it cannot)."""
    return write_bytes(sidecar_path(image_path), json.dumps(data).encode())


def read_valid(image_path: str | Path, size: int | None = None) -> np.ndarray | None:
    """The ``(S, S) float32`` validity mask (1 = from the photo) of an aligned image, or None
    when every pixel is valid (no ``.valid.png``). ``size`` checks the side length."""
    return read_mask(valid_path(image_path), None if size is None else (size, size))


def write_companions(out: str | Path, sidecar: dict, valid: np.ndarray | None,
                     mask: np.ndarray | None = None) -> list[Path]:
    """The files written beside the image ``out`` of one aligned face, before the image itself
    (it marks the face done): with ``mask`` (``(S, S)`` in [0, 1], 1 = face) the binary
    ``<name>.mask.png`` (``mask > 0.5``); ``<name>.valid.png`` when ``valid`` (``(S, S)`` bool, the
    pixels from inside the photo) has an invalid pixel (a stale one is removed otherwise); then the
    sidecar. Returns the files written, in that order."""
    out = Path(out)
    written = []
    if mask is not None:
        written.append(write_image(companion_path(out, MASK_SUFFIX), (np.asarray(mask) > 0.5).astype(np.uint8) * 255))
    if valid is not None and not valid.all():
        written.append(write_image(valid_path(out), valid.astype(np.uint8) * 255))
    else:
        valid_path(out).unlink(missing_ok=True)
    written.append(write_sidecar(out, sidecar))
    return written
