import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from facefill.pipeline.align import align_folder
from facefill.align.landmarks import get_backend
from facefill.config import AlignConfig

torch.set_num_threads(2)

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture
def data_dir() -> Path:
    return DATA



@pytest.fixture(scope="session")
def aligned_faces(tmp_path_factory) -> Path:
    """The real test photos aligned once per session (4 faces + an RGBA copy)."""
    out = tmp_path_factory.mktemp("aligned")
    report = align_folder(DATA / "faces", out, get_backend("dlib"), AlignConfig())
    assert len(report.written) >= 4
    return out


@pytest.fixture
def masked(aligned_faces, tmp_path) -> Path:
    """``mask_folder`` over the aligned test faces (tests/cli has its own, made with the CLI)."""
    from facefill.pipeline.mask import mask_folder

    out = tmp_path / "masked"
    mask_folder(aligned_faces, out)
    return out


@pytest.fixture
def faces_copy(aligned_faces, tmp_path) -> Path:
    dst = tmp_path / "data"
    shutil.copytree(aligned_faces, dst)
    return dst
