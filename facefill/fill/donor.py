"""Donor context (``--method donor``) as a :class:`ContextFiller`: the math is
:class:`facefill.donor.DonorHallucinator` over a donor source (a bank folder's index)."""

from __future__ import annotations

import os
from dataclasses import asdict

import torch

from facefill.data.batch import Progress
from facefill.fill.base import ContextFiller, FillBatch, Filled


def _fmt(source, key: str, i: int, fmt: str) -> str:
    values = getattr(source, key, None)
    return "" if values is None else fmt.format(float(values[i]))


class DonorFill(ContextFiller):
    """Context from donor faces. Give the bank folder (``bank``, indexed and cached when prepared)
    and :class:`facefill.donor.DonorSettings`, or a ready ``hallucinator``
    (:class:`facefill.donor.DonorHallucinator`: another source, embedder or settings)."""

    name = "donor"
    landmarks = True
    keeps_face = True
    record = "donors.tsv"
    # its many small steps run in the pipeline's threads (reading, choice, fit) side by side: one
    # intra-op thread each is faster than two (99 faces, 2 cores: 33 against 28 faces/s, docs/performance.md)
    cpu_threads = 1

    def __init__(self, bank: str | os.PathLike | None = None, settings=None, hallucinator=None) -> None:
        from facefill.donor import DonorSettings

        if (bank is None) == (hallucinator is None):
            raise ValueError("DonorFill takes a bank folder or a DonorHallucinator, not both")
        self.bank, self.hallucinator = bank, hallucinator
        self.donor_settings = hallucinator.settings if hallucinator is not None else settings or DonorSettings()
        self.variants = self.donor_settings.variants

    @classmethod
    def from_options(cls, opts) -> "DonorFill":
        from facefill.donor import DonorSettings

        cover = {"cover": 0.0} if getattr(opts, "region", None) == "hull" else {}  # the plain hull, kept whole
        return cls(opts.donors, DonorSettings(variants=opts.variants, seed=opts.seed, exclude=tuple(opts.exclude_donors),
                                              pin=tuple(opts.pin_donors), **cover))

    def prepare(self, device: str | torch.device = "cpu", progress: Progress | None = None) -> "DonorFill":
        """Reads the bank's index from the cache or builds it (``progress`` reports the build; the
        descriptor and segmentation networks run on ``device``), and puts the hallucinator's torch
        steps on ``device``. The donors' size is :attr:`size`, the inputs' (photos alone: the
        bank's own). FacefillError with one line for a missing, unreadable or too small bank, or
        a bank aligned at another size than the inputs (both sizes named)."""
        device = torch.device(device)
        if self.hallucinator is None:
            from facefill.donor import DonorHallucinator, load_index
            from facefill.models.embedders import FaceEmbedder
            from facefill.segment.selfie import SelfieSegmenter

            from facefill.donor.index import bank_size

            embedder = FaceEmbedder().to(device)
            size = self.size or bank_size(self.bank) or 128  # photos only: aligned at the bank's size
            index = load_index(self.bank, size, progress=progress, embedder=embedder, segmenter=SelfieSegmenter(device=device))
            self.hallucinator = DonorHallucinator(index, self.donor_settings, embedder, device)
        elif getattr(self.hallucinator, "device", device) != device:
            self.hallucinator.to(device)
        side = self.hallucinator.source.size
        if self.size is not None and self.size != side:
            from facefill.errors import FacefillError

            raise FacefillError(f"the donors are {side}x{side}, the inputs {self.size}x{self.size}: align the bank or the "
                                f"inputs again with 'facefill align --size' so that both have one size")
        self.size = side
        self.device = device
        return self

    @property
    def mask(self):
        """Photos and aligned crops are masked with the refined region (issue 31): the hull's
        outer band often holds background, hair or a hat brim, which would stay framed by another
        person's context. ``--region hull`` keeps the plain hull."""
        from facefill.config import MaskConfig

        return MaskConfig(region="refined")

    def reads(self) -> dict:
        return {"--donors": self.hallucinator.index.root if self.hallucinator is not None else self.bank}

    def settings(self) -> dict:
        return {"donor_bank": self.hallucinator.index.key, "donor_settings": asdict(self.donor_settings)}

    def plan(self, batch: FillBatch):
        """Donor choice (:meth:`facefill.donor.DonorHallucinator.pick`): the descriptor, gender and
        age networks and the costs, one chunk ahead of the fit."""
        from facefill.donor import name_seed

        return self.hallucinator.pick(batch.images, batch.masks, batch.landmarks, [name_seed(n) for n in batch.names],
                                      batch.unmasked, batch.names)

    def fill(self, batch: FillBatch) -> Filled:
        from facefill.donor import name_seed

        h = self.hallucinator
        res = h.run(batch.images, batch.masks, batch.landmarks, [name_seed(n) for n in batch.names], batch.unmasked,
                    batch.names, picked=batch.plan)
        src = h.source
        records = [[{"input": batch.names[b], "variant": str(k), "donor": src.names[i], "cost": f"{res.cost[b, k]:.4f}",
                     "identity": f"{res.identity[b, k]:.4f}", "p_male": f"{res.p_male[b]:.3f}",
                     "donor_p_male": _fmt(src, "p_male", i, "{:.3f}"), "age": f"{res.age[b]:.1f}",
                     "donor_age": _fmt(src, "age", i, "{:.1f}"),
                     "pinned": "yes" if k == 0 and h.settings.pinned(batch.names[b]) is not None else ""}
                    for k, i in enumerate(res.picks[b]) if i >= 0] for b in range(len(res.picks))]
        return Filled(res.out, failed={b: w for b, w in enumerate(res.why) if w is not None}, records=records,
                      masks=res.regions)

    def notes(self, keep_face: bool) -> list[str]:
        return [self.hallucinator.summary()]
