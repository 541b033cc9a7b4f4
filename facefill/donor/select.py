"""Donor choice: which bank faces lend their context to a query face.

A donor's cost for a query (lower is better) is a weighted sum, in units of face-descriptor
distance (two different people are typically 0.6-0.9 apart):

* ``identity``: Euclidean distance of the dlib descriptors of the two face-masked photos. This
  is what keeps gender, age and ethnicity: the descriptor's nearest faces share them far more
  often than landmarks or colour do;
* ``shape``: RMS distance (aligned pixels, counted at 128 px whatever the size) of the jaw line and brows, per pixel;
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
          settings: DonorSettings, gender_age: tuple[np.ndarray, np.ndarray] | None = None,
          allowed: np.ndarray | None = None) -> np.ndarray:
    """``(Q, N) float32`` cost of every donor for every query. ``descriptors (Q, 128)``,
    ``landmarks (Q, 68, 2)``, ``skin (Q, 6)`` (Lab mean, std); ``gender_age``: the queries'
    ``(p_male (Q,), age (Q,))`` (None: no gender or age term); ``allowed``: ``(N,) bool``, False
    for donors the user excluded. Duplicates, excluded donors and donors of the other gender
    cost ``inf`` (:func:`gender_age_cost`)."""
    pre = _donor_sums(index)
    q_desc = descriptors.astype(np.float32)
    ident = (q_desc ** 2).sum(1)[:, None] + pre["descriptors"][None]  # (Q, N) buffers reused in place below
    ident -= 2 * q_desc @ index.descriptors.T
    np.sqrt(np.maximum(ident, 0, out=ident), out=ident)
    ql = landmarks[:, SHAPE_POINTS].reshape(len(landmarks), -1).astype(np.float32)
    shape = (ql ** 2).sum(1)[:, None] + pre["shape"][None]
    shape -= 2 * ql @ pre["shape_points"].T
    np.sqrt(np.divide(np.maximum(shape, 0, out=shape), len(SHAPE_POINTS), out=shape), out=shape)
    shape *= 128.0 / index.size  # pixels of a 128 px crop
    pose = _distance(pose_from_landmarks(landmarks), index.pose)
    colour = _distance(skin[:, :3], index.skin[:, :3])
    colour /= 100.0
    cost = settings.identity * ident  # summed in place, term by term, in the order of the docstring
    for weight, term in ((settings.shape, shape), (settings.pose, pose), (settings.skin, colour)):
        term *= weight
        cost += term
    cost += settings.padding * index.padding[None]
    cost[ident < settings.duplicate] = np.inf
    if allowed is not None:
        cost[:, ~allowed] = np.inf
    if gender_age is not None:
        p_male = consensus_gender(index, cost, gender_age[0], settings)
        cost += gender_age_cost(index, p_male, gender_age[1], settings, np.isfinite(cost))
    if settings.silhouette > 0 and len(index) > settings.consensus:
        top = np.argpartition(cost, settings.consensus, axis=1)[:, :settings.consensus]
        outline = np.median(index.silhouette[top], axis=1)  # (Q, 256)
        q2 = (outline ** 2).sum(1)[:, None] + pre["silhouette"][None]
        q2 -= 2 * outline @ index.silhouette.T
        np.sqrt(np.divide(np.maximum(q2, 0, out=q2), index.silhouette.shape[1], out=q2), out=q2)
        q2 *= settings.silhouette
        cost += q2
    return cost.astype(np.float32, copy=False)


def _donor_sums(index: DonorSource) -> dict[str, np.ndarray]:
    """What every :func:`costs` call needs of the donors alone, ``(N,)`` squared norms of the
    descriptors, shape points and silhouettes and the ``(N, 54)`` shape points: computed once per
    source and kept on it (at 51,000 donors they cost as much as the costs of 16 queries)."""
    key = (len(index), id(index.descriptors), id(index.landmarks), id(index.silhouette))
    kept = getattr(index, "_choice_sums", None)
    if kept is not None and kept[0] == key:
        return kept[1]
    points = np.ascontiguousarray(index.landmarks[:, SHAPE_POINTS].reshape(len(index), -1))
    sums = {"descriptors": np.asarray((index.descriptors ** 2).sum(1)), "shape_points": points,
            "shape": (points ** 2).sum(1), "silhouette": np.asarray((index.silhouette ** 2).sum(1))}
    try:
        index._choice_sums = (key, sums)
    except AttributeError:  # a source that takes no attributes: computed on every call
        pass
    return sums


def _distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(Q, C)``, ``(N, C)`` -> ``(Q, N)`` Euclidean distances, summed channel by channel (the
    same sums as ``((a[:, None] - b[None]) ** 2).sum(-1)``, without its ``(Q, N, C)`` temporary)."""
    out = (a[:, None, 0] - b[None, :, 0]) ** 2
    for c in range(1, a.shape[1]):
        out += (a[:, None, c] - b[None, :, c]) ** 2
    return np.sqrt(out)


