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
* **cache** (:mod:`facefill.donor.cache`): the index cache outside the bank, memory-mapped, updated
  for added and changed files only, checked before use;
* **choose** (:mod:`facefill.donor.select`): the cost of every donor for every query, and the picks;
* **warp** and padding (:mod:`facefill.donor.warp`), **cover** (:mod:`facefill.donor.cover`: the
  donor's hair kept over the face's band), **colour** (:mod:`facefill.donor.colour`),
  **sharpness** (:mod:`facefill.donor.sharpness`), **seam** (:mod:`facefill.donor.seam`), in that
  order in :func:`facefill.donor.composite.fit_donors`;
* the face pasted back over the region the cover leaves: :func:`facefill.mask.compose.paste_face`.

**Devices.** :class:`DonorHallucinator` takes a ``device``: the descriptor network, the gender
and age networks with their chips and every torch step of the fit (warp,
colour, sharpness, seam) run there. The fit takes a whole batch of (face, donor) pairs at once;
the steps whose batched arithmetic rounds differently (the spline's solve and products, the
shading plane, the sharpness and seam convolutions) run one pair at a time inside it, so an
output never depends on the batch it was computed in. These run on the CPU whatever the
device, as numpy/OpenCV: donor choice (:func:`facefill.donor.select.costs`, ``choose``), the skin
statistics (:func:`facefill.donor.describe.face_stats`), the fill of padding
(:func:`facefill.donor.warp.fill_padding`), the hair cover
(:func:`facefill.donor.cover.cover_masks`), the distance to the face
(:func:`facefill.donor.seam.distance_outside`), and reading the donors' photos.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from facefill.donor.composite import fit_donors
from facefill.donor.describe import describe, face_stats, gender_age
from facefill.donor.index import load_index, photo_pixels
from facefill.donor.select import choose, costs
from facefill.donor.settings import DonorSettings
from facefill.donor.source import DonorIndex, DonorSource
from facefill.errors import FacefillError

#: donors whose baked edge streaks (:func:`facefill.donor.index.photo_pixels`) a hallucinator keeps,
#: as bits (2 KB a donor at 128 px): found once per donor, not once per (face, donor) pair
STREAK_CACHE = 8192

__all__ = ["DonorHallucinator", "DonorResult", "DonorIndex", "DonorSettings", "DonorSource", "load_index", "name_seed"]


def name_seed(name: str) -> int:
    """A stable 63-bit seed from a file's relative name: the same face gets the same variants
    whatever batch, shard or run it is in."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little") >> 1


def as_donors_are(images: np.ndarray, masks: np.ndarray, landmarks: np.ndarray, unmasked: list | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the descriptor sees of each query, ``(images, landmarks, masks)`` for
    :func:`facefill.donor.describe.describe`: where the query's unmasked aligned crop is there
    (``unmasked[i]``, ``(S, S, 3) uint8``), that crop under the plain landmark hull, exactly as
    every donor is described (:func:`facefill.donor.index.describe_batch`), so that a copy of the
    query in the bank is found (descriptor distance ~0, under ``duplicate``) whatever region the
    query is masked with; else (a ``facefill mask`` output) its masked face under its own mask.
    (Described under the refined region, which drops the jaw's rim, a query was 0.23 from its own
    copy, close to the 0.25 at which a donor counts as the query itself.)"""
    from facefill.mask.region import face_mask

    if unmasked is None or all(u is None for u in unmasked):
        return images, landmarks, masks
    size = images.shape[1]
    imgs = np.stack([u if u is not None else im for u, im in zip(unmasked, images)])
    hull = np.stack([face_mask(lm, size) if u is not None else m for u, lm, m in zip(unmasked, landmarks, masks)])
    return imgs, landmarks, hull.astype(np.float32)


@dataclass
class DonorResult:
    """One batch's donor context (:meth:`DonorHallucinator.run`): ``out`` ``(B, K, S, S, 3)
    uint8`` (a failed face's row is zeros; None from :meth:`DonorHallucinator.pick`), ``picks`` ``(B, K)`` source indices (-1 where it
    failed), ``why`` per face None or why it has no donors, and for provenance the query's
    ``p_male``/``age`` ``(B,)``, each pick's ``cost`` and descriptor distance ``identity`` ``(B, K)``;
    ``regions`` ``(B, K, S, S) bool``: the face region each output keeps bit for bit (the input's
    mask less where the donor's hair lies over it, :mod:`facefill.donor.cover`; a failed face's
    row is its mask), None from :meth:`DonorHallucinator.pick`."""

    out: np.ndarray | None
    picks: np.ndarray
    why: list[str | None]
    p_male: np.ndarray
    age: np.ndarray
    cost: np.ndarray
    identity: np.ndarray
    regions: np.ndarray | None = None


