"""Release weights: safetensors holding G_ema only, config and versions in the header metadata.

A release file rebuilds its model from itself alone (:func:`load_generator`), with no pickled
code. It holds the generator's weights (no buffers, no optimiser, no discriminator) and these
metadata strings: ``format`` ("facefill-generator"), ``format_version``, ``facefill_version``,
the resolved ``config`` as JSON, ``stage`` (the index of the last block trained: 4 for a
128 px cascade; less for a progressive run exported before it grew to full size), plus any
extra strings given (``step``, ``note``...).

Files from facefill <= 0.1 may hold the progressive ``stage``/``alpha`` as tensors and the old
``[loss]`` keys in their config; both still load (the tensors are dropped, their stage read).
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
from facefill.models.generator import LEGACY_BUFFERS, split_legacy_buffers
from facefill.weights import file_kind

FORMAT = "facefill-generator"
FORMAT_VERSION = 1
RELEASE_NAME = "generator.safetensors"


def save_release(
    path: str | os.PathLike,
    generator: torch.nn.Module,
    cfg: Config,
    dtype: torch.dtype | None = None,
    extra: dict[str, str] | None = None,
    stage: int | None = None,
) -> Path:
    """Write ``generator``'s weights (optionally cast, e.g. fp16) and ``cfg`` to ``path``.

    ``stage``: the last block index trained (default: all of ``cfg.generator.scales``). The
    file is written atomically.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    last = len(cfg.generator.scales) - 1
    state = {}
    for k, v in generator.state_dict().items():
        if k in LEGACY_BUFFERS:
            continue
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
        "stage": str(last if stage is None else stage),
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
        kind = file_kind(path)
        run = path.parent.parent if path.parent.name == "checkpoints" else Path("RUN")
        if kind == "torch":
            raise CheckpointError(f"{path} is a training state (a torch pickle), not release weights; "
                                  f"use {run / RELEASE_NAME}") from None
        what = "a plain Python pickle" if kind == "pickle" else f"not a readable safetensors file: {exc}"
        raise CheckpointError(f"{path} is not release weights ({what}); give the {RELEASE_NAME} that "
                              f"'facefill train' writes (e.g. {run / RELEASE_NAME})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is a safetensors file but not a facefill generator (format={meta.get('format')!r}); "
            "use the .safetensors written by 'facefill train'"
        )
    version = meta.get("format_version", "0")
    if not version.isdigit():
        raise CheckpointError(f"{path}: its format_version {version[:40]!r} is not a number; the file was not "
                              "written by 'facefill train' (re-export it)")
    if int(version) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format version {meta['format_version']}, newer than this facefill "
            f"({FORMAT_VERSION}); upgrade facefill"
        )
    return meta


def _check_stage(path: Path, stage: int, cfg: Config) -> None:
    scales = cfg.generator.scales
    last = len(scales) - 1
    if stage >= last:
        return
    run = path.parent if path.name == RELEASE_NAME else "RUN"
    raise CheckpointError(
        f"{path} was exported at progressive stage {stage} ({scales[stage]} px); the model makes "
        f"{scales[-1]} px only after stage {last}: train longer (--resume {run}) and use the "
        f"{RELEASE_NAME} written then"
    )


def load_generator(
    path: str | os.PathLike, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[torch.nn.Module, Config]:
    """Rebuild the generator from a release file alone. Returns ``(G in eval mode, config)``.

    Refuses (CheckpointError) a progressive release exported before its last block was grown:
    it cannot produce the full-resolution output that inference needs.
    """
    from facefill.models import build_generator

    path = Path(path)
    meta = read_metadata(path)
    try:
        stored = json.loads(meta["config"])
        if not isinstance(stored, dict):
            raise ConfigError(f"a JSON {type(stored).__name__}, not a table of sections")
        cfg = from_dict(stored)
    except (KeyError, json.JSONDecodeError, ConfigError) as exc:
        raise CheckpointError(f"{path}: its stored config cannot be read ({exc})") from None
    state, legacy_stage = split_legacy_buffers(load_file(str(path)))
    try:
        stage = int(meta["stage"]) if "stage" in meta else legacy_stage
    except ValueError:
        raise CheckpointError(f"{path}: its stage metadata {meta['stage'][:40]!r} is not a number") from None
    if stage is not None and not 0 <= stage < len(cfg.generator.scales):
        raise CheckpointError(f"{path}: its stage metadata {stage} is not a block of its config "
                              f"(0 to {len(cfg.generator.scales) - 1}); re-export it with 'facefill train'")
    bad = next((k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())), None)
    if bad is not None:
        raise CheckpointError(f"{path}: its weights hold NaN or infinite values ({bad}); the training diverged or "
                              "the file is damaged: use an earlier checkpoint")
    if stage is not None:
        _check_stage(path, stage, cfg)
    with torch.device("meta"):
        G = build_generator(cfg)
    try:
        G.load_state_dict({k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}, assign=True)
    except RuntimeError as exc:  # torch's message lists every key on its own line: keep one
        lines = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
        raise CheckpointError(f"{path}: weights do not fit the stored config "
                              f"({lines[0][:200] if lines else exc}); re-export it with 'facefill train'") from None
    return G.to(device).eval(), cfg
