"""Donor context: photographic hair, ears, neck, clothes and background from real faces.

Every ``facefill align`` output shares one eye-centred frame, so another person's context lines
up with a query face. ``hallucinate --method donor --donors BANK`` picks, for each masked face,
the donors that fit it best, warps each onto the face's landmarks and fits its colour, sharpness
and seam, then pastes the query's face back bit for bit. The family of face swapping (Bitouk et
al. 2008, Nirkin et al. 2018), used the other way round: the face stays, the context is swapped in.

The units, each a module with its own tests:

* **source** (:mod:`facefill.donor.source`): where donors come from (:class:`DonorSource`); a bank
  folder's index (:class:`DonorIndex`) is one kind, built by :mod:`facefill.donor.index`;
* **describe** (:mod:`facefill.donor.describe`): descriptor, skin colour, pose, outline, thumbnail;
* **cache** (:mod:`facefill.donor.cache`): the index cache outside the bank, keyed by its contents;
* **choose** (:mod:`facefill.donor.select`): the cost of every donor for every query, and the picks;
* **warp** and padding (:mod:`facefill.donor.warp`), **colour** (:mod:`facefill.donor.colour`),
  **sharpness** (:mod:`facefill.donor.sharpness`), **seam** (:mod:`facefill.donor.seam`), in that
  order in :func:`facefill.donor.composite.fit_donors`;
* the face pasted back: :func:`facefill.mask.compose.paste_face`.

**Devices.** :class:`DonorHallucinator` takes a ``device``: the descriptor network and every
torch step of the fit (warp, colour, sharpness, seam) run there. These run on the CPU whatever the
device, as numpy/OpenCV: donor choice (:func:`facefill.donor.select.costs`, ``choose``), the skin
statistics (:func:`facefill.donor.describe.face_stats`), the fill of padding
(:func:`facefill.donor.warp.fill_padding`), the distance to the face
(:func:`facefill.donor.seam.distance_outside`), and reading the donors' photos.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from facefill.donor.composite import fit_donors
from facefill.donor.describe import describe, face_stats
from facefill.donor.index import load_index
from facefill.donor.select import choose, costs
from facefill.donor.settings import DonorSettings
from facefill.donor.source import DonorIndex, DonorSource

__all__ = ["DonorHallucinator", "DonorIndex", "DonorSettings", "DonorSource", "load_index", "name_seed"]


def name_seed(name: str) -> int:
    """A stable 63-bit seed from a file's relative name: the same face gets the same variants
    whatever batch, shard or run it is in."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little") >> 1


class DonorHallucinator:
    """Donor context for batches of masked faces.

    ``source``: the donors (:class:`DonorSource`; a loaded bank: :func:`load_index`);
    ``embedder``: the face descriptor network (default
    :class:`facefill.models.embedders.FaceEmbedder`, the one the index was built with), moved to
    ``device``, where the torch steps run (see the module docstring)."""

    def __init__(self, source: DonorSource, settings: DonorSettings = DonorSettings(), embedder=None,
                 device: str | torch.device = "cpu") -> None:
        if embedder is None:
            from facefill.models.embedders import FaceEmbedder

            embedder = FaceEmbedder()
        self.device = torch.device(device)
        self.source, self.settings, self.embedder = source, settings, embedder.to(self.device)
        if len(source) <= settings.variants:
            from facefill.errors import FacefillError

            raise FacefillError(f"--variants {settings.variants} needs more donors than the bank's {len(source)}")

    def to(self, device: str | torch.device) -> "DonorHallucinator":
        """Run the torch steps on ``device`` from now on."""
        self.device = torch.device(device)
        self.embedder = self.embedder.to(self.device)
        return self

    @property
    def index(self) -> DonorSource:
        """The donor source (named for the bank index it usually is)."""
        return self.source

    def summary(self) -> str:
        """One line for the user: how many donors, from where, and whether the index was cached."""
        return self.source.summary()

    def choose(self, images: np.ndarray, masks: np.ndarray, landmarks: np.ndarray, seeds: list[int]) -> np.ndarray:
        """``(B, K)`` donor indices for ``images (B, S, S, 3) uint8``, ``masks (B, S, S)``,
        ``landmarks (B, 68, 2)``."""
        desc = describe(images, landmarks, masks, self.embedder)
        cost = costs(self.source, desc, landmarks, face_stats(images, masks), self.settings)
        return choose(self.source, cost, self.settings, seeds)

    def __call__(self, images: np.ndarray, masks: np.ndarray, landmarks: np.ndarray, seeds: list[int]
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Outputs ``(B, K, S, S, 3) uint8`` (K = ``settings.variants``; every pixel with
        ``mask > 0.5`` is the input's, bit for bit) and the donors ``(B, K)`` as source indices."""
        from facefill.data.tensors import from_uint8, masks_from_numpy, to_uint8
        from facefill.mask.compose import paste_face

        images = np.asarray(images)
        masks = np.asarray(masks, np.float32)
        landmarks = np.asarray(landmarks, np.float32)
        picks = self.choose(images, masks, landmarks, seeds)
        dev = self.device
        q = from_uint8(images, dev, signed=False)
        m = (masks_from_numpy(masks, dev) > 0.5).float()
        q_lm = torch.from_numpy(landmarks).to(dev)
        out = np.empty((len(images), picks.shape[1]) + images.shape[1:], np.uint8)
        with torch.no_grad():
            for k in range(picks.shape[1]):
                donors = [self.source.read(int(i)) for i in picks[:, k]]
                d = from_uint8(np.stack([im for im, _ in donors]), dev, signed=False)
                v = masks_from_numpy(np.stack([va for _, va in donors]), dev)
                d_lm = torch.from_numpy(self.source.landmarks[picks[:, k]]).to(dev)
                res = fit_donors(q, m, q_lm, d, v, d_lm, self.settings.band, self.settings.reach)
                out[:, k] = paste_face(images, to_uint8(res, signed=False), masks)
        return out, picks