def consensus_gender(index: DonorSource, cost: np.ndarray, p_male: np.ndarray, settings: DonorSettings) -> np.ndarray:
    """The queries' ``p_male (Q,)`` with each *unsure* one (``[gender_margin, 1 - gender_margin]``:
    a profile, a child, a poor photo) replaced by the median ``p_male`` of its ``consensus``
    cheapest donors by ``cost (Q, N)`` (descriptor, shape, pose and skin, before gender): the face
    descriptor tells gender apart better than the gender network does on such faces, and without it
    an unsure query's variants mixed genders (issue 31: a man in profile, p_male 0.23, given a
    woman's red hair). Where the donors are unsure too, the query stays unsure (no gender term).
    A source without ``p_male`` leaves the queries as they are."""
    d_p = getattr(index, "p_male", None)
    p_male = np.asarray(p_male, np.float32)
    unsure = (p_male >= settings.gender_margin) & (p_male <= 1 - settings.gender_margin)
    if d_p is None or not unsure.any() or len(index) <= settings.consensus:
        return p_male
    top = np.argpartition(cost[unsure], settings.consensus - 1, axis=1)[:, :settings.consensus]
    out = p_male.copy()
    out[unsure] = np.median(np.asarray(d_p)[top], axis=1)
    return out


def gender_age_cost(index: DonorSource, p_male: np.ndarray, age: np.ndarray, settings: DonorSettings,
                    usable: np.ndarray | None = None) -> np.ndarray:
    """``(Q, N) float32``: what gender and age add to each donor's cost (``inf``: never chosen).

    Gender: a query whose ``p_male`` is sure (outside ``[gender_margin, 1 - gender_margin]``)
    never gets a donor on the other side of 0.5, and a donor less sure than the query costs
    ``gender * |p_query - p_donor|``; an unsure query gets no gender term (as before the
    networks). Age: ``age * |age_query - age_donor| / 10`` (years), and donors more than
    ``age_band`` years away cost ``inf`` unless no donor of the query's gender is that close
    (then the cost term alone; ``usable`` ``(Q, N) bool``: donors still possible by the other
    terms, False for copies of the query and excluded donors). A source without gender and age
    (None) adds nothing."""
    q, n = len(p_male), len(index)
    d_p, d_age = getattr(index, "p_male", None), getattr(index, "age", None)
    if d_p is None or d_age is None or settings.gender_margin >= 0.5:
        return np.zeros((q, n), np.float32)
    p_male, age = np.asarray(p_male, np.float32), np.asarray(age, np.float32)
    sure = (p_male < settings.gender_margin) | (p_male > 1 - settings.gender_margin)
    other = (p_male[:, None] >= 0.5) != (d_p[None] >= 0.5)
    extra = np.where(sure[:, None], settings.gender * np.abs(p_male[:, None] - d_p[None]), 0.0)
    extra[sure[:, None] & other] = np.inf
    gap = np.abs(age[:, None] - d_age[None])
    extra = extra + settings.age * gap / 10.0
    far = gap > settings.age_band
    keep = np.isfinite(extra) & ~far & (True if usable is None else usable)
    far &= keep.any(1, keepdims=True)  # no donor within the band: the cost term alone
    extra[far] = np.inf
    return extra.astype(np.float32)


def _distinct(index: DonorSource, order: np.ndarray, pool: int, chunk: int = 256) -> list[int]:
    """The first ``pool`` donors of ``order`` with no two of the same content (the same photo
    twice in a bank: descriptors and thumbnails equal within 1e-3), cheapest kept. Rows are read
    ``chunk`` at a time; an exact copy of a kept row is known by its bytes without comparing."""
    kept: list[int] = []
    k_desc = np.zeros((pool, index.descriptors.shape[1]), np.float32)
    k_sig = np.zeros((pool, index.signature.shape[1]), np.float32)
    exact: set[bytes] = set()
    for start in range(0, len(order), chunk):
        ids = order[start:start + chunk]
        desc, sig = np.asarray(index.descriptors[ids]), np.asarray(index.signature[ids])
        for j, i in enumerate(ids):
            key = desc[j].tobytes() + sig[j].tobytes()
            if key in exact:
                continue
            n = len(kept)
            if n and ((np.abs(k_desc[:n] - desc[j]).max(1) < 1e-3) & (np.abs(k_sig[:n] - sig[j]).max(1) < 1e-3)).any():
                continue
            k_desc[n], k_sig[n] = desc[j], sig[j]
            kept.append(int(i))
            exact.add(key)
            if len(kept) == pool:
                return kept
    return kept


