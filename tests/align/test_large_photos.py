"""Large photos: faces found on a shrunk copy, crops cut from the region they cover, JPEGs
decoded at reduced size; the crop is the one the full photo gives."""

import cv2
import numpy as np
import pytest

from facefill.align.core import _warp_region, align_file, align_image
from facefill.align.landmarks import eye_centres, get_backend
from facefill.data.io import image_size, read_image


@pytest.fixture(scope="module")
def backend():
    return get_backend("dlib")


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory):
    """obama.jpg enlarged 3x to a 1200 px-wide JPEG (a 'large photo' for detect_max=300)."""
    from pathlib import Path

    src = cv2.imread(str(Path(__file__).parents[1] / "data" / "faces" / "obama.jpg"))
    big = cv2.resize(src, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    path = tmp_path_factory.mktemp("big") / "big.jpg"
    cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return path


def _source_eyes(face) -> np.ndarray:
    return eye_centres(face.face.landmarks)


def test_region_warp_equals_the_whole_photo_warp(backend, data_dir):
    image = read_image(data_dir / "faces" / "biden.jpg")
    full = align_image(image, backend, detect_max=0)[0]
    crop, valid = _warp_region(image, full.matrix, 128, "cpu")
    assert np.abs(crop.astype(int) - full.image.astype(int)).max() <= 1
    np.testing.assert_array_equal(valid, full.valid)


def test_detection_on_a_shrunk_copy_finds_the_same_eyes(backend, big_jpeg):
    image = read_image(big_jpeg)
    full = align_image(image, backend, detect_max=0)[0]
    shrunk = align_image(image, backend, detect_max=300)[0]
    assert np.abs(_source_eyes(full) - _source_eyes(shrunk)).max() < 3  # source px of a 1200 px photo
    # the same eyes through both matrices: within a pixel of the aligned targets
    eyes = _source_eyes(full)
    moved = eyes @ shrunk.matrix[:, :2].T + shrunk.matrix[:, 2]
    assert np.abs(moved - np.array([[51.2, 57.6], [76.8, 57.6]])).max() < 1.0
    # the same crop up to the landmarks' jitter: compared blurred (sigma 2 px), where a crop moved by
    # 1 px differs by 4.5 grey levels on average and one moved by 4 px by 15.8. The two detections'
    # eye distances differ by up to about 2 % with the CPU (dlib's landmarks at 300 px; 2.3 % on an
    # AMD EPYC machine, 2026-12-07: 6.6 levels blurred, 11.0 unblurred, where 8 unblurred had held)
    blur = lambda x: cv2.GaussianBlur(x.astype(np.float32), (0, 0), 2)  # noqa: E731
    assert np.abs(blur(shrunk.image) - blur(full.image)).mean() < 10


def test_a_large_jpeg_is_decoded_small_and_described_in_full_photo_pixels(backend, big_jpeg):
    assert image_size(big_jpeg) == (1200, 960)
    assert read_image(big_jpeg, reduce=4).shape == (300, 240, 3)
    reduced = align_file(big_jpeg, backend, detect_max=240)[0]  # 1200 / 4 = 300 >= 240: decoded at 1/4
    full = align_image(read_image(big_jpeg), backend, detect_max=0)[0]
    eyes = _source_eyes(full)
    moved = eyes @ reduced.matrix[:, :2].T + reduced.matrix[:, 2]
    assert np.abs(moved - np.array([[51.2, 57.6], [76.8, 57.6]])).max() < 1.0
    assert np.abs(_source_eyes(reduced) - eyes).max() < 4  # landmarks in full-photo pixels
    assert np.abs(reduced.image.astype(int) - full.image.astype(int)).mean() < 8


def test_a_face_that_would_be_magnified_falls_back_to_the_full_decode(backend, big_jpeg):
    # at 1/8 (150 px wide) the face is far smaller than the 128 px crop: the full photo is used
    a = align_file(big_jpeg, backend, detect_max=150)[0]
    b = align_image(read_image(big_jpeg), backend, detect_max=150)[0]
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_allclose(a.matrix, b.matrix)


def test_reduce_must_be_a_power_of_two(big_jpeg):
    with pytest.raises(ValueError):
        read_image(big_jpeg, reduce=3)


def test_the_sidecar_records_the_upright_photos_size_on_every_path(backend, big_jpeg, tmp_path):
    """``photo_size`` (read by 'facefill paste' to check the photo) is the full, upright photo's
    (height, width), whether the JPEG was decoded whole, decoded small, or turned by EXIF."""
    from PIL import Image

    from facefill.config import AlignConfig

    turned = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[274] = 6  # rotate 90 degrees clockwise when shown
    Image.open(big_jpeg).transpose(Image.Transpose.ROTATE_90).save(turned, exif=exif, quality=95)
    for path, detect_max in ((big_jpeg, 240), (big_jpeg, 0), (turned, 240)):
        face = align_file(path, backend, detect_max=detect_max)[0]
        upright = read_image(path).shape[:2]
        assert face.sidecar("x.jpg", "dlib", AlignConfig())["photo_size"] == list(upright), (path, detect_max)
    assert read_image(turned).shape[:2] == (1200, 960)
