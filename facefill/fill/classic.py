"""The classical baselines (``--method telea | ns | mean``) as a :class:`ContextFiller`: the
math is :func:`facefill.baselines.fill`, one face at a time on the CPU (OpenCV)."""

from __future__ import annotations

import numpy as np

from facefill.fill.base import ContextFiller, FillBatch, Filled


class ClassicFill(ContextFiller):
    """One of :data:`facefill.baselines.METHODS` (``method``); no weights, no device (numpy)."""

    def __init__(self, method: str) -> None:
        self.name = method

    @classmethod
    def from_options(cls, opts) -> "ClassicFill":
        return cls(opts.method)

    def fill(self, batch: FillBatch) -> Filled:
        from facefill.baselines import fill

        final = np.stack([fill(self.name, im, m) for im, m in zip(batch.images, batch.masks)])
        return Filled(final[:, None])
