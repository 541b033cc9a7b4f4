"""mask refuses photos align did not make; replace-bg never counts align's padding as person
(issue 24, items 4 and 5)."""

import shutil

import cv2
import numpy as np
import pytest

from facefill.data.io import read_image, read_mask, write_image
from facefill.errors import ImageError
from facefill.mask.region import check_aligned
from facefill.options import ReplaceOptions
from facefill.pipeline.mask import mask_folder
from facefill.pipeline.replace_bg import replace_bg_folder


def _without_sidecar(aligned_faces, tmp_path, name="obama"):
    src = tmp_path / "photos"
    src.mkdir()
    shutil.copy(aligned_faces / f"{name}.png", src / f"{name}.png")
    return src


def test_mask_refuses_an_upscaled_crop_without_sidecar(aligned_faces, tmp_path):
    """A 434x434 photo with its eyes exactly where alignment puts them (an aligned crop scaled up,
    as a square raw photo can be) is not align's output: mask used to write a 434 px masked image
    that hallucinate then refused."""
    src = _without_sidecar(aligned_faces, tmp_path)
    big = cv2.resize(read_image(src / "obama.png"), (434, 434), interpolation=cv2.INTER_CUBIC)
    write_image(src / "obama.png", big)
    report = mask_folder(src, tmp_path / "m")
    assert not report.done and len(report.failed) == 1
    assert "434x434 is not an aligned face" in report.failed[0][1] and "facefill align" in report.failed[0][1]
    assert not (tmp_path / "m" / "obama.png").exists()


def test_mask_takes_an_aligned_crop_without_sidecar(aligned_faces, tmp_path):
    src = _without_sidecar(aligned_faces, tmp_path)
    report = mask_folder(src, tmp_path / "m")
    assert len(report.done) == 1 and not report.failed


def test_check_aligned_refuses_eyes_too_close_together():
    """Eye centres on the right spot on average but half as far apart: a zoomed-out face."""
    eyes_lm = np.zeros((68, 2))
    left, right = np.array([0.45, 0.45]) * 128, np.array([0.55, 0.45]) * 128  # aligned: 0.40 .. 0.60
    eyes_lm[36:42], eyes_lm[42:48] = left, right
    with pytest.raises(ImageError, match="not an aligned face"):
        check_aligned(__import__("pathlib").Path("x.png"), np.zeros((128, 128, 3), np.uint8), eyes_lm, None, size=128)
    eyes_lm[36:42], eyes_lm[42:48] = np.array([0.40, 0.45]) * 128, np.array([0.60, 0.45]) * 128
    check_aligned(__import__("pathlib").Path("x.png"), np.zeros((128, 128, 3), np.uint8), eyes_lm, None, size=128)


def test_replace_bg_never_keeps_padding_as_person(aligned_faces, tmp_path):
    """A black out-of-photo strip above the head (align's padding, marked in <name>.valid.png)
    shows the new background, not a black slab; the person below keeps its pixels."""
    src = tmp_path / "imgs"
    src.mkdir()
    image = read_image(aligned_faces / "obama.png").copy()
    image[:24] = 0  # the frame left the photo here
    write_image(src / "obama.png", image)
    valid = np.full((128, 128), 255, np.uint8)
    valid[:24] = 0
    write_image(src / "obama.valid.png", valid)
    bg = np.zeros((128, 128, 3), np.uint8)
    bg[...] = (30, 200, 60)
    write_image(tmp_path / "bg.png", bg)
    report = replace_bg_folder(src, tmp_path / "out", tmp_path / "bg.png", ReplaceOptions(save_masks=True))
    assert len(report.done) == 1 and not report.failed
    fg = read_mask(tmp_path / "out" / "obama.fg.png")
    assert fg[:24].max() == 0.0 and fg[40:100, 40:90].mean() > 0.9
    out = read_image(tmp_path / "out" / "obama.png").astype(int)
    strip = np.abs(out[:16] - bg[:16])  # the new background, not black (the blend's coarse bands leave a
    assert strip.mean() < 8 and out[:16, :, 1].min() > 150  # little of the hair's colour at the seam)
    assert np.array_equal(out[60:90, 50:80], image[60:90, 50:80])  # the face is kept exactly


def test_replace_bg_with_an_unreadable_background_makes_no_folder(aligned_faces, tmp_path):
    from facefill.errors import ImageError

    (tmp_path / "bg.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(ImageError, match="bg.jpg"):
        replace_bg_folder(aligned_faces, tmp_path / "out", tmp_path / "bg.jpg")
    assert not (tmp_path / "out").exists()


def test_replace_bg_never_ignores_face_masks_in_silence(aligned_faces, tmp_path):
    """Issue 33 #13: `--face-masks MISSING_DIR` and a corrupt or wrong-size x.mask.png were
    ignored in silence (exit 0, the face then left to the segmenter)."""
    from facefill.errors import FacefillError

    src = _without_sidecar(aligned_faces, tmp_path)
    shutil.copy(aligned_faces / "biden.png", src / "biden.png")
    bg = np.full((128, 128, 3), 90, np.uint8)
    write_image(tmp_path / "bg.png", bg)
    with pytest.raises(FacefillError, match="--face-masks .*nowhere is not a folder"):
        replace_bg_folder(src, tmp_path / "out", tmp_path / "bg.png", ReplaceOptions(face_masks_dir=tmp_path / "nowhere"))
    assert not (tmp_path / "out").exists()
    (src / "obama.mask.png").write_bytes(b"not a png")
    write_image(src / "biden.mask.png", np.zeros((64, 64), np.uint8))
    report = replace_bg_folder(src, tmp_path / "out", tmp_path / "bg.png")
    failed = {p.name: why for p, why in report.failed}
    assert set(failed) == {"obama.png", "biden.png"} and "64x64" not in failed["obama.png"]
    assert "not a readable 128x128 mask" in failed["biden.png"]
