"""Issue 24 item 6: a torchvision built for another torch (a CPU torch with torchvision from
PyPI) is one line saying which pip command fixes it, exit 1, not a traceback from inside
torchvision (``RuntimeError: operator torchvision::nms does not exist``)."""

from __future__ import annotations

import importlib.metadata
import sys

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from facefill import runtime
from facefill.runtime import (TorchvisionMismatch, check_torchvision, matching_torchvision, torchvision_fix,
                              torchvision_mismatch)


@pytest.mark.parametrize("torch_version, series", [("2.4.1", "0.19"), ("2.5.1+cpu", "0.20"), ("2.6.0+cu124", "0.21"),
                                                   ("2.9.0", "0.24"), ("1.13.1", None), ("3.0.0", None)])
def test_the_pairing_table(torch_version, series):
    assert matching_torchvision(torch_version) == series


def test_pairs_that_fit_and_pairs_that_do_not():
    assert torchvision_mismatch("2.5.1+cpu", "0.20.1+cpu") is None
    assert torchvision_mismatch("2.5.1+cpu", "0.20.1") is None  # numbers fit: the import decides
    assert torchvision_mismatch("2.5.1", "0.21.0") == "torchvision 0.21.0 does not fit torch 2.5.1 (it needs torchvision 0.20.x)"
    assert "built for cu121" in torchvision_mismatch("2.5.1+cpu", "0.20.1+cu121")
    assert torchvision_mismatch("2.6.0a0+git1a2b3c", "0.21.0a0+4d5e6f") is None  # source builds: labels are commits
    assert torchvision_mismatch("2.7.0.dev20250301+cpu", "0.22.0.dev20250301+cpu") is None  # nightlies


def test_the_fix_installs_the_matching_build_from_torchs_index():
    assert torchvision_fix("2.5.1+cpu") == ('pip install --force-reinstall --no-deps "torchvision==0.20.*" '
                                            "--index-url https://download.pytorch.org/whl/cpu")
    assert torchvision_fix("2.6.0+cu124").endswith("whl/cu124")
    assert torchvision_fix("2.7.1") == 'pip install --force-reinstall --no-deps "torchvision==0.22.*"'


@pytest.fixture
def fake_versions(monkeypatch):
    """Set torch's and torchvision's versions as seen by the check; the check runs anew."""
    monkeypatch.setattr(runtime, "_TORCHVISION_OK", [])
    real_version = importlib.metadata.version

    def set_versions(torch_version: str, torchvision_version: str | None) -> None:
        monkeypatch.setattr(torch, "__version__", torch_version)

        def version(name):
            if name == "torchvision":
                if torchvision_version is None:
                    raise importlib.metadata.PackageNotFoundError(name)
                return torchvision_version
            return real_version(name)

        monkeypatch.setattr(importlib.metadata, "version", version)

    return set_versions


class _BrokenTorchvision:
    """A meta path finder that fails to import torchvision as a mismatched build does."""

    def find_spec(self, name, path=None, target=None):
        if name == "torchvision" or name.startswith("torchvision."):
            raise RuntimeError("operator torchvision::nms does not exist")
        return None


@pytest.fixture
def broken_import(monkeypatch):
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_BrokenTorchvision(), *sys.meta_path])


def test_versions_that_do_not_pair_are_refused_before_importing(fake_versions):
    fake_versions("2.5.1+cpu", "0.21.0")
    with pytest.raises(TorchvisionMismatch) as err:
        check_torchvision()
    msg = str(err.value)
    assert err.value.exit_code == 1 and "\n" not in msg
    assert msg == ("torchvision 0.21.0 does not fit torch 2.5.1+cpu (it needs torchvision 0.20.x); install the "
                   'matching build: pip install --force-reinstall --no-deps "torchvision==0.20.*" '
                   "--index-url https://download.pytorch.org/whl/cpu")


