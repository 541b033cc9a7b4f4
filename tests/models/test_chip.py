"""The kornia face chip against ``dlib.get_face_chip`` on real photos."""

import numpy as np
import pytest
import torch

from facefill.data.io import read_image
from facefill.models.chip import chip_to_image, extract_chips

dlib = pytest.importorskip("dlib", reason="dlib (dlib-bin) is not installed")


def _shape(img, predictor_file):
    from facefill.align.landmarks import dlib_model_path

    rect = dlib.get_frontal_face_detector()(img, 1)[0]
    return dlib.shape_predictor(str(dlib_model_path(predictor_file)))(img, rect)


@pytest.mark.parametrize("name", ["obama.jpg", "biden.jpg"])
@pytest.mark.parametrize("predictor", ["shape_predictor_5_face_landmarks.dat",
                                       "shape_predictor_68_face_landmarks.dat"])
def test_chip_equals_dlib_up_to_its_uint8_truncation(data_dir, name, predictor):
    img = read_image(data_dir / "faces" / name)
    img = img[::3, ::3].copy()  # a face smaller than the chip: dlib samples without a pyramid
    shape = _shape(img, predictor)
    ref = dlib.get_face_chip(img, shape, 150, 0.25).astype(np.float64)
    lm = torch.tensor([[p.x, p.y] for p in shape.parts()], dtype=torch.float64)[None]
    ours = extract_chips(torch.from_numpy(img).permute(2, 0, 1)[None].double(), lm)[0].permute(1, 2, 0).numpy()
    diff = ours - ref  # dlib truncates to uint8: 0 <= diff < 1 everywhere
    assert diff.min() > -1e-3 and diff.max() < 1 + 1e-3
    assert np.abs(np.floor(ours + 1e-6) - ref).mean() < 0.01


def test_chip_transform_maps_template_points_and_is_differentiable():
    lm = torch.tensor([[[100.0, 50], [80, 52], [20, 50], [40, 52], [60, 90]]], requires_grad=True)
    aff = chip_to_image(lm)
    assert aff.shape == (1, 2, 3)
    aff.sum().backward()
    assert lm.grad.abs().sum() > 0
    # a bigger face gives a proportionally bigger chip footprint
    aff2 = chip_to_image(lm.detach() * 2)
    assert torch.allclose(aff2[0, :, :2], 2 * aff[0, :, :2].detach() + (aff2[0, :, :2] - 2 * aff[0, :, :2].detach()), atol=1e-6)
    assert aff2[0, 0, 0].abs() > 1.9 * aff[0, 0, 0].abs()


def test_wrong_landmark_count():
    with pytest.raises(ValueError, match="5 or 68"):
        chip_to_image(torch.zeros(1, 7, 2))


@pytest.mark.parametrize("name, step", [("obama.jpg", 1), ("biden.jpg", 2), ("astronaut.jpg", 1)])
def test_exact_chip_equals_dlib_with_its_image_pyramid(data_dir, name, step):
    """``extract_chips_dlib`` against ``dlib.extract_image_chip`` at sizes where dlib samples
    directly (150), through one pyramid level (64, 32 on these photos) and through several (16, 8)."""
    from facefill.models.chip import _pyramid_depth, extract_chips_dlib

    img = np.ascontiguousarray(read_image(data_dir / "faces" / name)[::step, ::step])
    shape = _shape(img, "shape_predictor_5_face_landmarks.dat")
    lm = torch.tensor([[p.x, p.y] for p in shape.parts()], dtype=torch.float64)[None]
    depths = set()
    for size in (150, 64, 32, 16, 8):
        details = dlib.get_face_chip_details(shape, size, 0.2)
        ref = np.asarray(dlib.extract_image_chip(img, details)).astype(np.float64)
        ours = extract_chips_dlib(torch.from_numpy(img).permute(2, 0, 1)[None].double(), lm, size, 0.2)
        ours = ours[0].permute(1, 2, 0).numpy()
        assert (ours != ref).mean() < 1e-3 and np.abs(ours - ref).max() <= 1, (size, (ours != ref).sum())
        depths.add(_pyramid_depth(details.rect.width(), size))
    assert len(depths) >= 3, depths  # the photos exercise 0, 1 and more pyramid levels
