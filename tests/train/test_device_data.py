"""The device-resident training set: the same batches as the per-item path, pixel for pixel, for
the same (seed, epoch, index); the auto rule; the memory it says it needs."""

import shutil

import cv2
import numpy as np
import pytest
import torch

from facefill.align.sidecar import valid_path
from facefill.config import AugmentConfig, MaskConfig
from facefill.train.data import FaceDataset, scan
from facefill.train.device_data import DeviceFaces, device_bytes, use_device_data

GEO_COLOR = AugmentConfig(geometric=True, color=True, rotate=20, shift=0.1)


@pytest.fixture(scope="module")
def samples(tmp_path_factory, aligned_faces):
    """The aligned test faces, one of them with a synthetic .valid.png (its right third padding)."""
    dst = tmp_path_factory.mktemp("device_data")
    for p in sorted(aligned_faces.glob("*.png")):
        if not p.name.endswith((".valid.png", ".mask.png")):
            shutil.copy(p, dst / p.name)
            if p.with_suffix(".json").exists():
                shutil.copy(p.with_suffix(".json"), dst / p.with_suffix(".json").name)
    names = sorted(p for p in dst.glob("*.png"))
    valid = np.full((128, 128), 255, np.uint8)
    valid[:, 86:] = 0
    cv2.imwrite(str(valid_path(names[0])), valid)
    found, skipped = scan(dst, None)
    assert len(found) >= 4 and not skipped
    return found


def _stacked(ds, indices):
    items = [ds[i] for i in indices]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


@pytest.mark.parametrize("flip, augment, mask", [
    (False, None, MaskConfig()),
    (True, None, MaskConfig(grow=3, feather=4)),
    (True, AugmentConfig(color=True, hue=0.1), MaskConfig()),
    (True, GEO_COLOR, MaskConfig(feather=2)),
], ids=["plain", "flip", "flip+color", "flip+warp+color"])
def test_batches_equal_the_per_item_path(samples, flip, augment, mask):
    per_item = FaceDataset(samples, 128, mask, flip, seed=7, augment=augment)
    on_device = DeviceFaces(samples, 128, mask, flip, seed=7, augment=augment, device="cpu")
    indices = [3, 0, 2, 1, 0]
    for epoch in (0, 5):
        per_item.set_epoch(epoch), on_device.set_epoch(epoch)
        want, got = _stacked(per_item, indices), on_device.batch(indices)
        assert set(got) == set(want)
        for k in want:
            assert got[k].dtype == want[k].dtype and torch.equal(got[k], want[k]), (epoch, k)
    if flip:  # the draws differ between epochs, so the test above compared more than one layout
        per_item.set_epoch(0)
        first = _stacked(per_item, indices)["real"]
        per_item.set_epoch(5)
        assert not torch.equal(first, _stacked(per_item, indices)["real"])


def test_batches_cover_the_order_in_whole_batches(samples):
    ds = DeviceFaces(samples, 64, flip=False, device="cpu")
    batches = list(ds.batches([2, 0, 1, 3, 2], 2))
    assert len(batches) == 2  # the last, partial batch is dropped, as with drop_last
    assert torch.equal(batches[1]["real"], ds.batch([1, 3])["real"])
    assert batches[0]["real"].shape == (2, 3, 64, 64)


def test_memory_estimate_and_the_auto_rule(samples):
    ds = DeviceFaces(samples, 128, flip=True, device="cpu")
    assert ds.nbytes() == device_bytes(len(samples), 128, True, None)
    assert device_bytes(865, 128, True, None) == 865 * 128 * 128 * 15  # 865 faces: 203 MiB
    assert device_bytes(865, 128, True, GEO_COLOR) == 865 * 128 * 128 * 7  # masks drawn per batch
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert use_device_data("auto", 865, 128, True, None, cuda, budget_mb=2048)
    assert not use_device_data("auto", 865, 128, True, None, cuda, budget_mb=100)
    assert not use_device_data("auto", 865, 128, True, None, cpu, budget_mb=2048)
    assert use_device_data("on", 865, 128, True, None, cpu, budget_mb=1)
    assert not use_device_data("off", 4, 128, True, None, cuda, budget_mb=2048)
    with pytest.raises(ValueError, match="auto, on, off"):
        use_device_data("yes", 4, 128, True, None, cpu, budget_mb=1)
