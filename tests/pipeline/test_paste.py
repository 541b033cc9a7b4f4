"""``paste`` (issue 34 item 4): hallucinate's outputs back in the user's photos, at the photo's
size, the face the photo's own pixels, the new context inside the crop's footprint, the photo
untouched beyond it; every face of a --faces all photo in one output; padding never pasted."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from facefill.align.unwarp import Face, paste_faces
from facefill.data.io import read_image, read_mask
from facefill.options import AlignOptions
from facefill.pipeline.hallucinate import HallucinateOptions, hallucinate_folder
from facefill.pipeline.paste import PasteOptions, paste_folder

DATA = Path(__file__).resolve().parents[1] / "data" / "faces"
FEATHER = 8.0


def _warp_back(plane: np.ndarray, matrix: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """An aligned-crop plane ``(S, S[, C]) float32`` at the photo's pixels (the test's own inverse warp)."""
    return cv2.warpAffine(plane.astype(np.float32), np.asarray(matrix, np.float64), (hw[1], hw[0]),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _regions(out_png: Path, hw: tuple[int, int]) -> dict[str, np.ndarray]:
    """Photo-pixel regions of one hallucinate output: ``face`` (its mask warped back, 1 px in),
    ``outside`` (beyond the crop's footprint, 2 px out), ``context`` (deep inside the footprint:
    past the feather, away from the face and from padding) and ``warped`` (the output warped back)."""
    side = json.loads(out_png.with_suffix(".json").read_text())
    m, size = side["matrix"], side["size"]
    scale = float(np.sqrt(abs(np.linalg.det(np.asarray(m)[:, :2]))))  # crop px per photo px
    mask = read_mask(out_png.with_name(out_png.stem + ".mask.png"))
    k = lambda r: np.ones((2 * r + 1, 2 * r + 1), np.uint8)  # noqa: E731
    face = cv2.erode((_warp_back(mask, m, hw) > 0.5).astype(np.uint8), k(1)) > 0
    foot = _warp_back(np.ones((size, size)), m, hw) > 0
    outside = ~(cv2.dilate(foot.astype(np.uint8), k(2)) > 0)
    margin = int(np.ceil((FEATHER + 2) / scale)) + 2
    inner = cv2.erode(foot.astype(np.uint8), k(margin)) > 0
    near_face = cv2.dilate((_warp_back(mask, m, hw) > 0).astype(np.uint8), k(margin)) > 0
    context = inner & ~near_face
    context[:margin], context[-margin:], context[:, :margin], context[:, -margin:] = False, False, False, False
    return {"face": face, "outside": outside, "context": context,
            "warped": _warp_back(read_image(out_png).astype(np.float32), m, hw)}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Three raw photos -> hallucinate --method mean -> paste, once for the module."""
    root = tmp_path_factory.mktemp("paste")
    raw = root / "raw"
    raw.mkdir()
    for name in ("obama.jpg", "biden.jpg", "astronaut.jpg"):
        shutil.copy(DATA / name, raw / name)
    report = hallucinate_folder(raw, root / "out", HallucinateOptions(method="mean"))
    assert len(report.done) == 3, report.failed
    report = paste_folder(root / "out", raw, root / "final", PasteOptions(feather=FEATHER))
    assert len(report.done) == 3 and not report.failed, report.failed
    return root


@pytest.mark.parametrize("name", ["obama", "biden", "astronaut"])
def test_the_face_is_the_photos_own_the_context_is_new_and_the_rest_untouched(run, name):
    photo = read_image(run / "raw" / f"{name}.jpg")
    final = read_image(run / "final" / f"{name}.png")
    assert final.shape == photo.shape  # at the photo's size
    r = _regions(run / "out" / f"{name}.png", photo.shape[:2])
    assert r["face"].sum() > 2000 and r["context"].sum() > 2000 and r["outside"].sum() > 2000, name
    assert np.array_equal(final[r["face"]], photo[r["face"]])  # bit for bit, at full resolution
    assert np.array_equal(final[r["outside"]], photo[r["outside"]])
    ctx = r["context"]
    # the new context is there: the hallucinated output warped back, not the photo
    assert np.abs(final[ctx].astype(np.float32) - r["warped"][ctx]).mean() < 1.0
    assert np.abs(final[ctx].astype(np.float32) - photo[ctx]).mean() > 10.0


