"""The face region refined: the landmark hull without the background, hair or hat in its outer band.

The hull of the 68 landmarks (:func:`facefill.mask.region.face_mask`) often holds, along its
edge, a sliver of background by a cheek, hair over a temple, a cap's brim over the brows. These
are taken out here, and nothing else:

* **the core is kept**: the hull of the eyes, nose and mouth (landmarks 27-67) and of the
  jaw and brow points pulled ``core`` of the way towards the face's centre, and the brows. Only the hull's
  outer band (hull minus core) may lose pixels, but for **sure background in the core** outside
  the eyes, nose and mouth (person probability under ``core_background``, where the segmenter
  sees the person on the eyes, nose and mouth): in a profile the far jaw and brow points, and
  the glasses ellipse of the far eye, lie in the background beyond the nose;
* **background**: band pixels the shipped person segmenter (:mod:`facefill.segment.selfie`,
  MediaPipe's selfie network) gives a person probability below ``background``;
* **hair and hats**: band pixels above the nose's base whose colour is far from the skin (a
  Gaussian in Lab fitted to the cheeks and nose, Mahalanobis distance above ``colour``), and
  which reach the hull's edge (hair and brims come from outside the face). Below the nose the
  colour test is off, so a beard or moustache stays (but for its outermost px along the jaw:
  the jaw's rim below);
* **the jaw's rim**: the hull's outermost ``jaw`` px (3 px of a 128 px crop) along the jaw and
  chin (landmarks 2-14) always go, whatever their colour (:func:`jaw_rim`): there the photo holds
  the jaw's shadow line, a collar's edge or the photo's own edge, a dark or pale rim against
  another person's neck (issue 31);
* **clean-up**: both maps are opened over the whole image (a thin line - a glasses arm, a strand,
  a wrinkle - is not removed; a background or hair area outside the hull keeps its extension
  into the band), removed components under ``min_area`` px are dropped, the kept region is smoothed (a Gaussian of
  ``smooth`` px, cut at 0.5), made one connected region and filled (no hole inside the face).

:func:`refine_face_mask` does one image; :func:`refine_face_masks` runs the segmenter over a
batch first. Masks are ``(H, W)`` uint8, 255 = face, as ``facefill mask`` writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import cv2
import numpy as np

#: landmarks whose region seeds the skin colour: both cheeks under the eyes, and the nose
_CHEEKS = ((1, 2, 3, 4, 48, 31, 39, 40, 41, 36), (15, 14, 13, 12, 54, 35, 42, 47, 46, 45))
_EYES, _BROWS, _MOUTH = (range(36, 42), range(42, 48)), (range(17, 22), range(22, 27)), range(48, 60)


@dataclass(frozen=True)
class RefineSettings:
    """How :func:`refine_face_mask` refines (sizes in pixels of a 128 px crop, scaled with it).

    ``core``: fraction of the way the jaw points are pulled towards the face centre for the
    always-kept core (0 = the whole hull is kept, refinement off). ``background``: person
    probability under which a band pixel is background. ``colour``: Mahalanobis distance in Lab
    from the skin above which a band pixel above the nose is hair or a hat (0: off).
    ``open``: radius of the opening of the removed pixels. ``min_area``: smallest removed
    component kept. ``smooth``: Gaussian sigma of the final edge. ``jaw``: how far (px) the
    kept region is pulled in along the jaw and chin (:func:`jaw_rim`; 0: not at all).
    ``core_background``: person probability under which a core pixel outside the hull of the eyes,
    nose and mouth is background all the same (the far side of a profile; 0: the core is all kept)."""

    core: float = 0.2
    background: float = 0.5
    colour: float = 4.5
    open: int = 2
    min_area: int = 12
    smooth: float = 1.5
    jaw: float = 3.0
    core_background: float = 0.2


@lru_cache(maxsize=1)
def _segmenter():
    from facefill.segment.selfie import SelfieSegmenter

    return SelfieSegmenter()


def person_probability(images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The selfie network's person probability ``(H, W)`` float32 in [0, 1] of each ``(H, W, 3)``
    uint8 RGB image (batched, CPU)."""
    return _segmenter().batch(list(images))


def core_mask(landmarks: np.ndarray, shape: tuple[int, int], core: float = 0.2) -> np.ndarray:
    """See :func:`_core_mask`; the last few are kept (the region's rules and the donor fit's
    hair cover ask for the same face's core several times), read-only."""
    lm = np.ascontiguousarray(landmarks, np.float64).reshape(68, 2)
    return _core_mask_cached(lm.tobytes(), tuple(shape), float(core))


@lru_cache(maxsize=64)
def _core_mask_cached(lm: bytes, shape: tuple[int, int], core: float) -> np.ndarray:
    out = _core_mask(np.frombuffer(lm, np.float64).reshape(68, 2), shape, core)
    out.flags.writeable = False
    return out


