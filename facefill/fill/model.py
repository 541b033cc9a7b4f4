"""The generator (``--method model``) as a :class:`ContextFiller`: a release file (``--checkpoint``)
or the model shipped with facefill, run on the device under autocast."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from facefill.config import AlignConfig, Config, MaskConfig
from facefill.data.batch import Progress
from facefill.data.tensors import to_uint8
from facefill.fill.base import ContextFiller, FillBatch, Filled
from facefill.runtime import autocast


def default_model_path() -> Path:
    """The generator weights shipped inside the package (see docs/model-card.md)."""
    from facefill.weights import find

    return find("default-generator")


def load_model(checkpoint: str | os.PathLike | None = None, device: str | torch.device = "cpu"
               ) -> tuple[torch.nn.Module, Config]:
    """G (eval, fp32) and its config from a release file, or the shipped default model, with the
    output block's last conv padded by replication: zero padding, as trained, drew a 2 px frame
    round every output (:meth:`facefill.models.generator.CascadedGenerator.pad_output`)."""
    from facefill.models.release import load_generator

    path = Path(checkpoint) if checkpoint is not None else default_model_path()
    G, cfg = load_generator(path, device=device)
    if cfg.generator.scales[-1] < 16:  # aligned faces are >= 16 px (AlignConfig.size)
        from facefill.errors import CheckpointError

        raise CheckpointError(f"{path} makes {cfg.generator.scales[-1]} px images (generator.scales="
                              f"{list(cfg.generator.scales)}), but hallucinate needs aligned faces of at least 16 px: "
                              f"train with scales up to 16 px or more (e.g. --set generator.scales=[8,16])")
    return G.pad_output("replicate"), cfg


class ModelFill(ContextFiller):
    """The cascaded generator. ``checkpoint``: its release file (None: the shipped default);
    ``precision``: autocast on the device (:data:`facefill.runtime.PRECISIONS`). Pass ``G`` and
    ``cfg`` already loaded (:func:`load_model`) to skip loading; ``checkpoint`` then names the file
    they came from, for the run record."""

    name = "model"

    def __init__(self, checkpoint: str | os.PathLike | None = None, precision: str = "auto",
                 G: torch.nn.Module | None = None, cfg: Config | None = None) -> None:
        self.checkpoint, self.precision, self.G, self.cfg = checkpoint, precision, G, cfg
        if (G is None) != (cfg is None):
            raise ValueError("ModelFill takes G and cfg together (load_model), or neither")
        if G is not None:
            self.device = next(G.parameters()).device

    @classmethod
    def from_options(cls, opts) -> "ModelFill":
        return cls(opts.checkpoint, opts.precision)

    def prepare(self, device: str | torch.device = "cpu", progress: Progress | None = None) -> "ModelFill":
        device = torch.device(device)
        if self.G is None:
            self.G, self.cfg = load_model(self.checkpoint, device)
        elif self.device != device:
            self.G = self.G.to(device)
        self.device = device
        return self

    @property
    def frame(self) -> AlignConfig:
        return AlignConfig(size=self.cfg.generator.scales[-1], left_eye=self.cfg.align.left_eye,
                           right_eye=self.cfg.align.right_eye)

    @property
    def mask(self) -> MaskConfig:
        return MaskConfig(grow=self.cfg.mask.grow)

    def reads(self) -> dict:
        return {"--checkpoint": self.checkpoint}

    def settings(self) -> dict:
        return {"weights_sha256": Path(self.checkpoint) if self.checkpoint is not None else default_model_path()}

    def fill(self, batch: FillBatch) -> Filled:
        with torch.no_grad(), autocast(self.device, self.precision):
            outs = self.G(batch.masked)
        # every block's output only for --all-scales; otherwise the last block's alone
        scales = {k: to_uint8(v) for k, v in outs.items()} if batch.scales else {}
        final = scales[max(outs)] if scales else to_uint8(outs[max(outs)])
        return Filled(final[:, None], scales)

    def notes(self, keep_face: bool) -> list[str]:
        if keep_face or self.checkpoint is not None:
            return []
        return ["note: --no-keep-face with the default model: it never learned faces (its main loss scores the "
                "output with the real face pasted back), so the faces are striped noise; see docs/model-card.md"]
