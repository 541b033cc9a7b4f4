import json
import random
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from facefill.pipeline.align import align_folder
from facefill.align.landmarks import get_backend
from facefill.config import AlignConfig

torch.set_num_threads(2)

DATA = Path(__file__).parent / "data"


def random_image_folders(root: Path, n: int = 3, size: int = 32, seed: int = 0) -> tuple[str, str]:
    """Two folders ``root/gen`` and ``root/real`` of ``n`` random ``size`` px images with the same
    names (``0.png`` ...): inputs for evaluate's command line, whose checks come before any metric."""
    rng = np.random.default_rng(seed)
    for name in ("gen", "real"):
        (root / name).mkdir()
        for i in range(n):
            cv2.imwrite(str(root / name / f"{i}.png"), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return str(root / "gen"), str(root / "real")


@pytest.fixture
def random_folders(tmp_path):
    """``make(n=3, size=32) -> (gen, real)``: :func:`random_image_folders` under ``tmp_path``."""
    return lambda n=3, size=32: random_image_folders(tmp_path, n, size)


@pytest.fixture
def image_folders(random_folders) -> tuple[str, str]:
    """:func:`random_image_folders` of 3 random 32 px images."""
    return random_folders()


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


# A small donor bank made from the real test photos: 4 aligned faces, each as is and mirrored,
# in three colour casts (24 donors), with sidecars as 'facefill align' writes them.
#: Where each of the 68 landmarks goes when the image is mirrored left-right.
FLIP_68 = (list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
           + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40] + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
           + [64, 63, 62, 61, 60, 67, 66, 65])
CASTS = {"plain": (1.0, 1.0, 1.0), "warm": (1.08, 1.0, 0.9), "cool": (0.9, 1.0, 1.1)}
FACES = ("astronaut", "biden", "obama", "obama2")


def write_donor(folder: Path, name: str, image: np.ndarray, landmarks: np.ndarray, valid: np.ndarray | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    (folder / f"{name}.json").write_text(json.dumps({"landmarks": np.asarray(landmarks).tolist(), "size": image.shape[0]}))
    if valid is not None:
        cv2.imwrite(str(folder / f"{name}.valid.png"), (valid > 0.5).astype(np.uint8) * 255)
    return path


@pytest.fixture(scope="session")
def aligned_faces_256(tmp_path_factory) -> Path:
    """The real test photos aligned at 256 px (``align --size 256``)."""
    out = tmp_path_factory.mktemp("aligned256")
    report = align_folder(DATA / "faces", out, get_backend("dlib"), AlignConfig(size=256))
    assert len(report.written) >= 4
    return out


@pytest.fixture(scope="session")
def donor_bank_256(aligned_faces_256, tmp_path_factory) -> Path:
    """The 24-donor bank below, from the photos aligned at 256 px."""
    return make_donor_bank(aligned_faces_256, tmp_path_factory.mktemp("bank256"))


@pytest.fixture(scope="session")
def donor_bank(aligned_faces, tmp_path_factory) -> Path:
    return make_donor_bank(aligned_faces, tmp_path_factory.mktemp("bank"))


def make_donor_bank(aligned_faces: Path, bank: Path) -> Path:
    """The 24-donor bank above from ``aligned_faces`` (the test photos aligned at any size)."""
    from facefill.align.sidecar import read_sidecar, read_valid
    from facefill.data.io import read_image

    for face in FACES:
        path = aligned_faces / f"{face}.png"
        image, lm = read_image(path), np.asarray(read_sidecar(path)["landmarks"], np.float64)
        valid = read_valid(path, image.shape[0])
        size = image.shape[1]
        flipped_lm = lm[FLIP_68].copy()
        flipped_lm[:, 0] = size - 1 - flipped_lm[:, 0]
        for cast, gain in CASTS.items():
            tinted = np.clip(image * np.array(gain), 0, 255).round().astype(np.uint8)
            write_donor(bank, f"{face}_{cast}", tinted, lm, valid)
            write_donor(bank, f"{face}_{cast}_flip", tinted[:, ::-1].copy(), flipped_lm,
                        None if valid is None else valid[:, ::-1].copy())
    return bank
