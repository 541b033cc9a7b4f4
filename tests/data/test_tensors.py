"""uint8 <-> float conversions: exact round trip and C-contiguous results."""

import numpy as np
import torch

from facefill.data.tensors import from_uint8, to_uint8


def test_round_trip_is_exact_for_both_ranges():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    for signed in (True, False):
        np.testing.assert_array_equal(to_uint8(from_uint8(img, signed=signed), signed=signed), img)


def test_results_are_c_contiguous():
    """A (H, W, 3) view of a CHW tensor made dlib's detector miss faces at random (in about one
    process in four; see tests/align/test_core.py). Every array to_uint8 returns, and every crop
    taken from it, must be one plain buffer."""
    x = torch.rand(2, 3, 8, 8)
    batch = to_uint8(x, signed=False)
    assert batch.shape == (2, 8, 8, 3) and batch.flags["C_CONTIGUOUS"]
    assert batch[1].flags["C_CONTIGUOUS"]
    single = to_uint8(x[0], signed=False)
    assert single.shape == (8, 8, 3) and single.flags["C_CONTIGUOUS"]