def cheapest(row: np.ndarray, m: int) -> np.ndarray:
    """The indices of at least the ``m`` smallest values of ``row (N,)``, in the order of
    ``np.argsort(row, kind="stable")`` (value, then index): the same prefix as the full stable
    sort, every value tied with the m-th included, in O(N) instead of O(N log N)."""
    if m >= len(row):
        return np.argsort(row, kind="stable")
    cut = row[np.argpartition(row, m - 1)[:m]].max()
    top = np.flatnonzero(row <= cut) if not np.isnan(cut) else np.arange(len(row))
    return top[np.argsort(row[top], kind="stable")]


def choose(index: DonorSource, cost: np.ndarray, settings: DonorSettings, seeds: list[int],
           pins: list[int | None] | None = None) -> tuple[np.ndarray, list[str | None]]:
    """``(Q, K) int64`` donor indices, K = ``settings.variants``, and per query None or why it
    has no donors (then its row is -1). Column 0 is each query's cheapest donor (or its pin:
    ``pins[q]``, a donor index the user chose); later columns are drawn from its ``pool``
    cheapest with a seeded Gumbel draw that favours cheap donors and donors unlike those already
    chosen. No two columns hold the same content. ``seeds``: one int per query (the same seed
    and bank give the same choice)."""
    k = settings.variants
    pins = pins or [None] * len(cost)
    out = np.full((len(cost), k), -1, np.int64)
    why: list[str | None] = [None] * len(cost)
    for q in range(len(cost)):
        row = cost[q].copy()
        if pins[q] is not None:
            row[pins[q]] = -np.inf  # first, whatever its cost
        pool = max(settings.pool, k)
        for m in (8 * pool, 64 * pool, len(row)):  # the cheapest few first; the whole order where copies fill them
            order = cheapest(row, m)
            cand = np.asarray(_distinct(index, order[np.isfinite(row[order]) | (row[order] == -np.inf)], pool), np.int64)
            if len(cand) == pool or len(order) == len(row):
                break
        if len(cand) < k:
            why[q] = (f"the donor bank has {len(cand)} usable donors for this face (needs {k}: --variants): the others "
                      "are copies of it, of the other gender, excluded or duplicates of each other")
            continue
        out[q] = _variants(index, cost[q], cand, settings, seeds[q])
    return out, why


def _variants(index: DonorSource, cost: np.ndarray, cand: np.ndarray, settings: DonorSettings, seed: int) -> list[int]:
    """``settings.variants`` donors from ``cand`` (cheapest or pinned first): see :func:`choose`."""
    chosen = [int(cand[0])]
    if settings.variants == 1:
        return chosen
    # Variants should differ in colour (hair colour, clothes, background), not in the outline of
    # the head: a different outline is how a man's short crop or a woman's long hair gets in.
    # Only the candidates' rows are read (the whole bank's would be copied for every batch).
    sig = np.asarray(index.signature[cand]).reshape(len(cand), 64, 3)[..., 1:].reshape(len(cand), -1)
    picked = [0]  # positions in cand of the chosen donors
    rng = np.random.default_rng([settings.seed, seed])
    gumbel = rng.gumbel(size=len(cand))
    # Variants also stay near the best donor in descriptor space: the best donor agrees with
    # the query on gender and age far more often than the 2nd-24th do, and closeness to
    # both is a stronger guard than closeness to the query alone.
    c = np.where(np.isfinite(cost[cand]), cost[cand], 0.0)
    c = c + settings.anchor * np.linalg.norm(index.descriptors[cand] - index.descriptors[cand[0]], axis=1)
    spread = max(float(c[-1] - c[0]), 1e-6)
    for _ in range(1, settings.variants):
        far = np.min(np.linalg.norm(sig[:, None] - sig[picked][None], axis=-1), 1)
        score = -(c - c[0]) / spread + settings.diversity * far / (far.max() + 1e-6) + 0.3 * gumbel
        score[np.isin(cand, chosen)] = -np.inf
        picked.append(int(np.argmax(score)))
        chosen.append(int(cand[picked[-1]]))
    return chosen
