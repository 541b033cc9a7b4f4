import numpy as np
import pytest
import torch

from facefill.align.core import align_image
from facefill.align.landmarks import get_backend
from facefill.data.io import read_image
from facefill.data.tensors import apply_mask_uint8 as apply_mask
from facefill.data.tensors import masked_input as apply_mask_tensor
from facefill.mask.region import face_mask


@pytest.fixture(scope="module")
def aligned(data_dir_module):
    backend = get_backend("dlib")
    return [align_image(read_image(data_dir_module / "faces" / n), backend)[0]
            for n in ["obama.jpg", "biden.jpg", "astronaut.jpg"]]


@pytest.fixture(scope="module")
def data_dir_module():
    from pathlib import Path
    return Path(__file__).parents[1] / "data"


def test_mask_covers_inner_face_and_excludes_corners(aligned):
    for a in aligned:
        m = face_mask(a.landmarks, 128)
        assert m.shape == (128, 128) and m.dtype == np.float32
        assert set(np.unique(m)) == {0.0, 1.0}  # hard edge without feathering
        inner = np.round(a.landmarks[27:68]).astype(int)  # nose, eyes, mouth
        assert (m[inner[:, 1], inner[:, 0]] == 1).all()
        for y, x in [(0, 0), (0, 127), (127, 0), (127, 127), (5, 64)]:
            assert m[y, x] == 0
        assert 0.1 < m.mean() < 0.5


def test_grow_erode_feather(aligned):
    lm = aligned[0].landmarks
    base = face_mask(lm, 128).sum()
    assert face_mask(lm, 128, grow=4).sum() > base > face_mask(lm, 128, grow=-4).sum()
    soft = face_mask(lm, 128, feather=6)
    assert soft.min() >= 0 and soft.max() <= 1
    assert ((soft > 0.02) & (soft < 0.98)).sum() > 2 * ((face_mask(lm, 128) > 0.02) & (face_mask(lm, 128) < 0.98)).sum()


def test_apply_mask_keeps_face_pixels_and_fills_rest(aligned):
    a = aligned[0]
    m = face_mask(a.landmarks, 128)
    out = apply_mask(a.image, m, fill=(10, 20, 30))
    assert np.array_equal(out[m == 1], a.image[m == 1])
    assert (out[m == 0] == [10, 20, 30]).all()
    t = apply_mask_tensor(torch.ones(1, 3, 4, 4), torch.zeros(1, 1, 4, 4), fill=-1.0)
    assert (t == -1).all()
