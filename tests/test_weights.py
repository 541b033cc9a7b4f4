"""facefill.weights: the one place weight files are found."""

import pytest

from facefill.errors import WeightsNotFoundError
from facefill.weights import WEIGHTS, find, hub_checkpoints, locate


def test_shipped_and_installed_weights_are_found():
    assert find("default-generator").name == "default-small.safetensors"
    assert find("selfie-segmenter").stat().st_size > 100_000
    assert find("age-gender").name == "age_gender.safetensors"
    assert find("dlib-landmarks").name == "shape_predictor_68_face_landmarks.dat"


def test_explicit_path_and_env_var_win(tmp_path, monkeypatch):
    f = tmp_path / "my.dat"
    f.write_bytes(b"x")
    assert find("dlib-resnet", f) == f
    monkeypatch.setenv(WEIGHTS["dlib-resnet"].env, str(f))
    assert locate("dlib-resnet") == (f, f"{f} (from $FACEFILL_DLIB_RESNET)")
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        find("dlib-resnet", tmp_path / "missing.dat")


def test_hub_file_missing_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert hub_checkpoints() == tmp_path / "hub" / "checkpoints"
    with pytest.raises(WeightsNotFoundError, match=r"PieAPPv0\.1\.pth into .*hub/checkpoints"):
        find("pieapp")
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "hub" / "checkpoints" / "PieAPPv0.1.pth").write_bytes(b"x")
    assert find("pieapp").parent == tmp_path / "hub" / "checkpoints"


def test_env_override_only_for_files_facefill_reads_and_key_of(tmp_path, monkeypatch):
    f = tmp_path / "vgg.pth"
    f.write_bytes(b"x")
    monkeypatch.setenv(WEIGHTS["vgg19"].env, str(f))  # hub-homed, but facefill reads it itself
    assert locate("vgg19")[0] == f
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv(WEIGHTS["vgg16"].env, str(f))  # piq reads it from the hub cache only
    assert locate("vgg16")[0] is None
    from facefill.weights import key_of

    assert key_of("mmod_human_face_detector.dat") == "dlib-cnn"
    with pytest.raises(KeyError):
        key_of("nothing.pth")
