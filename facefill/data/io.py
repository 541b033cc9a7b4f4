"""Image I/O that copes with what real photo folders contain.

:func:`read_image` returns ``(H, W, 3) uint8 RGB`` for JPEG/PNG/WebP/BMP/TIFF files, whatever
they hold: EXIF orientation is applied, grayscale is expanded to RGB, alpha is composited over
white, 16-bit and float images are scaled to 8 bits. Unreadable files raise
:class:`~facefill.errors.ImageError` naming the file.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import warnings
import zlib
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from facefill.errors import ImageError, OutputError, OutputPathError

# OpenCV logs its own warnings to stderr (a truncated PNG: "[ WARN:0@1.7] ... PNG input buffer is
# incomplete") before facefill's one line about the file; facefill reports every such file itself
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")  # a GIF: its first frame
MASK_SUFFIX = ".mask.png"
#: foreground masks written by ``replace-bg --save-masks``; skipped like masks when listing inputs
FG_SUFFIX = ".fg.png"
#: validity masks written by ``align`` (see facefill.align.sidecar)
VALID_SUFFIX = ".valid.png"
#: files beside images that are never inputs themselves
COMPANION_SUFFIXES = (MASK_SUFFIX, FG_SUFFIX, VALID_SUFFIX)


def _open_header(path: str | os.PathLike):
    """PIL's lazy open (reads the header only, so a huge photo is no decompression bomb here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(path)


def _may_have_exif(data: np.ndarray) -> bool:
    """False when the file's bytes hold no EXIF block (most PNGs, BMPs), so reading skips PIL:
    JPEG keeps EXIF in an ``Exif`` APP1 segment near the start, PNG in an ``eXIf`` chunk, WebP in
    an ``EXIF`` chunk; other formats are left to PIL."""
    head = data[:8].tobytes()
    if head.startswith(b"\xff\xd8"):
        return b"Exif\x00" in data[:1 << 17].tobytes()
    if head.startswith(b"\x89PNG"):
        return b"eXIf" in data.tobytes()
    if head.startswith(b"RIFF"):
        return b"EXIF" in data.tobytes()
    return not head.startswith(b"BM")


def _exif_orientation(path: Path) -> int:
    try:
        with _open_header(path) as im:
            return int(im.getexif().get(0x0112, 1))
    except Exception:  # no EXIF, or a format PIL does not know: cv2 decides below
        return 1