def test_the_edge_is_soft(run):
    """Across the footprint's edge the output goes from the photo to the new context over the
    feather, not in one step (with --feather 0 it does)."""
    photo = read_image(run / "raw" / "biden.jpg")
    side = json.loads((run / "out" / "biden.json").read_text())
    m = np.asarray(side["matrix"])
    out = read_image(run / "out" / "biden.png").astype(np.float32)
    alpha = _warp_back(np.ones((side["size"],) * 2), m, photo.shape[:2])
    band = (alpha > 0.99)  # inside the footprint
    final = read_image(run / "final" / "biden.png").astype(np.float32)
    warped = _warp_back(out, m, photo.shape[:2])
    # share of the new context in the final image, where it differs enough from the photo to tell
    diff = warped - photo
    strong = band & (np.abs(diff).max(-1) > 40)
    share = ((final - photo) * diff).sum(-1)[strong] / (diff * diff).sum(-1)[strong]
    assert (share < 0.9).mean() > 0.02 and (share > 0.99).mean() > 0.5
    hard = paste_faces(photo, [Face(read_image(run / "out" / "biden.png"), m,
                                    read_mask(run / "out" / "biden.mask.png"))], feather=0)
    share_hard = ((hard - photo.astype(np.float32)) * diff).sum(-1)[strong] / (diff * diff).sum(-1)[strong]
    assert (share_hard < 0.9).mean() < (share < 0.9).mean() / 2


def test_every_face_of_a_faces_all_photo_goes_into_one_output(tmp_path, two_faces):
    report = hallucinate_folder(two_faces, tmp_path / "out",
                                HallucinateOptions(method="mean", raw=AlignOptions(faces="all")))
    assert not report.failed
    faces = sorted(p.name for p in (tmp_path / "out").glob("pair_?.png"))
    assert faces == ["pair_0.png", "pair_1.png"]
    report = paste_folder(tmp_path / "out", two_faces, tmp_path / "final")
    assert not report.failed and [p.name for p in report.written] == ["pair.png"]
    photo, final = read_image(two_faces / "pair.jpg"), read_image(tmp_path / "final" / "pair.png")
    assert final.shape == photo.shape
    for face in faces:
        r = _regions(tmp_path / "out" / face, photo.shape[:2])
        assert np.array_equal(final[r["face"]], photo[r["face"]]), face
        ctx = r["context"]
        assert np.abs(final[ctx].astype(np.float32) - photo[ctx]).mean() > 10.0, face  # both faces' context is there
    both = _regions(tmp_path / "out" / faces[0], photo.shape[:2])["outside"] & \
        _regions(tmp_path / "out" / faces[1], photo.shape[:2])["outside"]
    assert both.sum() > 1000 and np.array_equal(final[both], photo[both])


def test_padding_is_never_pasted():
    """Where the crop's validity map says padding, the photo shows, also inside the footprint."""
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (90, 110, 3), dtype=np.uint8)
    crop = np.full((64, 64, 3), 7, np.uint8)
    m = np.array([[1.25, 0.0, -20.0], [0.0, 1.25, -10.0]])  # the crop covers photo x 16..67, y 8..59
    mask = np.zeros((64, 64), np.float32)
    valid = np.ones((64, 64), np.float32)
    valid[:, :32] = 0  # the left half was padding
    out = paste_faces(photo, [Face(crop, m, mask, valid)], feather=0)
    assert np.array_equal(out[8:60, 16:40], photo[8:60, 16:40])  # the padded half: the photo
    assert (out[12:56, 44:64] == 7).all()  # the valid half: the crop
    out = paste_faces(photo, [Face(crop, m, mask, None)], feather=0)
    assert (out[12:56, 20:64] == 7).all()  # without the map the whole footprint is pasted


