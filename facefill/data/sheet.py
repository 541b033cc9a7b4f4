"""Contact sheets: rows of equally sized ``(S, S, 3) uint8`` images side by side."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facefill.data.io import write_image


def contact_sheet(rows: list[list[np.ndarray | None]]) -> np.ndarray:
    """``rows[i][j]``: ``(S, S, 3) uint8`` or None (a white cell) -> one ``(R*S, C*S, 3)`` image."""
    ref = next(c for row in rows for c in row if c is not None)
    blank = np.full_like(ref, 255)
    return np.concatenate([np.concatenate([c if c is not None else blank for c in row], axis=1) for row in rows], axis=0)


def write_contact_sheet(path: str | Path, rows: list[list[np.ndarray | None]]) -> Path:
    """Write :func:`contact_sheet` of ``rows`` to ``path`` (PNG/JPEG by suffix)."""
    return write_image(path, contact_sheet(rows))


def write_comparison_sheet(path: str | Path, rows: list[list[np.ndarray | None]], max_rows: int) -> Path:
    """``hallucinate``'s contact sheet: the first ``max_rows`` of ``rows`` (each ``[masked,
    output, ..., real or None]``: one output column per variant), without the last column when
    no row has a real photo."""
    rows = rows[:max_rows]
    if all(row[-1] is None for row in rows):  # no real photos known: masked | outputs only
        rows = [row[:-1] for row in rows]
    return write_contact_sheet(path, rows)
