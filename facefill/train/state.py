"""Training-state checkpoints: one ``torch.save`` dict of plain types and state_dicts.

Loadable with ``torch.load(weights_only=True)``: nothing but tensors, numbers, strings, lists
and dicts goes in (RNG states included, as tensors or lists), never pickled objects. Files are
written atomically (temporary file + rename) so an interrupted save never leaves a broken one.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facefill.errors import CheckpointError

STATE_FORMAT_VERSION = 1


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and CUDA) RNG states as weights_only-safe values."""
    py = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Atomically ``torch.save`` ``state`` (plus ``format_version``) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format_version": STATE_FORMAT_VERSION, **state}, tmp)
    os.replace(tmp, path)
    return path


def load_state(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a training-state file with ``weights_only=True``; CheckpointError when unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"training state {path} not found; pass a file written by 'facefill train'")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for corrupt files
        raise CheckpointError(f"{path} is not a readable facefill training state ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(f"{path} is not a facefill training state (no format_version)")
    if state["format_version"] > STATE_FORMAT_VERSION:
        raise CheckpointError(f"{path} has state format {state['format_version']}; upgrade facefill")
    return state
