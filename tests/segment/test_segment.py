import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from facefill.cli.app import app
from facefill.data.io import read_image
from facefill.mask.region import face_mask
from facefill.pipeline.replace_bg import fit_background
from facefill.segment import enclosed, get_segmenter, mediapipe_available, refine, salient_region

runner = CliRunner()
FACES = Path(__file__).parents[1] / "data" / "faces"


def _aligned(aligned_faces, name):
    img = read_image(aligned_faces / f"{name}.png")
    lm = np.array(json.loads((aligned_faces / f"{name}.json").read_text())["landmarks"])
    return img, lm


def _inside(mask, lm):
    pts = np.clip(np.round(lm).astype(int), 0, mask.shape[0] - 1)
    return mask[pts[:, 1], pts[:, 0]]


@pytest.mark.parametrize("backend", ["grabcut", "selfie", "mediapipe"])
@pytest.mark.parametrize("name", ["astronaut", "obama", "biden"])
def test_segmenter_finds_the_person(aligned_faces, backend, name):
    if backend == "mediapipe" and not mediapipe_available():
        pytest.skip("mediapipe 0.10.21 is not installed (optional backend)")
    img, lm = _aligned(aligned_faces, name)
    seg = get_segmenter(backend)(img, face_mask(lm, 128)) >= 0.5
    assert _inside(seg, lm[17:]).mean() > 0.95  # brows, eyes, nose and mouth are foreground
    assert not seg[0, 0] and not seg[0, -1]  # top corners are background
    assert 0.2 < seg.mean() < 0.85


@pytest.mark.parametrize("backend", ["grabcut", "selfie"])
def test_segmenter_on_a_full_portrait(backend):
    img = read_image(FACES / "astronaut.jpg")  # the unaligned 400 px portrait
    h, w = img.shape[:2]
    seg = get_segmenter(backend)(img) >= 0.5  # no face mask (grabcut: a central face region seeds it)
    assert seg[h // 2, w // 2] and not seg[0, 0] and not seg[0, -1] and not seg[5, w // 2]


def test_refine_is_the_union_with_the_salient_inside():
    img = np.full((64, 64, 3), 200, np.uint8)
    cv2.rectangle(img, (16, 12), (48, 63), (20, 20, 20), -1)  # a dark "person" leaving the frame at the bottom
    face = np.zeros((64, 64), np.float32)
    face[20:30, 26:38] = 1
    sal = salient_region(img, face)
    assert sal[40, 32] and not sal[5, 5]  # inside the outer contour, not the background
    seg = np.zeros((64, 64), np.float32)
    seg[50:, 20:30] = 1
    fg = refine(seg, img, face)
    assert fg[55, 25] and fg[25, 30] and fg[40, 32] and not fg[2, 2]
    assert (refine(seg, img, face, use_saliency=False) == np.maximum(seg, face)).all()


def test_enclosed_fills_holes_but_not_the_open_bottom():
    ring = np.zeros((20, 20), bool)
    ring[5, 5:15] = ring[5:15, 5] = ring[5:15, 14] = ring[14, 5:15] = True
    e = enclosed(ring)
    assert e[10, 10] and not e[2, 2]
    u = ring.copy()
    u[14] = False  # open at the bottom but the bottom border is not a seed: still inside
    u[5:20, 5] = u[5:20, 14] = True
    assert enclosed(u)[10, 10]


def test_fit_background_covers_and_crops():
    bg = np.zeros((100, 300, 3), np.uint8)
    bg[:, 140:160] = 255
    out = fit_background(bg, 128, 128)
    assert out.shape == (128, 128, 3) and out[64, 64].max() == 255


@pytest.mark.parametrize("segmenter", ["grabcut", "auto"])
def test_replace_bg_cli(aligned_faces, tmp_path, data_dir, segmenter):
    src = tmp_path / "in"
    shutil.copytree(aligned_faces, src)
    (src / "broken.png").write_bytes(b"nope")
    bgs = tmp_path / "bgs"
    bgs.mkdir()
    cv2.imwrite(str(bgs / "a.jpg"), np.full((300, 200, 3), (0, 0, 255), np.uint8))
    cv2.imwrite(str(bgs / "b.jpg"), np.full((90, 160, 3), (255, 0, 0), np.uint8))
    r = runner.invoke(app, ["replace-bg", str(src), str(tmp_path / "out"), "--background", str(bgs),
                            "--save-masks", "--segmenter", segmenter, "--device", "cpu"])
    assert r.exit_code == 3, r.output  # one input failed, the good outputs were kept
    assert "1 of 6 inputs failed" in r.output and "broken.png" in r.output
    # round-robin over the sorted inputs (the broken file takes its turn too): a, b, a, b, ...
    order = ["astronaut", "biden", "broken", "obama", "obama2", "obama2_rgba"]
    for i, name in enumerate(order):
        if name == "broken":
            continue
        out = read_image(tmp_path / "out" / f"{name}.png")
        img, lm = _aligned(aligned_faces, name)
        fg = cv2.imread(str(tmp_path / "out" / f"{name}.fg.png"), cv2.IMREAD_GRAYSCALE) > 127
        colour = np.array([255, 0, 0]) if i % 2 == 0 else np.array([0, 0, 255])  # a: red, b: blue (RGB)
        far = cv2.distanceTransform((~fg).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE) >= 8
        assert far.sum() > 500 and np.abs(out[far].astype(int) - colour).mean() < 40  # the new background
        core = cv2.distanceTransform(fg.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE) >= 5
        assert core.sum() > 1000 and np.array_equal(out[core], img[core])  # the person's pixels are kept
    r = runner.invoke(app, ["replace-bg", str(src), str(tmp_path / "out"), "--background", str(tmp_path / "none.jpg")])
    assert r.exit_code == 1 and "does not exist" in r.output


def test_segmenter_choices_import_without_torch_or_opencv():
    """SEGMENTERS and SEGMENTER_HELP (what replace-bg's --segmenter offers, defined once) come
    from facefill.segment without loading a backend: the CLI reads them at start-up."""
    import subprocess
    import sys

    code = ("import sys; from facefill.segment import SEGMENTERS, SEGMENTER_HELP; "
            "assert all(s in SEGMENTER_HELP for s in SEGMENTERS); "
            "print(sorted(m for m in ('torch', 'cv2', 'kornia', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_segmenter_names_are_the_one_list_and_each_is_a_backend():
    """facefill.segment's names are those of replace-bg's --segmenter choices (facefill.options,
    the one list), and get_segmenter builds each (mediapipe only where it is installed)."""
    from facefill.options import SEGMENTERS as CHOICES
    from facefill.segment import SEGMENTER_HELP, SEGMENTERS

    assert SEGMENTERS == CHOICES.names and SEGMENTER_HELP == CHOICES.help("Person segmentation:")
    for name in SEGMENTERS:
        if name != "mediapipe" or mediapipe_available():
            assert get_segmenter(name).name in SEGMENTERS


def test_lazy_names_are_the_backends_functions():
    """The names loaded on first use are the submodules' own objects (refine is the function)."""
    import facefill.segment as seg
    from facefill.segment import refinement, selfie

    assert seg.refine is refinement.refine and callable(seg.refine)
    assert seg.SelfieSegmenter is selfie.SelfieSegmenter
    assert set(seg.__all__) <= set(dir(seg))
    with pytest.raises(AttributeError):
        seg.no_such_backend
