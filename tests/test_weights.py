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


class _RunsCode:
    """Pickled as a call to os.system: what a crafted weights file does on torch.load(weights_only=False)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_crafted_pickles_never_reach_other_libraries_loaders(tmp_path, monkeypatch):
    """Issue 33 #4: piq (PieAPP, LPIPS) and face-alignment (S3FD) load torch hub's cache with
    torch.load(weights_only=False): a crafted PieAPPv0.1.pth ran code on `evaluate -m pieapp`.
    facefill checks such files first (weights_only=True; the SHA-256 prefix in the name)."""
    import pickle

    import numpy as np
    import torch
    from typer.testing import CliRunner

    from facefill.cli.app import app
    from facefill.data.io import write_image
    from facefill.errors import CheckpointError
    from facefill.weights import vet_third_party

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    hub = tmp_path / "th" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    marker = tmp_path / "ran"
    crafted = pickle.dumps({"weight": _RunsCode(marker)})
    (hub / "PieAPPv0.1.pth").write_bytes(crafted)
    with pytest.raises(CheckpointError, match="pickled Python objects.*weights_only=False"):
        vet_third_party("pieapp")
    for name in ("gen", "real"):
        write_image(tmp_path / name / "a.png", np.zeros((64, 64, 3), np.uint8))
    r = CliRunner().invoke(app, ["evaluate", str(tmp_path / "gen"), str(tmp_path / "real"), "-m", "pieapp"])
    assert r.exit_code == 1 and "PieAPPv0.1.pth is not plain weights" in r.output and "Traceback" not in r.output
    assert not marker.exists()
    # a name with the published SHA-256 prefix: any other content is refused before loading
    torch.save({"w": torch.zeros(2)}, hub / "s3fd-619a316812.pth")
    with pytest.raises(CheckpointError, match="SHA-256 does not start with 619a316812"):
        vet_third_party("s3fd")
    # plain tensors under a name without a hash pass (the check reads, never runs, the file)
    torch.save([torch.rand(1, 3, 1, 1)], hub / "lpips_weights.pt")
    assert vet_third_party("lpips") == hub / "lpips_weights.pt"
    assert vet_third_party("vgg16") is None  # missing: the caller's message says where to get it
