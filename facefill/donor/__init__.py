"""Donor context: photographic hair, ears, neck, clothes and background from real faces.

Every ``facefill align`` output shares one eye-centred frame, so another person's context lines
up with a query face. ``hallucinate --method donor --donors BANK`` picks, for each masked face,
the bank faces that fit it best (:mod:`facefill.donor.select`: face descriptor for gender, age and
look, jaw and brow shape, head pose, skin colour, padding), warps each onto the face's landmarks
and fits its colour, sharpness and seam (:mod:`facefill.donor.composite`), then pastes the
query's face back bit for bit. The family of face swapping (Bitouk et al. 2008, Nirkin et al.
2018), used the other way round: the face stays, the context is swapped in.

The bank's index (:mod:`facefill.donor.index`) is cached outside the bank, keyed by its contents.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
import torch

from facefill.donor.composite import fit_donors
from facefill.donor.index import DonorIndex, describe, load_index
from facefill.donor.select import choose, costs
from facefill.donor.settings import DonorSettings

__all__ = ["DonorHallucinator", "DonorIndex", "DonorSettings", "load_index", "name_seed"]


def name_seed(name: str) -> int:
    """A stable 63-bit seed from a file's relative name: the same face gets the same variants
    whatever batch, shard or run it is in."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little") >> 1


class DonorHallucinator:
    """Donor context for batches of masked faces.

    ``index``: a loaded bank (:func:`load_index`); ``embedder``: the face descriptor network
    (default :class:`facefill.models.embedders.FaceEmbedder`, the one the index was built with).
    Donor photos are read on demand and the most recent ``cache_size`` kept in memory."""

    def __init__(self, index: DonorIndex, settings: DonorSettings = DonorSettings(), embedder=None,
                 cache_size: int = 2048) -> None:
        if embedder is None:
            from facefill.models.embedders import FaceEmbedder

            embedder = FaceEmbedder()
        self.index, self.settings, self.embedder = index, settings, embedder
        if len(index) <= settings.variants:
            from facefill.errors import FacefillError

            raise FacefillError(f"--variants {settings.variants} needs more donors than the bank's {len(index)}")
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cache_size = cache_size

    def summary(self) -> str:
        """One line for the user: how many donors, from where, and whether the index was cached."""
        idx = self.index
        how = "index read from the cache" if idx.cached else "index built and cached"
        skipped = f"; {len(idx.skipped)} files skipped (e.g. {idx.skipped[0][0]}: {idx.skipped[0][1]})" if idx.skipped else ""
        return f"donor context from {len(idx)} donors in {idx.root} ({how}){skipped}"

    def donor(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Donor ``i``'s ``(image (S, S, 3) uint8, valid (S, S) float32)``."""
        hit = self._cache.get(i)
        if hit is not None:
            self._cache.move_to_end(i)
            return hit
        from facefill.align.sidecar import read_valid
        from facefill.data.io import read_image

        path = self.index.path(i)
        image = read_image(path)
        valid = read_valid(path, self.index.size)
        entry = (image, np.ones(image.shape[:2], np.float32) if valid is None else valid)
        self._cache[i] = entry
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return entry

    def choose(self, images: np.ndarray, masks: np.ndarray, landmarks: np.ndarray, seeds: list[int]) -> np.ndarray:
        """``(B, K)`` donor indices for ``images (B, S, S, 3) uint8``, ``masks (B, S, S)``,
        ``landmarks (B, 68, 2)``."""
        from facefill.donor.index import _face_stats

        desc = describe(images, landmarks, masks, self.embedder)
        skin = _face_stats(images, masks)
        return choose(self.index, costs(self.index, desc, landmarks, skin, self.settings), self.settings, seeds)

    def __call__(self, images: np.ndarray, masks: np.ndarray, landmarks: np.ndarray, seeds: list[int]
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Outputs ``(B, K, S, S, 3) uint8`` (K = ``settings.variants``; every pixel with
        ``mask > 0.5`` is the input's, bit for bit) and the donors ``(B, K)`` as bank indices."""
        from facefill.data.tensors import from_uint8, masks_from_numpy, to_uint8

        images = np.asarray(images)
        masks = np.asarray(masks, np.float32)
        landmarks = np.asarray(landmarks, np.float32)
        picks = self.choose(images, masks, landmarks, seeds)
        q = from_uint8(images, signed=False)
        m = (masks_from_numpy(masks) > 0.5).float()
        q_lm = torch.from_numpy(landmarks)
        face = masks > 0.5
        out = np.empty((len(images), picks.shape[1]) + images.shape[1:], np.uint8)
        with torch.no_grad():
            for k in range(picks.shape[1]):
                donors = [self.donor(int(i)) for i in picks[:, k]]
                d = from_uint8(np.stack([im for im, _ in donors]), signed=False)
                v = masks_from_numpy(np.stack([va for _, va in donors]))
                d_lm = torch.from_numpy(self.index.landmarks[picks[:, k]])
                res = to_uint8(fit_donors(q, m, q_lm, d, v, d_lm, self.settings.band, self.settings.reach),
                               signed=False)
                res[face] = images[face]
                out[:, k] = res
        return out, picks
