"""Person masks of GrabCut and the selfie network on real aligned photos.

The photos (tests/data/segment/*.png) are the 128x128 ``facefill align`` outputs of
tests/data/faces and examples/raw, stored so that alignment changes do not move the outlines.
Checks without labels, from the landmarks: the face is inside the person mask, the hair band
above the brows is kept, the top corners are rejected. With labels: person outlines drawn by
hand (tests/data/segment/person_polygons.json), scored by IoU.
"""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.common import hair_band  # shared with benchmarks/segment.py
from facefill.mask.region import face_mask
from facefill.segment import get_segmenter, refine

SEG = Path(__file__).parents[1] / "data" / "segment"
LANDMARKS = {k: np.array(v) for k, v in json.loads((SEG / "landmarks.json").read_text())["landmarks"].items()}
POLYGONS = json.loads((SEG / "person_polygons.json").read_text())["polygons"]
NAMES = sorted(LANDMARKS)


@pytest.fixture(scope="module")
def masks():
    """name -> (image, face mask, {segmenter: person mask >= 0.5})."""
    segmenters = {n: get_segmenter(n) for n in ("grabcut", "selfie")}
    out = {}
    for name in NAMES:
        img = np.ascontiguousarray(cv2.imread(str(SEG / f"{name}.png"))[..., ::-1])
        face = face_mask(LANDMARKS[name], 128)
        out[name] = img, face, {k: s(img, face) >= 0.5 for k, s in segmenters.items()}
    return out


def polygon_mask(name: str) -> np.ndarray:
    m = np.zeros((128, 128), np.uint8)
    cv2.fillPoly(m, [np.array(p, np.int32) for p in POLYGONS[name]], 1)
    return m > 0


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.mark.parametrize("method", ["grabcut", "selfie"])
@pytest.mark.parametrize("name", NAMES)
def test_face_hair_kept_and_top_corners_rejected(masks, method, name):
    img, face, by_method = masks[name]
    person = by_method[method]
    lm = LANDMARKS[name]
    inner = face_mask(lm, 128, grow=-3) > 0.5
    assert person[inner].all()  # the face (3 px inside its outline) is all person
    assert person[face > 0.5].mean() > 0.98
    band = hair_band(lm, person.shape)
    assert band.sum() > 500 and person[band].mean() > 0.9  # hair / forehead above the brows
    assert not person[:10, :10].any() and not person[:10, -10:].any()  # top corners: background
    assert 0.25 < person.mean() < 0.7
    fg = refine(person.astype(np.float32), img, face)
    assert fg[face > 0.5].all() and fg[person].all()  # refinement only adds


def test_network_beats_grabcut_on_hand_drawn_outlines(masks):
    scores = {m: [iou(masks[n][2][m], polygon_mask(n)) for n in NAMES] for m in ("grabcut", "selfie")}
    mean = {m: float(np.mean(s)) for m, s in scores.items()}
    print({m: [round(x, 3) for x in s] for m, s in scores.items()}, mean)
    assert mean["selfie"] > mean["grabcut"] + 0.03, scores
    assert min(scores["selfie"]) > 0.85 and mean["selfie"] > 0.9, scores


def test_polygons_are_people_not_frames():
    """The outlines are a sanity-checked label: head on top, open at the bottom, not the frame."""
    for name in NAMES:
        m = polygon_mask(name)
        assert 0.3 < m.mean() < 0.7 and m[-1].mean() > 0.6 and not m[:5].any()
        assert m[face_mask(LANDMARKS[name], 128) > 0.5].mean() > 0.97
