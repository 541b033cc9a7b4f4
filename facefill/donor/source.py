"""Where donors come from: the :class:`DonorSource` interface, and the bank index, its one kind so far.

Donor choice (:mod:`facefill.donor.select`) reads a source's per-donor arrays; the fit reads its
photos (:meth:`DonorSource.read`). A bank folder of ``facefill align`` outputs, indexed and cached
(:class:`DonorIndex`, :func:`facefill.donor.index.load_index`; its arrays memory-mapped from
the cache), is one source; a donor that does
not come from a folder (generated, refined, in memory) enters by implementing the same few members.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np


class DonorSource(Protocol):
    """What donor choice and the fit need of the donors (``N`` of them, ``S`` x ``S`` px, aligned
    to ``facefill align``'s eye-centred frame).

    Arrays, one row per donor: ``landmarks (N, 68, 2) float32`` aligned pixels; ``descriptors
    (N, 128)``, ``skin (N, 6)``, ``pose (N, 2)``, ``padding (N,)``, ``signature (N, 192)``,
    ``silhouette (N, 256)``, ``p_male (N,)`` in [0, 1] and ``age (N,)`` in years
    (:mod:`facefill.donor.describe`; a source without gender and age gives None: no filter). ``key``: a digest of the donors'
    contents for the run record; ``root``: the folder the donors are read from, or None."""

    size: int
    names: list[str]
    landmarks: np.ndarray
    descriptors: np.ndarray
    skin: np.ndarray
    pose: np.ndarray
    padding: np.ndarray
    signature: np.ndarray
    silhouette: np.ndarray
    p_male: np.ndarray | None
    age: np.ndarray | None
    key: str
    root: Path | None

    def __len__(self) -> int: ...

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Donor ``i``'s ``(image (S, S, 3) uint8, valid (S, S) float32)``, 1 = from its photo."""
        ...

    def summary(self) -> str:
        """One line for the user: how many donors, from where."""
        ...


@dataclass
class DonorIndex:
    """A bank folder's donors (a :class:`DonorSource`): the index arrays (module
    :mod:`facefill.donor.index`), and the photos read on demand, the most recent ``cache_size``
    kept in memory."""

    root: Path
    size: int
    names: list[str]  # paths relative to root, '/'-separated
    landmarks: np.ndarray
    descriptors: np.ndarray
    skin: np.ndarray
    pose: np.ndarray
    padding: np.ndarray
    signature: np.ndarray
    silhouette: np.ndarray
    p_male: np.ndarray | None = None
    age: np.ndarray | None = None
    key: str = ""
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, why) not usable
    cached: bool = False  # read from the cache rather than built
    state: str = ""  # how it was obtained, for the summary ("index read from the cache", "index updated: ...")
    notes: list[str] = field(default_factory=list)  # what the user should know (a damaged cache, no cache)
    cache_size: int = 2048
    _photos: OrderedDict = field(default_factory=OrderedDict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.names)

    def path(self, i: int) -> Path:
        return self.root / self.names[i]

    def arrays(self) -> dict[str, np.ndarray]:
        return {"landmarks": self.landmarks, "descriptors": self.descriptors, "skin": self.skin,
                "pose": self.pose, "padding": self.padding, "signature": self.signature,
                "silhouette": self.silhouette, "p_male": self.p_male, "age": self.age}

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Donor ``i``'s ``(image (S, S, 3) uint8, valid (S, S) float32)`` from the bank folder."""
        hit = self._photos.get(i)
        if hit is not None:
            self._photos.move_to_end(i)
            return hit
        from facefill.align.sidecar import read_valid
        from facefill.data.io import read_image

        path = self.path(i)
        image = read_image(path)
        valid = read_valid(path, self.size)
        entry = (image, np.ones(image.shape[:2], np.float32) if valid is None else valid)
        self._photos[i] = entry
        if len(self._photos) > self.cache_size:
            self._photos.popitem(last=False)
        return entry

    def summary(self) -> str:
        how = self.state or ("index read from the cache" if self.cached else "index built")
        skipped = f"; {len(self.skipped)} files skipped (e.g. {self.skipped[0][0]}: {self.skipped[0][1]})" if self.skipped else ""
        notes = "".join(f"; {n}" for n in self.notes)
        return f"donor context from {len(self)} donors in {self.root} ({how}){skipped}{notes}"
