"""Donor choice: which bank faces lend their context to a query face.

A donor's cost for a query (lower is better) is a weighted sum, in units of face-descriptor
distance (two different people are typically 0.6-0.9 apart):

* ``identity``: Euclidean distance of the dlib descriptors of the two face-masked photos. This
  is what keeps gender, age and ethnicity: the descriptor's nearest faces share them far more
  often than landmarks or colour do;
* ``shape``: RMS distance (aligned pixels) of the jaw line and brows, per pixel;
* ``pose``: distance of the yaw and pitch proxies (:func:`facefill.donor.describe.pose_from_landmarks`);
* ``skin``: CIE Lab distance of the mean face colour, per 100 units (low weight: colour is
  corrected afterwards, but a close start needs less correction);
* ``padding``: the share of the donor's context that lies outside its photo;
* ``silhouette``: RMS distance of the donor's person outline (16x16, from the selfie segmentation
  network) from the median outline of the ``consensus`` donors cheapest by the terms above.
  The descriptor alone puts a man among a woman's nearest faces now and then; his short hair
  and suit are then an outlier among her neighbours' outlines, and this term pushes him out
  (on 9 faces with known mismatches it cut them from 8 to 3 in 27 donor picks).

Donors closer than ``duplicate`` in descriptor distance are the query itself or a copy of it and
are never chosen. ``choose`` returns ``variants`` donors per query: the cheapest first, then
donors drawn (seeded) from the ``pool`` cheapest, each as unlike the ones already chosen as
possible in colour (the a and b channels of 8x8 Lab thumbnails: hair colour, clothes, background, not the outline), so that variants differ; a variant's
cost also counts its descriptor distance from the best donor (``anchor``), which keeps variants of
the best donor's gender and age.
"""

from __future__ import annotations

import numpy as np

from facefill.donor.describe import pose_from_landmarks
from facefill.donor.settings import DonorSettings
from facefill.donor.source import DonorSource

#: Landmarks compared for head shape: jaw line (0-16) and brows (17-26).
SHAPE_POINTS = list(range(27))


def costs(index: DonorSource, descriptors: np.ndarray, landmarks: np.ndarray, skin: np.ndarray,
          settings: DonorSettings) -> np.ndarray:
    """``(Q, N) float32`` cost of every donor for every query. ``descriptors (Q, 128)``,
    ``landmarks (Q, 68, 2)``, ``skin (Q, 6)`` (Lab mean, std). Duplicates cost ``inf``."""
    q_desc = descriptors.astype(np.float32)
    d2 = (q_desc ** 2).sum(1)[:, None] + (index.descriptors ** 2).sum(1)[None] - 2 * q_desc @ index.descriptors.T
    ident = np.sqrt(np.maximum(d2, 0))
    ql = landmarks[:, SHAPE_POINTS].reshape(len(landmarks), -1).astype(np.float32)
    dl = index.landmarks[:, SHAPE_POINTS].reshape(len(index), -1)
    s2 = (ql ** 2).sum(1)[:, None] + (dl ** 2).sum(1)[None] - 2 * ql @ dl.T
    shape = np.sqrt(np.maximum(s2, 0) / len(SHAPE_POINTS))
    pose = _distance(pose_from_landmarks(landmarks), index.pose)
    colour = _distance(skin[:, :3], index.skin[:, :3]) / 100.0
    cost = settings.identity * ident  # summed in place, term by term, in the order of the docstring
    for weight, term in ((settings.shape, shape), (settings.pose, pose), (settings.skin, colour),
                         (settings.padding, index.padding[None])):
        cost += weight * term
    cost[ident < settings.duplicate] = np.inf
    if settings.silhouette > 0 and len(index) > settings.consensus:
        top = np.argpartition(cost, settings.consensus, axis=1)[:, :settings.consensus]
        outline = np.median(index.silhouette[top], axis=1)  # (Q, 256)
        q2 = (outline ** 2).sum(1)[:, None] + (index.silhouette ** 2).sum(1)[None] - 2 * outline @ index.silhouette.T
        cost = cost + settings.silhouette * np.sqrt(np.maximum(q2, 0) / index.silhouette.shape[1])
    return cost.astype(np.float32)


