import numpy as np
import pytest

from facefill.align.landmarks import FanBackend, eye_centres, get_backend, missing_fan_weights
from facefill.data.io import read_image
from facefill.errors import FacefillError, WeightsNotFoundError

PHOTOS = ["obama.jpg", "obama2.jpg", "biden.jpg", "astronaut.jpg", "obama2_rgba.png"]


@pytest.fixture(scope="module")
def dlib_backend():
    return get_backend("dlib")


@pytest.mark.parametrize("name", PHOTOS)
def test_dlib_finds_one_face_with_plausible_landmarks(dlib_backend, data_dir, name):
    faces = dlib_backend.detect(read_image(data_dir / "faces" / name))
    assert len(faces) >= 1
    f = faces[0]
    assert f.landmarks.shape == (68, 2)
    x0, y0, x1, y1 = f.box
    inside = ((f.landmarks[:, 0] > x0 - 0.3 * (x1 - x0)) & (f.landmarks[:, 0] < x1 + 0.3 * (x1 - x0))).all()
    assert inside
    left, right = eye_centres(f.landmarks)
    assert left[0] < right[0]  # image-left eye first
    nose_tip, chin = f.landmarks[30], f.landmarks[8]
    assert left[1] < nose_tip[1] < chin[1]  # eyes above nose above chin: upright face


def test_no_face_in_a_flat_image(dlib_backend):
    assert dlib_backend.detect(np.full((200, 200, 3), 128, np.uint8)) == []


def test_unknown_backend():
    with pytest.raises(FacefillError, match="dlib"):
        get_backend("nosuch")


def test_fan_without_weights_says_what_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert missing_fan_weights()
    with pytest.raises(WeightsNotFoundError, match=r"2DFAN4-11f355bf06\.pth\.tar.*hub/checkpoints"):
        FanBackend()


def test_mediapipe_missing_is_a_clear_error():
    try:
        import mediapipe  # noqa: F401
        pytest.skip("mediapipe is installed here")
    except ImportError:
        pass
    with pytest.raises(FacefillError, match="mediapipe==0.10.21"):
        get_backend("mediapipe")


@pytest.mark.parametrize("name", ["obama.jpg", "biden.jpg", "astronaut.jpg"])
def test_mediapipe_agrees_with_dlib_on_real_photos(dlib_backend, data_dir, name):
    pytest.importorskip("mediapipe", reason="mediapipe 0.10.21 is not installed (optional backend)")
    img = read_image(data_dir / "faces" / name)
    ours = get_backend("mediapipe").detect(img)
    ref = dlib_backend.detect(img)
    assert len(ours) >= 1 and ours[0].landmarks.shape == (68, 2)
    eye_dist = np.linalg.norm(np.subtract(*eye_centres(ref[0].landmarks)))
    diff = np.linalg.norm(np.array(eye_centres(ours[0].landmarks)) - np.array(eye_centres(ref[0].landmarks)), axis=1)
    assert diff.max() < 0.15 * eye_dist  # the two models put the eye centres in the same place
