"""Release weights: safetensors holding G_ema only, config and versions in the header metadata.

A release file rebuilds its model from itself alone (:func:`load_generator`), with no pickled
code: the metadata carries ``format`` ("facefill-generator"), ``format_version``,
``facefill_version`` and the resolved ``config`` as JSON, plus any extra strings given.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from facefill import __version__
from facefill.config import Config, from_dict, to_dict
from facefill.errors import CheckpointError, ConfigError

FORMAT = "facefill-generator"
FORMAT_VERSION = 1


def save_release(
    path: str | os.PathLike,
    generator: torch.nn.Module,
    cfg: Config,
    dtype: torch.dtype | None = None,
    extra: dict[str, str] | None = None,
) -> Path:
    """Write ``generator``'s weights (optionally cast, e.g. fp16) and ``cfg`` to ``path``.

    Buffers are included (the progressive stage/alpha). The file is written atomically.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {}
    for k, v in generator.state_dict().items():
        v = v.detach().to("cpu").contiguous()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        state[k] = v
    meta = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "facefill_version": __version__,
        "config": json.dumps(to_dict(cfg)),
        **(extra or {}),
    }
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The header metadata of a release file; CheckpointError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found; pass --checkpoint with a .safetensors file written by 'facefill train'")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for malformed headers
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc}); re-export it with 'facefill train'") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is a safetensors file but not a facefill generator (format={meta.get('format')!r}); "
            "use the .safetensors written by 'facefill train'"
        )
    if int(meta.get("format_version", "0")) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format version {meta['format_version']}, newer than this facefill "
            f"({FORMAT_VERSION}); upgrade facefill"
        )
    return meta


def load_generator(
    path: str | os.PathLike, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[torch.nn.Module, Config]:
    """Rebuild the generator from a release file alone. Returns ``(G in eval mode, config)``."""
    from facefill.models import build_generator

    meta = read_metadata(path)
    try:
        cfg = from_dict(json.loads(meta["config"]))
    except (KeyError, json.JSONDecodeError, ConfigError) as exc:
        raise CheckpointError(f"{path}: its stored config cannot be read ({exc})") from None
    with torch.device("meta"):
        G = build_generator(cfg)
    state = load_file(str(path))
    try:
        G.load_state_dict({k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}, assign=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the stored config ({exc})") from None
    return G.to(device).eval(), cfg