def test_photos_from_masked_inputs_find_their_sidecars_in_the_folder_hallucinate_read(tmp_path, masked):
    """Masked inputs (align -> mask -> hallucinate): the sidecars and masks are in the folder
    hallucinate read, found through OUT's run record."""
    report = hallucinate_folder(masked, tmp_path / "out", HallucinateOptions(method="mean"))
    assert len(report.done) == 5
    report = paste_folder(tmp_path / "out", DATA, tmp_path / "final")
    assert sorted(p.name for p in report.written) == sorted(p.stem + ".png" for p in DATA.iterdir())
    assert not report.failed
    photo, final = read_image(DATA / "obama.jpg"), read_image(tmp_path / "final" / "obama.png")
    side = json.loads((masked / "obama.json").read_text())
    face = cv2.erode((_warp_back(read_mask(masked / "obama.mask.png"), side["matrix"], photo.shape[:2]) > 0.5)
                     .astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert face.sum() > 2000 and np.array_equal(final[face], photo[face])
    assert not np.array_equal(final, photo)


def test_a_missing_or_wrong_size_photo_fails_that_input_only(run, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(run / "raw" / "astronaut.jpg", photos / "astronaut.jpg")  # biden.jpg is missing
    small = cv2.imread(str(run / "raw" / "obama.jpg"))
    cv2.imwrite(str(photos / "obama.jpg"), cv2.resize(small, (160, 200)))  # another size than aligned
    report = paste_folder(run / "out", photos, tmp_path / "final")
    assert [p.name for p in report.written] == ["astronaut.png"]
    failed = {Path(p).name: reason for p, reason in report.failed}
    assert set(failed) == {"obama.jpg", "biden.png"}, failed
    assert "160x200" in failed["obama.jpg"] and "320x400" in failed["obama.jpg"]
    assert "biden.jpg" in failed["biden.png"] and "is not in" in failed["biden.png"]
    assert all("\n" not in r for r in failed.values())
    rows = (tmp_path / "final" / "failures.tsv").read_text().splitlines()
    assert len(rows) == 3 and rows[0] == "input\treason"


def test_resume_and_shards(run, tmp_path):
    """A re-run keeps what is done; shards cover every photo once."""
    again = paste_folder(run / "out", run / "raw", run / "final", PasteOptions(feather=FEATHER))
    assert len(again.skipped) == 3 and not again.done
    for i in range(2):
        paste_folder(run / "out", run / "raw", tmp_path / "sharded", PasteOptions(feather=FEATHER, shard=(i, 2)))
    for name in ("obama", "biden", "astronaut"):
        assert np.array_equal(read_image(tmp_path / "sharded" / f"{name}.png"), read_image(run / "final" / f"{name}.png"))


def test_aligned_crops_masked_on_the_fly_leave_their_mask_and_older_runs_get_it_drawn_again(tmp_path, aligned_faces):
    """hallucinate over an align folder masks each crop on the fly and writes that mask beside
    each output; paste keeps the photo's face over it. An output without one (an older run) gets
    it drawn again from the sidecar's landmarks, as hallucinate drew it."""
    from facefill.mask.region import face_mask

    report = hallucinate_folder(aligned_faces, tmp_path / "out", HallucinateOptions(method="mean"))
    assert len(report.done) == 5 and len(list((tmp_path / "out").glob("*.mask.png"))) == 5
    side = json.loads((aligned_faces / "biden.json").read_text())
    mask = (face_mask(np.asarray(side["landmarks"]), 128) >= 0.5).astype(np.float32)
    assert np.array_equal(read_mask(tmp_path / "out" / "biden.mask.png", (128, 128)), mask)
    for written in (True, False):
        if not written:
            for m in (tmp_path / "out").glob("*.mask.png"):
                m.unlink()
        final_dir = tmp_path / f"final_{written}"
        report = paste_folder(tmp_path / "out", DATA, final_dir)
        assert not report.failed and len(report.written) == 5
        # the same region in the hallucinate output is the aligned crop's own pixels (the mask hallucinate used)
        crop, out = read_image(aligned_faces / "biden.png"), read_image(tmp_path / "out" / "biden.png")
        assert np.array_equal(out[mask > 0], crop[mask > 0])
        photo, final = read_image(DATA / "biden.jpg"), read_image(final_dir / "biden.png")
        face = cv2.erode((_warp_back(mask, side["matrix"], photo.shape[:2]) > 0.5).astype(np.uint8),
                         np.ones((3, 3), np.uint8)) > 0
        assert face.sum() > 2000 and np.array_equal(final[face], photo[face])
        assert not np.array_equal(final, photo)


def test_a_refined_region_s_paste_keeps_the_new_context_where_the_hull_would_keep_the_photo(tmp_path, aligned_faces,
                                                                                            donor_bank, monkeypatch):
    """The donor path masks aligned crops with the refined region, which drops the jaw's outer
    pixels (and background or hair in the hull's band): paste must keep the photo's pixels over
    that region only. Redrawn as the hull, the photo's own jaw rim came back against the donor's neck."""
    from facefill.mask.region import face_mask

    monkeypatch.setenv("FACEFILL_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    report = hallucinate_folder(aligned_faces, out, HallucinateOptions(method="donor", donors=donor_bank))
    assert (out / "biden.png").is_file(), report.failed
    side = json.loads((aligned_faces / "biden.json").read_text())
    hull = face_mask(np.asarray(side["landmarks"]), 128) >= 0.5
    refined = read_mask(out / "biden.mask.png", (128, 128)) > 0.5
    assert (hull & ~refined).sum() > 50 and not (refined & ~hull).any()
    paste_folder(out, DATA, tmp_path / "final")  # astronaut failed in hallucinate (no woman donor), so fails here
    photo, final = read_image(DATA / "biden.jpg"), read_image(tmp_path / "final" / "biden.png")
    kept = cv2.erode((_warp_back(refined.astype(np.float32), side["matrix"], photo.shape[:2]) > 0.5).astype(np.uint8),
                     np.ones((3, 3), np.uint8)) > 0
    dropped = cv2.erode((_warp_back((hull & ~refined).astype(np.float32), side["matrix"], photo.shape[:2]) > 0.5
                         ).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert np.array_equal(final[kept], photo[kept]) and dropped.sum() > 20
    assert np.abs(final[dropped].astype(int) - photo[dropped]).mean() > 3  # the donor's context, not the photo's