def _core_mask(landmarks: np.ndarray, shape: tuple[int, int], core: float = 0.2) -> np.ndarray:
    """``(H, W)`` bool: the inner face always kept: the hull of the nose, eyes and mouth
    (landmarks 27-67) and of the jaw and brow points (0-26) moved ``core`` of the way towards
    their centre, the brows themselves (their landmark lines drawn 1/25 of the side thick), and
    where glasses sit (an ellipse around each eye, 2.8 eye widths wide and 2 high). The band is
    then open between a jaw's end and a brow's outer end, where hair and background come in at
    the temples, but not over a glasses rim."""
    lm = np.asarray(landmarks, np.float64).reshape(68, 2)
    centre = lm[27:68].mean(0)
    outer = centre + (1.0 - core) * (lm[:27] - centre)
    pts = np.round(np.concatenate([lm[27:], outer]) * 16).astype(np.int32)
    out = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(out, cv2.convexHull(pts), 1, lineType=cv2.LINE_8, shift=4)
    thick = max(1, round(shape[0] / 25))
    for brow in _BROWS:
        line = np.round(lm[list(brow)] * 16).astype(np.int32)
        cv2.polylines(out, [line], False, 1, thickness=thick, lineType=cv2.LINE_8, shift=4)
    for eye in _EYES:  # where glasses sit, rims included: an ellipse 2.8 eye widths wide, 2 high
        pts = lm[list(eye)]
        width = np.linalg.norm(pts[3] - pts[0])
        centre = tuple(int(v) for v in np.round(pts.mean(0) * 16))
        axes = (int(round(1.4 * width * 16)), int(round(1.0 * width * 16)))
        angle = float(np.degrees(np.arctan2(*(pts[3] - pts[0])[::-1])))
        cv2.ellipse(out, centre, axes, angle, 0, 360, 1, -1, lineType=cv2.LINE_8, shift=4)
    return out.astype(bool)