def _apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """EXIF orientation tag 1..8 -> upright image."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1, :],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(ops[orientation](img)) if orientation in ops else img


def to_uint8_rgb(img: np.ndarray, channel_order: str = "BGR") -> np.ndarray:
    """Any decoded array (H, W), (H, W, 1|3|4), uint8/uint16/float -> (H, W, 3) uint8 RGB."""
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif img.dtype in (np.float32, np.float64):
        img = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ValueError(f"unsupported pixel type {img.dtype}")
    if img.ndim == 2:
        img = img[:, :, None]
    c = img.shape[2]
    if c == 1:
        return np.repeat(img, 3, axis=2)
    if c == 4:
        alpha = img[:, :, 3:4].astype(np.float32) / 255.0
        rgb = img[:, :, :3].astype(np.float32) * alpha + 255.0 * (1 - alpha)
        img = (rgb + 0.5).astype(np.uint8)
    elif c != 3:
        raise ValueError(f"unsupported channel count {c}")
    return np.ascontiguousarray(img[:, :, ::-1]) if channel_order == "BGR" else img


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_quiet_lock = threading.Lock()
_quiet_depth = [0, 0]  # [decodes running, OpenCV's log level before the first]


@contextmanager
def _quiet_opencv():
    """OpenCV's own log lines off while decoding (a damaged BMP or TIFF logs "[ERROR:0@0.1] ...
    Unexpected end of input stream" before facefill's one line about the file), then back to
    what they were; safe with decodes in several threads."""
    logging = cv2.utils.logging
    with _quiet_lock:
        if _quiet_depth[0] == 0:
            _quiet_depth[1] = logging.getLogLevel()
            logging.setLogLevel(logging.LOG_LEVEL_SILENT)
        _quiet_depth[0] += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth[0] -= 1
            if _quiet_depth[0] == 0:
                logging.setLogLevel(_quiet_depth[1])


def _checked_png(data: np.ndarray) -> np.ndarray:
    """A PNG's bytes checked chunk by chunk before libpng sees them: libpng prints its own
    "libpng error: IDAT: CRC error" / "PNG input buffer is incomplete" lines on stderr, which no
    log level silences. A file cut short or a critical chunk failing its CRC raises ValueError
    (why); ancillary chunks failing theirs (libpng would warn and skip them) are left out.
    Other formats are returned as they are."""
    buf = memoryview(data)
    if bytes(buf[:8]) != _PNG_SIGNATURE:
        return data
    pos, bad = 8, []
    while True:
        if pos + 12 > len(buf):
            raise ValueError("a PNG cut short (its end is missing)")
        length, kind = int.from_bytes(buf[pos:pos + 4], "big"), bytes(buf[pos + 4:pos + 8])
        end = pos + 12 + length
        if end > len(buf):
            raise ValueError(f"a PNG cut short (in its {kind.decode('latin-1')!r} chunk)")
        if zlib.crc32(buf[pos + 4:end - 4]) != int.from_bytes(buf[end - 4:end], "big"):
            if not kind[:1].islower():  # a critical chunk (IHDR, IDAT, PLTE, IEND)
                raise ValueError(f"a damaged PNG (its {kind.decode('latin-1')!r} chunk fails its CRC check)")
            bad.append((pos, end))
        if kind == b"IEND":
            break
        pos = end
    for start, stop in reversed(bad):
        data = np.concatenate([data[:start], data[stop:]])
    return data


_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def image_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """``(height, width)`` as stored (before EXIF rotation) from the file's header, without
    decoding the pixels; None when the header cannot be read."""
    try:
        with _open_header(path) as im:
            return im.size[1], im.size[0]
    except Exception:  # unreadable or unknown to PIL: read_image reports it properly
        return None


def _decode(path: Path, data: np.ndarray, flag: int) -> np.ndarray | None:
    """``cv2.imdecode`` with nothing printed on stderr for a damaged file (None then; ImageError
    naming what is wrong with a damaged PNG)."""
    if not data.size:
        return None
    try:
        data = _checked_png(data)
    except ValueError as exc:
        raise ImageError(f"{path}: not a readable image ({exc}); remove or re-export it") from None
    with _quiet_opencv():
        return cv2.imdecode(data, flag)


def read_image(path: str | os.PathLike, reduce: int = 1) -> np.ndarray:
    """Read ``path`` as ``(H, W, 3) uint8 RGB``, upright. ImageError if unreadable.

    ``reduce`` 2, 4 or 8 decodes at that fraction of the size (``ceil(H / reduce)``; JPEG
    decodes straight to it, which is fast and small for huge photos; other formats are decoded
    whole and shrunk). An alpha channel is then dropped rather than composited on white."""
    path = Path(path)
    if reduce != 1 and reduce not in _REDUCED:
        raise ValueError(f"reduce must be 1, 2, 4 or 8, not {reduce}")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ImageError(f"{path}: cannot open ({exc.strerror})") from None
    # the reduced decoders apply EXIF orientation themselves; _apply_orientation below does it once
    flag = cv2.IMREAD_UNCHANGED if reduce == 1 else _REDUCED[reduce] | cv2.IMREAD_IGNORE_ORIENTATION
    img = _decode(path, data, flag)
    if img is None:
        raise ImageError(f"{path}: not a readable image (corrupt or unsupported format); remove or re-export it")
    try:
        img = to_uint8_rgb(img)
    except ValueError as exc:
        raise ImageError(f"{path}: {exc}") from None
    return _apply_orientation(img, _exif_orientation(path)) if _may_have_exif(data) else img


def write_image(path: str | os.PathLike, rgb: np.ndarray) -> Path:
    """Write ``(H, W, 3)`` uint8 RGB (or ``(H, W)`` gray) atomically; the format follows the suffix.
    OutputError (naming the file) when it cannot be written."""
    path = Path(path)
    arr = rgb if rgb.ndim == 2 else np.ascontiguousarray(rgb[:, :, ::-1])
    ok, buf = cv2.imencode(path.suffix or ".png", arr)
    if not ok:  # pragma: no cover - cv2 only fails on unknown suffixes
        raise ImageError(f"{path}: cannot encode an image with this suffix")
    write_bytes(path, buf.tobytes())
    return path


def write_target(path: str | os.PathLike) -> tuple[Path, bool]:
    """Where a write to ``path`` goes, and whether it may go through a temporary file and a
    rename: a symbolic link is written through (its target gets the data, the link stays, as
    the shell's ``>`` does); a device, FIFO or socket (``/dev/null``, ``/dev/stdout``) is written
    into, never replaced by a regular file."""
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    try:
        mode = path.stat().st_mode
    except OSError:
        return path, True
    return path, stat.S_ISREG(mode) or stat.S_ISDIR(mode)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file + rename), creating folders; through
    a symbolic link and into a device or FIFO (:func:`write_target`). OutputError (naming the
    file) when it cannot be written; OutputPathError (that input fails, a batch goes on) when a
    folder sits at ``path`` or a file where a folder is needed."""
    given = Path(path)
    path, atomic = write_target(given)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if not atomic:
            with open(path, "wb") as fh:
                fh.write(data)
            return given
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(exc, (IsADirectoryError, NotADirectoryError, FileExistsError)):
            raise OutputPathError(f"cannot write {path}: a folder of that name, or a file where a folder is needed, "
                                  "is in the way; rename or move it") from None
        raise OutputError(f"cannot write {given} ({exc.strerror or exc}); check the output folder's "
                          "permissions and free space") from None
    return given


def list_images(root: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Image files under ``root`` (sorted; hidden files skipped, and companions: ``x.mask.png``,
    ``x.fg.png``, ``x.valid.png`` beside an image ``x.*``; one with no such image is listed, so a
    command fails it loudly instead of losing it). A single file is returned as a one-element
    list. What cannot be listed is left out here; :func:`scan_images` says what and why."""
    return scan_images(root, recursive)[0]


def scan_images(root: str | os.PathLike, recursive: bool = True) -> tuple[list[Path], list[tuple[Path, str]]]:
    """``(images, problems)``: the images of :func:`list_images`, and ``(path, reason)`` for
    everything under ``root`` that looks like an input but cannot be taken, so a batch can fail
    it loudly instead of dropping it: a folder that cannot be read, a link to nothing, a link
    loop. Linked folders are followed (each real folder once)."""
    root = Path(root)
    if root.is_file():
        return [root], []
    found, problems, seen = [], [], set()

    def walk(folder: Path) -> None:
        try:
            st = folder.stat()
            if (st.st_dev, st.st_ino) in seen:
                if folder != root:
                    problems.append((folder, f"{folder}: a link back to a folder already listed (a loop); "
                                             "its images are not taken twice"))
                return
            seen.add((st.st_dev, st.st_ino))
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            problems.append((folder, f"{folder}: cannot list this folder ({exc.strerror or exc}); "
                                     "fix its permissions and run again"))
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                is_dir, is_file = entry.is_dir(), entry.is_file()
            except OSError as exc:  # a link loop (ELOOP), a vanished file
                problems.append((path, f"{path}: cannot be read ({exc.strerror or exc})"))
                continue
            if is_dir:
                if recursive:
                    walk(path)
            elif is_file:
                if path.suffix.lower() in IMAGE_EXTENSIONS:
                    found.append(path)
            elif entry.is_symlink() and (path.suffix.lower() in IMAGE_EXTENSIONS or not path.suffix):
                try:
                    os.stat(path)
                except OSError as exc:  # a link to nothing (an image, or maybe a folder), or a loop
                    why = "a link loop" if exc.errno == errno.ELOOP else f"a link to {os.readlink(path)}, which does not exist"
                    problems.append((path, f"{path}: {why}; fix or remove the link"))

    walk(root)
    stems = {(p.parent, p.stem) for p in found}

    def companion(p: Path) -> bool:
        return any(p.name.endswith(s) and (p.parent, p.name[: -len(s)]) in stems for s in COMPANION_SUFFIXES)

    return sorted(p for p in found if not companion(p)), sorted(problems)


def companion_path(image_path: str | os.PathLike, suffix: str) -> Path:
    """The file of kind ``suffix`` (:data:`MASK_SUFFIX`, :data:`FG_SUFFIX`, :data:`VALID_SUFFIX`)
    beside an image: ``x.png`` -> ``x.mask.png``."""
    p = Path(image_path)
    return p.with_name(p.stem + suffix)


def read_mask(path: str | os.PathLike, shape: tuple[int, int] | None = None) -> np.ndarray | None:
    """A binary mask PNG (``x.mask.png``, ``x.valid.png``, ``x.fg.png``) as ``(H, W) float32`` in
    {0, 1} (pixels > 127 are 1), or None when the file is missing, unreadable, or not ``shape``
    (when given). The one place facefill reads and thresholds a mask file."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        m = _decode(path, np.fromfile(path, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    except (OSError, ImageError):
        return None
    if m is None or (shape is not None and m.shape != tuple(shape)):
        return None
    return (m > 127).astype(np.float32)
