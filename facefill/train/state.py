"""Training-state checkpoints: one ``torch.save`` dict of plain types and state_dicts.

Loadable with ``torch.load(weights_only=True)``: nothing but tensors, numbers, strings, lists
and dicts goes in (RNG states included, as tensors or lists), never pickled objects. Files are
written atomically (temporary file + rename) so an interrupted save never leaves a broken one.
"""

from __future__ import annotations

import os
import random
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from facefill.errors import CheckpointError
from facefill.weights import why_unloadable

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


#: What a training state written by :mod:`facefill.train.loop` holds besides ``format_version``.
STATE_KEYS = ("config", "step", "epoch", "pos", "G", "D", "G_ema", "opt_g", "opt_d", "rng")




def load_state(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a training-state file with ``weights_only=True``; a one-line CheckpointError
    ("X is not a facefill training state (why)") when it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"training state {path} not found; pass a file written by 'facefill train'")
    try:
        with warnings.catch_warnings():  # torch warns of pickle protocols it was not written with
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for corrupt or foreign files
        # torch's own messages run over many lines and advise weights_only=False: never needed
        raise CheckpointError(f"{path} is not a facefill training state ({why_unloadable(path, exc)})") from None
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(f"{path} is not a facefill training state (no format_version)")
    if not isinstance(state["format_version"], int) or state["format_version"] > STATE_FORMAT_VERSION:
        raise CheckpointError(f"{path} has state format {state['format_version']!r}, newer than this facefill "
                              f"({STATE_FORMAT_VERSION}); upgrade facefill")
    return state


def check_training_state(path: Path, state: dict[str, Any]) -> dict[str, Any]:
    """``state`` if it holds everything a resume needs; else a one-line CheckpointError."""
    missing = [k for k in STATE_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path} is not a facefill training state (no {', '.join(missing)})")
    return state


def state_files(ckpt_dir: Path) -> list[Path]:
    """``ckpt_dir/state_<step>.pt`` files, newest (highest step) first."""
    def step_of(p: Path) -> int:
        digits = p.stem.removeprefix("state_")
        return int(digits) if digits.isdigit() else -1

    return sorted(ckpt_dir.glob("state_*.pt"), key=lambda p: (step_of(p), p.name), reverse=True)


def newest_good_state(ckpt_dir: Path, on_message: Callable[[str], None] = lambda msg: None
                      ) -> tuple[Path, dict[str, Any]]:
    """The newest loadable training state in ``ckpt_dir``. A bad one (corrupt, foreign, cut
    short) is reported through ``on_message`` and the next older one is tried. CheckpointError
    when there is none at all (naming the newest file's problem)."""
    files = state_files(ckpt_dir)
    if not files:
        raise CheckpointError(f"nothing to resume in {ckpt_dir.parent}: no checkpoints/state_*.pt "
                              "(start without --resume)")
    first_error: CheckpointError | None = None
    for path in files:
        try:
            return path, check_training_state(path, load_state(path))
        except CheckpointError as exc:
            first_error = first_error or exc
            on_message(f"{exc}; trying an older checkpoint")
    raise CheckpointError(f"{first_error}; no usable state in {ckpt_dir} to resume from")
