"""The training dataset: the validity mask follows the image through flips and resizes."""

import shutil

import cv2
import numpy as np
import pytest
import torch

from facefill.align.sidecar import valid_path
from facefill.config import MaskConfig
from facefill.train.data import FaceDataset, scan


@pytest.fixture
def right_third_invalid(aligned_faces, tmp_path):
    """One real aligned face whose right third is marked as padding (a synthetic .valid.png)."""
    src = aligned_faces / "biden.png"
    dst = tmp_path / "data"
    dst.mkdir()
    shutil.copy(src, dst / "biden.png")
    shutil.copy(src.with_suffix(".json"), dst / "biden.json")
    valid = np.full((128, 128), 255, np.uint8)
    valid[:, 86:] = 0
    cv2.imwrite(str(valid_path(dst / "biden.png")), valid)
    return dst


def test_valid_mask_is_read_flipped_and_resized(right_third_invalid):
    samples, skipped = scan(right_third_invalid, None)
    assert len(samples) == 1 and not skipped
    item = FaceDataset(samples, 128, MaskConfig(), flip=False)[0]
    v = item["valid"]
    assert v.shape == (1, 128, 128)
    assert (v[..., 86:] == 0).all() and (v[..., :86] == 1).all()
    flips = [FaceDataset(samples, 128, MaskConfig(), flip=True, seed=s)[0]["valid"] for s in range(8)]
    flipped = [f for f in flips if (f[..., :42] == 0).all()]
    assert flipped and all((f[..., 42:] == 1).all() for f in flipped), "a flip mirrors the mask"
    small = FaceDataset(samples, 64, MaskConfig(), flip=False)[0]["valid"]
    assert small.shape == (1, 64, 64) and (small[..., 43:] == 0).all() and (small[..., :43] == 1).all()


def test_no_valid_file_means_all_valid(aligned_faces):
    samples, _ = scan(aligned_faces, None)
    without = [s for s in samples if not valid_path(s.path).exists()]
    assert without, "the test set has a face that needed no padding"
    item = FaceDataset(without, 128, MaskConfig(), flip=False)[0]
    assert (item["valid"] == 1).all()


def test_augmentation_moves_photo_landmarks_and_validity_together(right_third_invalid):
    from facefill.train.augment import AugmentConfig

    samples, _ = scan(right_third_invalid, None)
    aug = AugmentConfig(geometric=True, color=True, rotate=20, shift=0.1)
    plain = FaceDataset(samples, 128, MaskConfig(), flip=False, seed=3)[0]
    a = FaceDataset(samples, 128, MaskConfig(), flip=False, seed=3, augment=aug)[0]
    b = FaceDataset(samples, 128, MaskConfig(), flip=False, seed=3, augment=aug)[0]
    for k in a:
        assert torch.equal(a[k], b[k]), k  # a function of (seed, epoch, index) alone
    assert not torch.equal(a["landmarks"], plain["landmarks"]) and not torch.equal(a["mask"], plain["mask"])
    assert a["valid"].sum() < plain["valid"].sum()  # the warp brought padding in...
    assert (a["real"][:, a["valid"][0] == 0] == -1).all()  # ...black, and marked invalid
    assert (a["masked"][:, a["mask"][0] == 0] == -1).all()


def test_scan_refuses_raw_photos_even_square_ones(data_dir):
    """Only 'facefill align' outputs are trained on: a square raw photo (astronaut.jpg) used to be
    taken and resized while mask refused it."""
    from facefill.align.landmarks import lazy_backend
    from facefill.train.data import scan

    samples, skipped = scan(data_dir / "faces", lazy_backend("dlib"))
    reasons = {p.name: r for p, r in skipped}
    assert samples == [] and "not an aligned face" in reasons["astronaut.jpg"]
