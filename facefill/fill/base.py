"""The interface every way of filling context implements (see :mod:`facefill.fill`).

Life of a filler in one ``hallucinate`` run:

1. made from the options by the registry (:func:`facefill.fill.registry.make_filler`, which calls
   the class's ``from_options``) or by hand (a loaded generator, a donor bank with its own settings);
2. :meth:`ContextFiller.prepare` on the run's device: load weights, read or build an index;
3. :meth:`ContextFiller.settings` goes into the output folder's run record (a resume with other
   weights or another bank is refused), :attr:`ContextFiller.variants` names the outputs;
4. :meth:`ContextFiller.plan` once per chunk of faces, in a thread of its own one chunk ahead,
   then :meth:`ContextFiller.fill` (:class:`FillBatch` -> :class:`Filled`);
5. :meth:`ContextFiller.notes` for the run's summary.

The pipeline pastes the face back (:func:`facefill.mask.compose.compose`) unless the filler's
outputs carry it already (:attr:`ContextFiller.keeps_face`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from facefill.config import AlignConfig, MaskConfig
from facefill.data.batch import Progress


@dataclass
class FillBatch:
    """One chunk of faces to fill.

    ``images``: ``(B, S, S, 3) uint8``, the face (what the context holds is never to be read);
    ``masks``: ``(B, S, S) float32`` in {0, 1} (1 = face); ``masked``: the generator's input
    ``(B, 3, S, S) float32`` in [-1, 1] on the filler's device (context = -1,
    :func:`facefill.data.tensors.masked_input`); ``landmarks``: ``(B, 68, 2) float32`` aligned
    pixels when the filler asked for them (:attr:`ContextFiller.landmarks`), else None; ``names``:
    each face's input name relative to the input folder (seeds that do not depend on the batch);
    ``scales``: also return every scale's output (``--all-scales``); ``unmasked``: per face its
    aligned crop before masking ``(S, S, 3) uint8`` where the input had one (a photo, an aligned
    crop), else None (a ``facefill mask`` output). A filler may read ``unmasked`` only to describe
    the face (gender, age: :mod:`facefill.donor.describe`), never to fill the context from it.
    ``plan``: what :meth:`ContextFiller.plan` decided for this batch (None: :meth:`~ContextFiller.fill`
    decides it itself)."""

    images: np.ndarray
    masks: np.ndarray
    masked: torch.Tensor
    landmarks: np.ndarray | None
    names: list[str]
    scales: bool = False
    unmasked: list[np.ndarray | None] | None = None
    plan: Any = None


@dataclass
class Filled:
    """A filler's outputs for one :class:`FillBatch`: ``final`` ``(B, K, S, S, 3) uint8`` (K =
    :attr:`ContextFiller.variants`) and, when asked for, ``scales`` ``{side: (B, s, s, 3) uint8}``.
    ``failed``: ``{face: why}`` for faces it could not fill (that input fails alone, into
    ``failures.tsv``); ``records``: per face, per variant, a dict of what made the output (the
    pipeline writes them to ``OUT/<ContextFiller.record>``), or None. ``masks``: ``(B, K, S, S)``
    in {0, 1}, the face region each output keeps where a filler narrowed the batch's mask for it
    (a donor's hair over the face's band), written as that output's ``.mask.png``; None: the
    batch's masks."""

    final: np.ndarray
    scales: dict[int, np.ndarray] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    records: list[list[dict]] | None = None
    masks: np.ndarray | None = None


class ContextFiller:
    """A way of filling the context around a face (subclass it; register it in
    :data:`facefill.fill.registry.FILLERS`).

    Class attributes: ``name`` (its ``--method``), ``landmarks`` (:meth:`fill` reads
    ``FillBatch.landmarks``: masked inputs then get theirs detected), ``keeps_face`` (its outputs
    carry the input's face, bit for bit, already: the pipeline pastes nothing). ``variants``:
    outputs per face (``NAME_v0.png`` .. when more than 1). ``device``: set by :meth:`prepare`.
    ``size``: the side of the aligned inputs, set before :meth:`prepare` (None: the inputs do not
    say, e.g. photos only; the filler may choose); :attr:`frame`, where a filler has one, wins.
    ``record``: the name of the table in the output folder its :attr:`Filled.records` go to
    (one row per output: ``donors.tsv`` for donors), or None. ``cpu_threads``: torch intra-op
    threads it runs fastest with on a CPU (the command sets them; None: torch's default, one per core)."""

    name: str = ""
    landmarks: bool = False
    keeps_face: bool = False
    variants: int = 1
    record: str | None = None
    cpu_threads: int | None = None
    device: torch.device | None = None
    size: int | None = None

    @classmethod
    def from_options(cls, opts) -> "ContextFiller":
        """The filler ``opts`` (:class:`facefill.options.HallucinateOptions`) asks for, unprepared."""
        raise NotImplementedError

    def prepare(self, device: str | torch.device = "cpu", progress: Progress | None = None) -> "ContextFiller":
        """Make ready on ``device`` (weights, indexes; ``progress(done, total, name)`` reports a
        long build). Returns self; preparing again on the same device does nothing."""
        self.device = torch.device(device)
        return self

    @property
    def frame(self) -> AlignConfig | None:
        """The aligned frame it works in (size and eye positions), or None to take the size from
        the inputs (alignment's default eyes)."""
        return None

    @property
    def mask(self) -> MaskConfig:
        """How faces are masked on the fly unless the user says (``--grow``)."""
        return MaskConfig()

    def reads(self) -> dict[str, str | os.PathLike | None]:
        """Files and folders it reads, by option (``{"--donors": bank}``): no output may land there."""
        return {}

    def settings(self) -> dict:
        """What it adds to the run record: everything of its own that changes the outputs. A
        :class:`~pathlib.Path` value (a weights file) is recorded by its content's digest."""
        return {}

    def plan(self, batch: FillBatch) -> Any:
        """The part of :meth:`fill` that needs this batch alone (donor choice), for the pipeline to
        run in a thread of its own while :meth:`fill` works on the chunk before; it reaches
        :meth:`fill` as ``batch.plan``. Must not depend on other batches. Default: None (nothing
        to plan)."""
        return None

    def fill(self, batch: FillBatch) -> Filled:
        """Fill the context of every face in ``batch`` (see :class:`Filled`; ``batch.plan`` is
        :meth:`plan`'s result, or None when the caller did not plan)."""
        raise NotImplementedError

    def notes(self, keep_face: bool) -> list[str]:
        """Lines for the run's summary (``keep_face``: the face is pasted back)."""
        return []

