"""The refined face region (facefill.mask.refine) on the real test photos, with and without a
background sliver painted into the hull's band."""

import cv2
import numpy as np
import pytest

from facefill.align.sidecar import read_sidecar
from facefill.data.io import read_image
from facefill.mask.refine import RefineSettings, core_mask, jaw_rim, refine_face_mask, refine_face_masks
from facefill.mask.region import face_mask

NAMES = ["obama.png", "biden.png", "astronaut.png", "obama2.png"]
TEAL = (0, 150, 150)


@pytest.fixture(scope="module")
def faces(aligned_faces):
    """(image, hull mask uint8, landmarks) of each aligned test photo."""
    out = []
    for n in NAMES:
        image = read_image(aligned_faces / n)
        lm = np.asarray(read_sidecar(aligned_faces / n)["landmarks"], np.float64)
        out.append((image, (face_mask(lm, image.shape[:2]) > 0.5).astype(np.uint8) * 255, lm))
    return out


def with_sliver(image: np.ndarray, hull: np.ndarray, lm: np.ndarray, width: int = 7,
                colour: tuple[int, int, int] | None = TEAL) -> tuple[np.ndarray, np.ndarray]:
    """``image`` with a background painted from the left edge of the picture into the hull,
    ``width`` px deep, from the eyes down to the mouth (as a wall seen past a cheek), and the
    painted pixels inside the hull (bool). ``colour`` None: each row gets the photo's own
    background (its pixel 2 px from the left edge): the background reaching into the hull."""
    hull = hull > 127
    inside = hull & ~cv2.erode(hull.astype(np.uint8), np.ones((2 * width + 1, 2 * width + 1), np.uint8)).astype(bool)
    rows = np.zeros_like(hull)
    rows[int(lm[36:48, 1].mean()):int(lm[48:60, 1].mean()) + 1] = True
    left = np.arange(hull.shape[1])[None] < lm[27:36, 0].mean()
    paint = rows & left & (inside | ~hull) & ~np.maximum.accumulate(hull & ~inside, axis=1)
    out = image.copy()
    if colour is None:
        out = np.where(paint[..., None], image[:, 2:3], image)
    else:
        out[paint] = colour
    return out, paint & hull


def is_one_region_without_holes(mask: np.ndarray) -> bool:
    m = (mask > 127).astype(np.uint8)
    n, _ = cv2.connectedComponents(m, connectivity=8)
    n_bg, _ = cv2.connectedComponents(np.pad(1 - m, 1, constant_values=1), connectivity=4)
    return n == 2 and n_bg == 2  # one region, and one background reaching the frame (no hole)


def band_sliver(image, hull, lm, colour=None):
    """:func:`with_sliver`, and its pixels in the hull's band (outside the always-kept core)."""
    painted, sliver = with_sliver(image, hull, lm, colour=colour)
    return painted, sliver & ~core_mask(lm, hull.shape)


def test_background_sliver_is_removed(faces):
    for image, hull, lm in faces:
        painted, sliver = band_sliver(image, hull, lm)
        assert sliver.sum() > 60  # a real sliver, several px deep along the cheek
        refined = refine_face_mask(painted, hull, lm) > 127
        assert (refined & sliver).sum() <= 0.2 * sliver.sum(), "the background sliver inside the hull was kept"
        assert not (refined & ~(hull > 127)).any()  # never grows the hull


def test_segmenter_alone_removes_the_background(faces):
    """With the colour test off, the person segmenter takes the photo's own background out."""
    for image, hull, lm in faces:
        painted, sliver = band_sliver(image, hull, lm)
        refined = refine_face_mask(painted, hull, lm, settings=RefineSettings(colour=0)) > 127
        assert (refined & sliver).sum() <= 0.25 * sliver.sum()


