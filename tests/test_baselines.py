"""Classical inpainting baselines: face kept bit-exactly, context filled sensibly."""

from __future__ import annotations

import numpy as np
import pytest

from facefill.baselines import METHODS, fill
from facefill.config import HALLUCINATE_METHODS
from facefill.errors import ConfigError, FacefillError, ImageError

H = W = 64
YY, XX = np.mgrid[0:H, 0:W].astype(np.float64)
DISK = ((YY - 32) ** 2 + (XX - 32) ** 2 <= 20 ** 2).astype(np.float32)  # the "face"


def _gradient() -> np.ndarray:
    img = np.stack([40 + 1.5 * XX + 0.5 * YY, 200 - 1.0 * XX + 0.8 * YY, 60 + 0.3 * XX + 1.2 * YY], -1)
    return img.round().clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("method", METHODS)
def test_face_pixels_unchanged(method):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    soft = DISK * 0.9 + 0.05  # soft mask: > 0.5 is face
    out = fill(method, img, soft)
    assert out.shape == img.shape and out.dtype == np.uint8
    face = soft > 0.5
    np.testing.assert_array_equal(out[face], img[face])
    assert not np.array_equal(out[~face], img[~face])
    # the context's input values are never read
    scrambled = img.copy()
    scrambled[~face] = rng.integers(0, 256, (int((~face).sum()), 3), dtype=np.uint8)
    np.testing.assert_array_equal(fill(method, scrambled, DISK.astype(bool)), out)


def test_mean_fills_with_exactly_the_mean():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    face = DISK > 0.5
    out = fill("mean", img, DISK)
    sums = [sum(int(img[y, x, c]) for y in range(H) for x in range(W) if face[y, x]) for c in range(3)]
    n = int(face.sum())
    expected = [int(np.floor(s / n + 0.5)) for s in sums]
    assert (out[~face] == np.array(expected, np.uint8)).all()


@pytest.mark.parametrize("method", ["telea", "ns"])
def test_inpainting_continues_a_smooth_gradient(method):
    img = _gradient()
    out = fill(method, img, DISK).astype(np.float64)
    ctx = DISK <= 0.5
    err = np.abs(out - img)
    near = ctx & ((YY - 32) ** 2 + (XX - 32) ** 2 <= 24 ** 2)  # within 4 px of the face
    assert err[near].mean() < 4.0, err[near].mean()  # measured: telea 3.0, ns 2.4 (of 0..255)
    mean_err = np.abs(fill("mean", img, DISK).astype(np.float64) - img)[ctx].mean()
    assert err[ctx].mean() < 0.5 * mean_err  # measured: about 9.5 vs 25.6 over the whole context


def test_bad_method_raises_config_error_listing_methods():
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ConfigError) as info:
        fill("poisson", img, np.ones((8, 8)))
    assert isinstance(info.value, FacefillError)
    for m in METHODS:
        assert m in str(info.value)


def test_bad_inputs():
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ImageError, match="empty"):
        fill("telea", img, np.zeros((8, 8)))
    with pytest.raises(ImageError):
        fill("telea", img.astype(np.float32), np.ones((8, 8)))
    with pytest.raises(ImageError):
        fill("telea", img, np.ones((4, 4)))
    np.testing.assert_array_equal(fill("ns", img + 7, np.ones((8, 8))), img + 7)  # all face: unchanged



def test_methods_are_the_classical_part_of_the_one_method_list():
    """baselines.METHODS is derived from config.HALLUCINATE_METHODS (the one list): every classical
    --method of hallucinate is a baseline that fill() knows, in the same order, and nothing else."""
    assert METHODS == tuple(m for m in HALLUCINATE_METHODS if m not in ("model", "donor"))
    assert set(METHODS) | {"model", "donor"} == set(HALLUCINATE_METHODS)