def _polygon(lm: np.ndarray, idx, shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    cv2.fillPoly(out, [np.round(lm[list(idx)] * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return out.astype(bool)


def skin_distance(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """``(H, W)`` float32: Mahalanobis distance of each pixel's Lab colour from the skin of the
    cheeks (Gaussian of the cheek pixels inside the core, away from the eyes, brows and mouth,
    the 10 % farthest from their median left out)."""
    lm = np.asarray(landmarks, np.float64).reshape(68, 2)
    shape = image.shape[:2]
    seed = _polygon(lm, _CHEEKS[0], shape) | _polygon(lm, _CHEEKS[1], shape)
    # away from the hull's band: what the band holds (a background sliver, hair) must not be the skin
    k = np.ones((2 * round(2 * shape[0] / 128) + 1,) * 2, np.uint8)  # 5x5 at 128 px, scaled with the crop
    seed &= cv2.erode(core_mask(lm, shape).astype(np.uint8), k).astype(bool)
    for part in (*_EYES, *_BROWS, _MOUTH):
        seed &= ~cv2.dilate(_polygon(lm, part, shape).astype(np.uint8), k).astype(bool)
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    px = lab[seed] if seed.sum() >= 20 else lab[core_mask(lm, shape)]
    d = np.abs(px - np.median(px, 0)).sum(1)
    px = px[d <= np.quantile(d, 0.9)]
    mean = px.mean(0)
    cov = np.cov(px.T) + np.diag([64.0, 4.0, 4.0])  # a floor: flat skin has little spread; light varies (shade)
    diff = (lab.reshape(-1, 3) - mean).astype(np.float64)
    d2 = ((diff @ np.linalg.inv(cov)) * diff).sum(1)  # diff^T inv diff per pixel (3x faster than einsum)
    return np.sqrt(d2).reshape(shape).astype(np.float32)


def jaw_rim(hull: np.ndarray, landmarks: np.ndarray, px: float) -> np.ndarray:
    """``(H, W)`` bool: the hull's outermost ``px`` pixels along the jaw and chin (the hull's
    edge within ``px + 2`` px of the jaw line through landmarks 2-14). There the photo's own
    pixels are the jaw's shadow line, a collar's edge or the photo's edge, which would stand as a
    dark or pale rim against another person's neck (issue 31); a donor's own jaw and neck, warped
    to these landmarks, take their place."""
    if px <= 0:
        return np.zeros(hull.shape, bool)
    lm = np.asarray(landmarks, np.float64).reshape(68, 2)
    depth = cv2.distanceTransform(hull.astype(np.uint8), cv2.DIST_L2, 5)  # 1 on the hull's outermost pixels
    zone = np.zeros(hull.shape, np.uint8)
    r = int(np.ceil(px)) + 2
    cv2.polylines(zone, [np.round(lm[2:15] * 16).astype(np.int32)], False, 1, thickness=2 * r + 1,
                  lineType=cv2.LINE_8, shift=4)
    return hull & (depth <= px) & (zone > 0)


def _touching(removed: np.ndarray, hull: np.ndarray, min_area: int) -> np.ndarray:
    """The components of ``removed`` (uint8) of at least ``min_area`` px that reach the hull's edge."""
    edge = hull & ~cv2.erode(hull.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(removed, connectivity=8)
    keep = np.zeros(n, bool)
    for i in np.unique(labels[edge & (labels > 0)]):
        keep[i] = stats[i, cv2.CC_STAT_AREA] >= min_area
    return keep[labels]


def _one_region(keep: np.ndarray, core: np.ndarray) -> np.ndarray:
    """The component of ``keep`` holding the core, its holes filled."""
    n, labels = cv2.connectedComponents(keep.astype(np.uint8), connectivity=8)
    ids = np.unique(labels[core & keep])
    region = np.isin(labels, ids[ids > 0])
    outside = np.ones((region.shape[0] + 2, region.shape[1] + 2), np.uint8)  # a frame of non-region
    outside[1:-1, 1:-1] = ~region
    cv2.floodFill(outside, None, (0, 0), 2)  # 2: non-region reachable from the frame; 1 left: holes
    return region | (outside[1:-1, 1:-1] == 1)


def _core_background(person, lm: np.ndarray, core: np.ndarray, hull: np.ndarray, k: np.ndarray,
                     settings: RefineSettings, scale: float) -> np.ndarray:
    """``(H, W)`` bool: sure background (person probability under ``settings.core_background``,
    opened by ``k``) in the core outside the hull of the eyes, nose and mouth, reaching the hull's
    edge; none where the segmenter does not see the person over the eyes, nose and mouth (a
    segmenter that misses the whole face is not trusted inside it)."""
    person = np.asarray(person)
    inner = np.zeros(hull.shape, np.uint8)
    cv2.fillConvexPoly(inner, cv2.convexHull(np.round(lm[27:] * 16).astype(np.int32)), 1, lineType=cv2.LINE_8, shift=4)
    inner = inner.astype(bool)
    if float(person[inner].mean()) < 0.5:
        return np.zeros(hull.shape, bool)
    sure = cv2.morphologyEx((person < settings.core_background).astype(np.uint8), cv2.MORPH_OPEN, k).astype(bool)
    return _touching((core & ~inner & sure).astype(np.uint8), hull, round(settings.min_area * scale * scale))


def refine_face_mask(image: np.ndarray, mask: np.ndarray, landmarks: np.ndarray, person: np.ndarray | None = None,
                     settings: RefineSettings = RefineSettings()) -> np.ndarray:
    """The face region of an aligned crop without background, hair or hats in the hull's band.

    Args:
        image: ``(H, W, 3)`` uint8 RGB aligned crop.
        mask: ``(H, W)`` hull mask (uint8 255 = face, or float 1 = face; face where > half).
        landmarks: ``(68, 2)`` pixel coordinates in ``image``.
        person: the selfie network's ``(H, W)`` person probability in [0, 1]
            (:func:`person_probability`); None computes it.
    Returns:
        ``(H, W)`` uint8, 255 = face: a subset of the hull that holds the whole core
        (:func:`core_mask`) but its sure background, one connected region without holes.
    """
    m = np.asarray(mask)
    hull = m > (127 if m.dtype == np.uint8 else 0.5)
    if settings.core <= 0 or not hull.any():
        return hull.astype(np.uint8) * 255
    lm = np.asarray(landmarks, np.float64).reshape(68, 2)
    core = core_mask(lm, hull.shape, settings.core) & hull
    band = hull & ~core
    if person is None:
        person = person_probability([image])[0]
    scale = hull.shape[0] / 128.0
    r = max(1, round(settings.open * scale))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    # opened over the whole image: a background or hair area outside the hull survives, and so
    # does its thin extension into the band; a thin dark line inside the face does not
    other = np.asarray(person) < settings.background
    if settings.colour > 0:
        upper = np.arange(hull.shape[0])[:, None] < lm[31:36, 1].mean()
        other |= upper & (skin_distance(image, lm) > settings.colour)
    other = cv2.morphologyEx(other.astype(np.uint8), cv2.MORPH_OPEN, k).astype(bool)
    removed = _touching((band & other).astype(np.uint8), hull, round(settings.min_area * scale * scale))
    if settings.core_background > 0:
        removed |= _core_background(person, lm, core, hull, k, settings, scale)
        core &= ~removed
    removed |= jaw_rim(hull, lm, settings.jaw * scale) & ~core
    if not removed.any():
        return hull.astype(np.uint8) * 255
    soft = cv2.GaussianBlur((hull & ~removed).astype(np.float32), (0, 0), settings.smooth * scale)
    keep = ((soft >= 0.5) & hull) | core
    return _one_region(keep, core).astype(np.uint8) * 255


def refine_face_masks(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], landmarks: Sequence[np.ndarray],
                      settings: RefineSettings = RefineSettings()) -> list[np.ndarray]:
    """:func:`refine_face_mask` over a batch, the person segmenter run once for all images."""
    if settings.core <= 0:
        return [refine_face_mask(i, m, lm, None, settings) for i, m, lm in zip(images, masks, landmarks)]
    people = person_probability(images)
    return [refine_face_mask(i, m, lm, p, settings) for i, m, lm, p in zip(images, masks, landmarks, people)]