def test_a_build_that_fails_to_import_is_one_line(fake_versions, broken_import):
    fake_versions("2.5.1+cpu", "0.20.1")  # the numbers fit; the PyPI (CUDA) build does not load
    with pytest.raises(TorchvisionMismatch, match=r"^torchvision 0\.20\.1 does not work with torch 2\.5\.1\+cpu "
                                                  r"\(operator torchvision::nms does not exist\); install the matching "
                                                  r"build: pip install .*whl/cpu$"):
        check_torchvision()


def test_no_torchvision_says_what_to_install(fake_versions):
    fake_versions("2.6.0", None)
    with pytest.raises(TorchvisionMismatch, match=r'torchvision is not installed; .*"torchvision==0\.21\.\*"'):
        check_torchvision()


def test_a_good_pair_passes_once_and_is_remembered(monkeypatch):
    monkeypatch.setattr(runtime, "_TORCHVISION_OK", [])
    check_torchvision()  # this machine's torch and torchvision fit
    assert runtime._TORCHVISION_OK == [True]
    monkeypatch.setattr(torch, "__version__", "2.0.0")  # not checked again within the process
    check_torchvision()


def test_loaders_that_import_torchvision_check_first(fake_versions, broken_import, tmp_path):
    from facefill.losses.structure import structure_loss
    from facefill.metrics.context import ssim_map
    from facefill.metrics.inception import FIDInceptionV3
    from facefill.metrics.ssim import ssim
    from facefill.models.embedders import VGG19Features

    fake_versions(torch.__version__, importlib.metadata.version("torchvision"))
    x = torch.zeros(1, 3, 16, 16)
    with pytest.raises(TorchvisionMismatch):  # evaluate -m ssim, and train's validation SSIM
        ssim(x, x)
    with pytest.raises(TorchvisionMismatch):  # evaluate --masks
        ssim_map(x, x)
    with pytest.raises(TorchvisionMismatch):
        structure_loss(x, x, torch.zeros(1, 1, 16, 16))  # piq imports torchvision
    with pytest.raises(TorchvisionMismatch):
        FIDInceptionV3()
    vgg = tmp_path / "vgg19.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, vgg)
    with pytest.raises(TorchvisionMismatch):
        VGG19Features(vgg)


def test_evaluate_fid_with_a_broken_torchvision_is_one_line_exit_1(fake_versions, broken_import, tmp_path):
    from facefill.cli.app import app

    rng = np.random.default_rng(0)
    for name in ("gen", "real"):
        (tmp_path / name).mkdir()
        for i in range(2):
            cv2.imwrite(str(tmp_path / name / f"{i}.png"), rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    fake_versions(torch.__version__, importlib.metadata.version("torchvision"))
    weights = tmp_path / "pt_inception.pth"  # a pytorch-fid file: built on torchvision's Inception blocks
    torch.save({"x": torch.zeros(1)}, weights)
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path / "gen"), str(tmp_path / "real"), "-m", "fid",
                                   "--inception-weights", str(weights), "-q"])
    assert res.exit_code == 1, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "operator torchvision::nms does not exist" in lines[0] and "pip install" in lines[0]


def test_cpu_threads_sets_torch_threads_on_the_cpu_only_and_restores_them():
    """The donor filler runs on one intra-op thread per pipeline thread (FillBatch docs); the
    command sets it for the run and gives the number back."""
    import torch

    from facefill.fill.donor import DonorFill
    from facefill.runtime import cpu_threads

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with cpu_threads(torch.device("cpu"), DonorFill.cpu_threads):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with cpu_threads(torch.device("cuda"), 1):  # a GPU run keeps the CPU's threads
            assert torch.get_num_threads() == 2
        with cpu_threads(torch.device("cpu"), None):
            assert torch.get_num_threads() == 2
        with pytest.raises(KeyError), cpu_threads(torch.device("cpu"), 1):
            raise KeyError
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
