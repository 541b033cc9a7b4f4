#!/usr/bin/env python3
"""Before | after pairs of every output two ``hallucinate`` runs made differently, for recounting.

    python tools/donor_changed.py OLD NEW SHEET.png [--level 12] [--pixels 15] [--scale 2]

OLD and NEW are two output folders of the same inputs (two settings, two versions of the code).
An output counts as changed where more than ``--pixels`` of its pixels differ by more than
``--level`` grey levels in some channel; each changed output is drawn as its OLD and NEW images
side by side, its name on it, three pairs a row, and listed on stdout with its count. An output
whose verdict (flawed or clean) cannot have moved is one that did not change: recount only the
pairs (docs/donor.md, "The donor's hair over the face's band"). Keep SHEET outside the
repository when the faces or the bank are CelebA photos (non-commercial research only).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

COMPANIONS = (".mask.png", ".valid.png", ".fg.png")


def changed(old: Path, new: Path, level: int, pixels: int) -> list[tuple[str, int]]:
    """``(relative path, pixels changed)`` of every image under ``new`` that differs from the one of
    the same path under ``old`` (companion masks left out), in path order. An image missing
    from ``old`` counts every pixel."""
    from facefill.data.io import read_image

    out = []
    for path in sorted(p for p in new.rglob("*.png") if not p.name.endswith(COMPANIONS)):
        rel = path.relative_to(new)
        b = read_image(path).astype(np.int16)
        a = read_image(old / rel).astype(np.int16) if (old / rel).is_file() else None
        n = b.shape[0] * b.shape[1] if a is None or a.shape != b.shape else int(
            (np.abs(a - b).max(-1) > level).sum())
        if n > pixels:
            out.append((rel.as_posix(), n))
    return out


def pair_sheet(old: Path, new: Path, names: list[str], per_row: int = 3) -> np.ndarray:
    """``(H, W, 3) uint8``: OLD | NEW of each name, with its name written on, ``per_row`` a row."""
    import cv2

    from facefill.data.io import read_image

    tiles = []
    for name in names:
        b = read_image(new / name)
        a = read_image(old / name) if (old / name).is_file() else np.zeros_like(b)
        tile = np.concatenate([a, np.full((b.shape[0], 2, 3), 255, np.uint8), b], 1)
        cv2.putText(tile, Path(name).stem, (2, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (255, 255, 0), 1)
        tiles.append(np.pad(tile, ((0, 4), (0, 8), (0, 0)), constant_values=255))
    while len(tiles) % per_row:
        tiles.append(np.full_like(tiles[0], 255))
    return np.concatenate([np.concatenate(tiles[i:i + per_row], 1) for i in range(0, len(tiles), per_row)], 0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("sheet", type=Path)
    ap.add_argument("--level", type=int, default=12, help="grey levels a pixel must move by to count")
    ap.add_argument("--pixels", type=int, default=15, help="pixels that must move for an output to count")
    ap.add_argument("--scale", type=float, default=2.0, help="enlarge the sheet by this factor")
    args = ap.parse_args(argv)
    for folder in (args.old, args.new):
        if not folder.is_dir():
            print(f"{folder}: not a folder; give two hallucinate output folders", file=sys.stderr)
            return 2
    rows = changed(args.old, args.new, args.level, args.pixels)
    for name, n in rows:
        print(f"{name}\t{n}")
    print(f"{len(rows)} outputs changed", file=sys.stderr)
    if rows:
        import cv2

        from facefill.data.io import write_image

        sheet = pair_sheet(args.old, args.new, [name for name, _ in rows])
        write_image(args.sheet, cv2.resize(sheet, None, fx=args.scale, fy=args.scale, interpolation=cv2.INTER_CUBIC))
    return 0


if __name__ == "__main__":
    sys.exit(main())