def _distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(Q, C)``, ``(N, C)`` -> ``(Q, N)`` Euclidean distances, summed channel by channel (the
    same sums as ``((a[:, None] - b[None]) ** 2).sum(-1)``, without its ``(Q, N, C)`` temporary)."""
    out = (a[:, None, 0] - b[None, :, 0]) ** 2
    for c in range(1, a.shape[1]):
        out += (a[:, None, c] - b[None, :, c]) ** 2
    return np.sqrt(out)


def cheapest(cost: np.ndarray, pool: int) -> np.ndarray:
    """``(Q, pool)``: each row's ``pool`` cheapest columns, cheapest first, ties by column:
    ``np.argsort(cost, 1, kind="stable")[:, :pool]`` without sorting all N donors (a partition,
    then a sort of the few at or under each row's ``pool``-th cost)."""
    if pool >= cost.shape[1]:
        return np.argsort(cost, 1, kind="stable")[:, :pool]
    kth = np.partition(cost, pool - 1, axis=1)[:, pool - 1:pool]
    out = np.empty((len(cost), pool), np.int64)
    for q in range(len(cost)):
        cand = np.flatnonzero(cost[q] <= kth[q, 0]) if np.isfinite(kth[q, 0]) else np.arange(cost.shape[1])
        out[q] = cand[np.argsort(cost[q, cand], kind="stable")[:pool]]
    return out


def choose(index: DonorSource, cost: np.ndarray, settings: DonorSettings, seeds: list[int]) -> np.ndarray:
    """``(Q, K) int64`` donor indices, K = ``settings.variants``: column 0 is each query's
    cheapest donor; later columns are drawn from its ``pool`` cheapest with a seeded Gumbel draw
    that favours cheap donors and donors unlike those already chosen. ``seeds``: one int per
    query (the same seed and bank give the same choice)."""
    k = settings.variants
    finite = np.isfinite(cost).sum(1)
    if (finite < k).any():
        raise ValueError(f"the bank has fewer than {k} donors that are not the query itself")
    pool = min(max(settings.pool, k), cost.shape[1])
    order = cheapest(cost, pool)
    # Variants should differ in colour (hair colour, clothes, background), not in the outline of
    # the head: a different outline is how a man's short crop or a woman's long hair gets in.
    sig = index.signature.reshape(len(index), 64, 3)[..., 1:].reshape(len(index), -1)
    out = np.zeros((len(cost), k), np.int64)
    for q in range(len(cost)):
        cand = order[q][np.isfinite(cost[q, order[q]])]
        chosen = [int(cand[0])]
        if k > 1:
            rng = np.random.default_rng([settings.seed, seeds[q]])
            gumbel = rng.gumbel(size=len(cand))
            # Variants also stay near the best donor in descriptor space: the best donor agrees with
            # the query on gender and age far more often than the 2nd-24th do, and closeness to
            # both is a stronger guard than closeness to the query alone.
            c = cost[q, cand] + settings.anchor * np.linalg.norm(index.descriptors[cand] - index.descriptors[cand[0]], axis=1)
            spread = max(float(c[-1] - c[0]), 1e-6)
            for _ in range(1, k):
                far = np.min(np.linalg.norm(sig[cand][:, None] - sig[chosen][None], axis=-1), 1)
                score = -(c - c[0]) / spread + settings.diversity * far / (far.max() + 1e-6) + 0.3 * gumbel
                score[np.isin(cand, chosen)] = -np.inf
                chosen.append(int(cand[int(np.argmax(score))]))
        out[q] = chosen
    return out