def test_colour_model_alone_removes_a_teal_fringe_above_the_nose(faces):
    """With a segmenter that sees a person everywhere, the skin colour model takes out a teal
    fringe above the nose, and nothing below it (beards stay; the jaw's rim, taken whatever its
    colour, is left on here)."""
    for image, hull, lm in faces:
        painted, sliver = band_sliver(image, hull, lm, colour=TEAL)
        upper = np.arange(hull.shape[0])[:, None] < lm[31:36, 1].mean() - 2
        refined = refine_face_mask(painted, hull, lm, person=np.ones(hull.shape, np.float32),
                                   settings=RefineSettings(jaw=0)) > 127
        assert (sliver & upper).sum() > 25
        assert (refined & sliver & upper).sum() <= 0.2 * (sliver & upper).sum()
        lower = sliver & ~cv2.dilate(upper.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        assert refined[lower].all()


def test_clean_face_is_unchanged_within_tolerance_and_a_sliver_is_not(faces):
    for image, hull, lm in faces:
        clean = refine_face_mask(image, hull, lm) > 127
        painted, sliver = with_sliver(image, hull, lm, colour=None)
        sliver &= ~core_mask(lm, hull.shape)  # (the core always stays)
        dirty = refine_face_mask(painted, hull, lm) > 127
        n = (hull > 127).sum()
        rim = jaw_rim(hull > 127, lm, RefineSettings().jaw)  # always taken (about 10 % of the hull)
        assert (clean & rim).sum() <= 0.05 * rim.sum()  # (the smoothed edge rounds the rim's two ends)
        assert ((hull > 127) & ~rim).sum() - clean.sum() <= 0.03 * n  # a clean studio portrait loses at most 3 % more
        assert (clean & sliver).sum() > 0.005 * n  # (the sliver's part along the jaw goes with the rim anyway)
        assert clean.sum() - dirty.sum() >= 0.5 * (clean & sliver).sum()  # the same face with a sliver loses it


def with_jaw_line(image: np.ndarray, hull: np.ndarray, lm: np.ndarray, colour=(40, 25, 20)) -> tuple[np.ndarray, np.ndarray]:
    """``image`` with the hull's outermost 2 px along the jaw and chin (landmarks 4-12) painted
    ``colour`` (the jaw's shadow line, or a dark collar's edge, on the photo), and the painted pixels."""
    h = hull > 127
    depth = cv2.distanceTransform(h.astype(np.uint8), cv2.DIST_L2, 5)
    below = np.arange(h.shape[0])[:, None] > lm[[4, 12], 1].min()
    line = h & (depth <= 2) & below & (np.arange(h.shape[1])[None] > lm[4, 0]) & (np.arange(h.shape[1])[None] < lm[12, 0])
    out = image.copy()
    out[line] = colour
    return out, line


def test_a_dark_line_along_the_jaw_is_not_kept(faces):
    """Issue 31's most common flaw: the query's own 1-2 px along the jaw and chin (a shadow line,
    a collar's edge, the photo's edge) kept as face, a dark or pale rim against the donor's neck.
    The kept region is pulled in there; the mouth, the chin above it and the cheeks stay."""
    for image, hull, lm in faces:
        painted, line = with_jaw_line(image, hull, lm)
        assert line.sum() > 60
        for person in (None, np.ones(hull.shape, np.float32)):  # also where the segmenter sees a person
            refined = refine_face_mask(painted, hull, lm, person=person) > 127
            assert not (refined & line).any(), "the dark line along the jaw was kept as face"
            depth = cv2.distanceTransform((hull > 127).astype(np.uint8), cv2.DIST_L2, 5)
            assert refined[depth > 4].mean() > 0.98  # only the rim goes (hair and background aside)
        off = refine_face_mask(painted, hull, lm, person=np.ones(hull.shape, np.float32), settings=RefineSettings(jaw=0))
        assert (off[line] > 0).mean() > 0.9  # the switch: without the pull-in, the line is kept


def test_jaw_rim_follows_the_jaw_only(faces):
    """jaw_rim: the hull's outermost px along landmarks 2-14, nothing at the brows or temples."""
    for image, hull, lm in faces:
        h = hull > 127
        rim = jaw_rim(h, lm, 2.0)
        depth = cv2.distanceTransform(h.astype(np.uint8), cv2.DIST_L2, 5)
        assert rim.any() and (depth[rim] <= 2).all() and h[rim].all()
        assert not rim[: int(lm[17:27, 1].max()) + 1].any()  # nothing above the brows' lower edge
        chin = np.round(lm[8]).astype(int)
        assert rim[chin[1] - 2:chin[1] + 1, chin[0] - 1:chin[0] + 2].any()  # under the chin, it is there
        assert not jaw_rim(h, lm, 0).any()


def test_inner_face_never_removed(faces):
    """The core (brows, eyes, nose, mouth, the jaw pulled in) stays even when the segmenter sees
    no person at all; the band goes then; the result is one region without holes."""
    for image, hull, lm in faces:
        core = core_mask(lm, hull.shape) & (hull > 127)
        none = refine_face_mask(image, hull, lm, person=np.zeros(hull.shape, np.float32)) > 127
        assert none[core].all()
        band = (hull > 127) & ~core
        assert none[band].mean() < 0.2, "with no person seen, the band must go"
        assert is_one_region_without_holes(none.astype(np.uint8) * 255)
        painted, _ = with_sliver(image, hull, lm)
        assert (refine_face_mask(painted, hull, lm) > 127)[core].all()


def test_sure_background_in_the_core_goes_beside_the_eyes_nose_and_mouth_only(faces):
    """A profile's far side: the jaw and brow points (and the far eye's glasses ellipse) put
    background into the core. Where the segmenter is sure of it (and sees the person on the eyes,
    nose and mouth) it goes; the hull of the eyes, nose and mouth always stays; with
    core_background=0 (the old rule) the whole core stays."""
    for image, hull, lm in faces:
        h = hull > 127
        core = core_mask(lm, h.shape) & h
        inner = np.zeros(h.shape, np.uint8)
        cv2.fillConvexPoly(inner, cv2.convexHull(np.round(lm[27:]).astype(np.int32)), 1)
        inner = cv2.erode(inner, np.ones((3, 3), np.uint8)).astype(bool)  # inside the code's own polygon
        person = np.ones(h.shape, np.float32)
        person[:, : int(lm[36, 0]) + 2] = 0.05  # background up to the left eye's outer corner, inside the core
        bg_core = core & (person < 0.2) & ~cv2.dilate(inner.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        assert bg_core.sum() > 30
        refined = refine_face_mask(image, hull, lm, person=person) > 127
        assert refined[bg_core].mean() < 0.2, "sure background in the core stays"
        assert refined[inner & h].all(), "the eyes, nose and mouth must stay"
        assert is_one_region_without_holes(refined.astype(np.uint8) * 255)
        old = refine_face_mask(image, hull, lm, person=person, settings=RefineSettings(core_background=0)) > 127
        assert old[core].all()


def test_real_photos_batched_equals_one_by_one_and_shape(faces):
    images, hulls, lms = zip(*faces)
    painted = [with_sliver(i, h, lm, colour=None)[0] for i, h, lm in faces]
    batch = refine_face_masks(painted, hulls, lms)
    for p, h, lm, b in zip(painted, hulls, lms, batch):
        one = refine_face_mask(p, h, lm)
        assert b.dtype == np.uint8 and b.shape == h.shape and set(np.unique(b)) <= {0, 255}
        np.testing.assert_array_equal(b, one)
        assert is_one_region_without_holes(b)
        assert (b < h).any()  # the sliver went


def test_float_mask_and_core_zero_is_the_hull(faces):
    image, hull, lm = faces[0]
    painted, _ = with_sliver(image, hull, lm)
    np.testing.assert_array_equal(refine_face_mask(painted, hull / 255.0, lm), refine_face_mask(painted, hull, lm))
    np.testing.assert_array_equal(refine_face_mask(painted, hull, lm, settings=RefineSettings(core=0)), hull)
    assert (refine_face_mask(painted, hull, lm) < hull).any()  # and on, it refines


# ----------------------------------------------------------------------------- wired into the commands

def aligned_with_sliver(faces, aligned_faces, tmp_path):
    """A folder ``aligned/`` holding obama's aligned crop with :func:`band_sliver` painted in, and
    its sidecar: ``(folder, painted image, sliver pixels)``."""
    import shutil

    from facefill.data.io import write_image

    image, hull, lm = faces[0]
    painted, sliver = band_sliver(image, hull, lm)
    src = tmp_path / "aligned"
    src.mkdir()
    write_image(src / "obama.png", painted)
    shutil.copy(aligned_faces / "obama.json", src / "obama.json")
    return src, painted, sliver


def test_mask_region_refined_is_written_and_the_face_kept_over_it(faces, aligned_faces, tmp_path):
    """`facefill mask --region refined`: the .mask.png written is the refined region (a sliver
    painted into the hull's band is left out), the face is kept bit-exact over it, and the
    sidecar's mask entry says so; the default stays the hull."""
    from typer.testing import CliRunner

    from facefill.cli.app import app
    from facefill.data.io import read_mask

    image, hull, lm = faces[0]
    src, painted, sliver = aligned_with_sliver(faces, aligned_faces, tmp_path)
    for region, out in (("refined", tmp_path / "refined"), (None, tmp_path / "hull")):
        args = ["mask", str(src), str(out)] + (["--region", region] if region else [])
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 0, r.output
    refined, plain = read_mask(tmp_path / "refined" / "obama.mask.png"), read_mask(tmp_path / "hull" / "obama.mask.png")
    assert np.array_equal(plain > 0, hull > 127)
    assert refined[sliver].mean() <= 0.2 and plain[sliver].mean() == 1.0
    assert (refined <= plain).all() and refined.sum() > 0.9 * plain.sum() - sliver.sum()
    kept = read_image(tmp_path / "refined" / "obama.png")
    assert np.array_equal(kept[refined > 0], painted[refined > 0]) and (kept[(plain > 0) & (refined == 0)] == 0).all()
    assert read_sidecar(tmp_path / "refined" / "obama.png")["mask"]["region"] == "refined"
    assert "region" not in read_sidecar(tmp_path / "hull" / "obama.png")["mask"]  # the hull's entry as before


def test_donor_masks_photos_with_the_refined_region_by_default(faces, aligned_faces, donor_bank, tmp_path, monkeypatch):
    """hallucinate --method donor masks aligned crops with the refined region (issue 31 item 1):
    the sliver is not kept as face (donor context replaces it), while --region hull, and the
    baselines' default, keep it as part of the face."""
    from facefill.options import HallucinateOptions
    from facefill.pipeline.hallucinate import hallucinate_folder

    monkeypatch.setenv("FACEFILL_CACHE", str(tmp_path / "cache"))
    image, hull, lm = faces[0]
    src, painted, sliver = aligned_with_sliver(faces, aligned_faces, tmp_path)
    kept = {}
    for name, kwargs in (("donor", {"method": "donor", "donors": donor_bank}),
                         ("donor-hull", {"method": "donor", "donors": donor_bank, "region": "hull"}),
                         ("mean", {"method": "mean"})):
        out = tmp_path / name
        report = hallucinate_folder(src, out, HallucinateOptions(**kwargs))
        assert len(report.done) == 1, report.failed
        got = read_image(out / "obama.png")
        kept[name] = (got == painted).all(axis=-1)  # the input's own pixels, kept as face
        inner = cv2.erode((core_mask(lm, hull.shape) & (hull > 127)).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        assert kept[name][inner].all(), (name, (~kept[name][inner]).sum())  # the face's core: always bit-exact
    assert kept["donor"][sliver].mean() <= 0.2  # the teal sliver is context now, not face
    assert kept["donor-hull"][sliver].all() and kept["mean"][sliver].all()