class DonorHallucinator:
    """Donor context for batches of masked faces.

    ``source``: the donors (:class:`DonorSource`; a loaded bank: :func:`load_index`);
    ``embedder``: the face descriptor network (default
    :class:`facefill.models.embedders.FaceEmbedder`, the one the index was built with), moved to
    ``device``, where the torch steps run (see the module docstring). ``settings.exclude`` and
    ``settings.pin`` name bank files (FacefillError for a name the source does not hold)."""

    def __init__(self, source: DonorSource, settings: DonorSettings = DonorSettings(), embedder=None,
                 device: str | torch.device = "cpu") -> None:
        if embedder is None:
            from facefill.models.embedders import FaceEmbedder

            embedder = FaceEmbedder()
        self.device = torch.device(device)
        self.source, self.settings, self.embedder = source, settings, embedder.to(self.device)
        self.allowed = np.ones(len(source), bool)
        self._streaks: OrderedDict[int, np.ndarray] = OrderedDict()
        for name in settings.exclude:
            self.allowed[self.donor_index(name, "--exclude-donors")] = False
        for _, name in settings.pin:
            self.donor_index(name, "--pin-donor")
        if self.allowed.sum() <= settings.variants:
            raise FacefillError(f"--variants {settings.variants} needs more donors than the bank's {int(self.allowed.sum())}"
                                + (" left after --exclude-donors" if settings.exclude else ""))

    def photo(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Donor ``i``'s ``(image (S, S, 3) uint8, valid (S, S) float32)``, with the streaks its
        earlier crop baked into its edges out of ``valid`` (:func:`facefill.donor.index.photo_pixels`,
        the index's own test, on the float values :func:`fit_donors` would find them on, so the
        outputs are the same; the last :data:`STREAK_CACHE` donors' streaks are kept)."""
        image, valid = self.source.read(i)
        bits = self._streaks.get(i)
        if bits is None:
            bits = np.packbits((valid > 0.5) & ~photo_pixels(image, valid))
            self._streaks[i] = bits
            if len(self._streaks) > STREAK_CACHE:
                self._streaks.popitem(last=False)
        else:
            self._streaks.move_to_end(i)
        baked = np.unpackbits(bits, count=valid.size).reshape(valid.shape).astype(bool)
        return image, valid * ~baked

    def donor_index(self, name: str, option: str = "donor") -> int:
        """The source index of the bank file ``name`` (relative name, with or without ``.png``)."""
        if not hasattr(self, "_by_name"):
            self._by_name = {}
            for i, n in enumerate(self.source.names):
                self._by_name.setdefault(n, i)
                self._by_name.setdefault(n.rsplit(".", 1)[0], i)
        if name not in self._by_name:
            raise FacefillError(f"{option}: {name!r} is not a donor of the bank {self.source.root}; give names relative "
                                "to the bank folder, as OUT/donors.tsv lists them")
        return self._by_name[name]

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

    def gender_age(self, images: np.ndarray, masks: np.ndarray, landmarks: np.ndarray,
                   unmasked: list | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The queries' ``(p_male (B,), age (B,))``: from ``unmasked[i]`` (the aligned crop before
        masking, ``(S, S, 3) uint8``) where given, else from the masked face with its context
        refilled (:func:`facefill.donor.describe.gender_age`)."""
        n = len(images)
        unmasked = unmasked if unmasked is not None else [None] * n
        p, age = np.zeros(n, np.float32), np.zeros(n, np.float32)
        have = np.array([u is not None for u in unmasked], bool)
        dev = str(self.device)
        if have.any():
            p[have], age[have] = gender_age(np.stack([u for u in unmasked if u is not None]), landmarks[have], None, dev)
        if (~have).any():
            p[~have], age[~have] = gender_age(images[~have], landmarks[~have], masks[~have], dev)
        return p, age

    def choose(self, images: np.ndarray, masks: np.ndarray, landmarks: np.ndarray, seeds: list[int],
               unmasked: list | None = None, names: list[str] | None = None, full: bool = False):
        """``(B, K)`` donor indices for ``images (B, S, S, 3) uint8``, ``masks (B, S, S)``,
        ``landmarks (B, 68, 2)`` (-1 rows: no donors; ``full`` also returns the reasons, the
        queries' gender and age, the picks' costs and descriptor distances). ``unmasked``: per face
        its unmasked aligned crop or None (for gender and age); ``names``: the inputs' names, for pins."""
        desc = describe(*as_donors_are(images, masks, landmarks, unmasked), self.embedder)
        p_male, age = self.gender_age(images, masks, landmarks, unmasked)
        cost = costs(self.source, desc, landmarks, face_stats(images, masks), self.settings, (p_male, age), self.allowed)
        pins = None
        if self.settings.pin and names is not None:
            pins = [None if self.settings.pinned(n) is None else self.donor_index(self.settings.pinned(n)) for n in names]
        picks, why = choose(self.source, cost, self.settings, seeds, pins)
        if not full:
            return picks
        safe = np.maximum(picks, 0)
        ident = np.linalg.norm(self.source.descriptors[safe] - desc[:, None], axis=-1)
        return picks, why, p_male, age, np.take_along_axis(cost, safe, 1), ident

    def pick(self, images: np.ndarray, masks: np.ndarray, landmarks: np.ndarray, seeds: list[int],
             unmasked: list | None = None, names: list[str] | None = None) -> "DonorResult":
        """Choose each face's donors (the first half of :meth:`run`, which a pipeline may run one
        batch ahead in a thread of its own): a :class:`DonorResult` without ``out``."""
        picks, why, p_male, age, cost, ident = self.choose(np.asarray(images), np.asarray(masks, np.float32),
                                                           np.asarray(landmarks, np.float32), seeds, unmasked, names,
                                                           full=True)
        return DonorResult(None, picks, why, p_male, age, cost, ident)

    def run(self, images: np.ndarray, masks: np.ndarray, landmarks: np.ndarray, seeds: list[int],
            unmasked: list | None = None, names: list[str] | None = None, picked: "DonorResult | None" = None
            ) -> DonorResult:
        """Choose (or take ``picked``, :meth:`pick`'s result for these faces), warp, fit and paste
        (see :meth:`__call__`); faces without donors fail alone."""
        from facefill.data.tensors import from_uint8, masks_from_numpy, to_uint8
        from facefill.mask.compose import paste_face

        images = np.asarray(images)
        masks = np.asarray(masks, np.float32)
        landmarks = np.asarray(landmarks, np.float32)
        res = picked if picked is not None else self.pick(images, masks, landmarks, seeds, unmasked, names)
        picks = res.picks
        out = np.zeros((len(images), picks.shape[1]) + images.shape[1:], np.uint8)
        regions = np.repeat((masks > 0.5)[:, None], picks.shape[1], 1)
        faces = np.flatnonzero(picks[:, 0] >= 0)
        if len(faces):  # every (face, donor) pair in one fit: each step treats the pairs alike
            dev, k = self.device, picks.shape[1]
            scale = images.shape[1] / 128  # every pixel distance of the fit is given for a 128 px crop
            pairs = np.repeat(faces, k)
            donors = [self.photo(int(i)) for i in picks[faces].reshape(-1)]  # their streaks found once
            with torch.no_grad():
                fit, region = fit_donors(from_uint8(images[pairs], dev, signed=False),
                                 (masks_from_numpy(masks[pairs], dev) > 0.5).float(),
                                 torch.from_numpy(landmarks[pairs]).to(dev),
                                 from_uint8(np.stack([d for d, _ in donors]), dev, signed=False),
                                 masks_from_numpy(np.stack([v for _, v in donors]), dev),
                                 torch.from_numpy(self.source.landmarks[picks[faces].reshape(-1)]).to(dev),
                                 self.settings.band, self.settings.reach, scale, self.settings.cover, streaks=False)
            region = region[:, 0].cpu().numpy() > 0.5
            regions[faces] = region.reshape((len(faces), k) + images.shape[1:3])
            out[faces] = paste_face(images[pairs], to_uint8(fit, signed=False), region).reshape(
                (len(faces), k) + images.shape[1:])
        return DonorResult(out, picks, res.why, res.p_male, res.age, res.cost, res.identity, regions)

    def __call__(self, images: np.ndarray, masks: np.ndarray, landmarks: np.ndarray, seeds: list[int]
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Outputs ``(B, K, S, S, 3) uint8`` (K = ``settings.variants``; every pixel of each
        output's region is the input's, bit for bit: the mask, less where the donor's hair lies
        over its band; :meth:`run` returns the regions) and the donors ``(B, K)`` as source
        indices. A face without enough donors (:func:`facefill.donor.select.choose`) raises
        FacefillError."""
        res = self.run(images, masks, landmarks, seeds)
        bad = next((w for w in res.why if w is not None), None)
        if bad is not None:
            raise FacefillError(bad)
        return res.out, res.picks
