import numpy as np
import pytest
import torch

from facefill.donor.warp import CONTROL_POINTS, border_anchors, tps_apply, tps_fit, warp_to_landmarks


def test_tps_interpolates_its_points_exactly():
    g = torch.Generator().manual_seed(1)
    src = torch.rand(2, 12, 2, generator=g) * 2 - 1
    dst = src + 0.1 * torch.randn(2, 12, 2, generator=g)
    w, a = tps_fit(src, dst)
    assert torch.allclose(tps_apply(src, src, w, a), dst.double(), atol=1e-5)  # float32 evaluation


def test_tps_of_an_affine_map_is_that_map_everywhere():
    src = torch.rand(1, 10, 2, dtype=torch.float64) * 2 - 1
    m = torch.tensor([[1.1, 0.2], [-0.1, 0.9]], dtype=torch.float64)
    dst = src @ m.T + torch.tensor([0.05, -0.02], dtype=torch.float64)
    w, a = tps_fit(src, dst)
    probe = torch.rand(1, 50, 2, dtype=torch.float64) * 2 - 1
    assert torch.allclose(tps_apply(probe, src, w, a), probe @ m.T + torch.tensor([0.05, -0.02], dtype=torch.float64),
                          atol=1e-5)


def _landmarks(size=64, seed=0):
    rng = np.random.default_rng(seed)
    lm = rng.uniform(0.2 * size, 0.8 * size, (68, 2))
    return torch.tensor(lm[None], dtype=torch.float32)


def test_same_landmarks_leave_the_image_as_it_is():
    img = torch.rand(1, 3, 64, 64)
    lm = _landmarks()
    out = warp_to_landmarks(img, lm, lm)
    assert (out - img).abs().max() < 1e-4


def test_a_donor_landmark_lands_on_the_query_landmark():
    size = 64
    donor_lm = _landmarks(size)
    query_lm = donor_lm.clone()
    k = CONTROL_POINTS[8]  # the chin
    query_lm[0, k] += torch.tensor([3.0, 4.0])
    img = torch.zeros(1, 1, size, size)
    x, y = donor_lm[0, k].round().long().tolist()
    donor_lm[0, k] = torch.tensor([float(x), float(y)])
    query_lm[0, k] = donor_lm[0, k] + torch.tensor([3.0, 4.0])
    img[0, 0, y, x] = 1.0
    out = warp_to_landmarks(img, donor_lm, query_lm, regularization=0.0, step=1)[0, 0]
    peak = divmod(int(out.argmax()), size)
    assert peak == (y + 4, x + 3)
    assert out.max() > 0.9


def test_border_stays_put_and_outside_samples_are_zero():
    anchors = border_anchors(32, 4)
    assert anchors.shape == (16, 2) and anchors.min() == 0 and anchors.max() == 31
    valid = torch.ones(1, 1, 32, 32)
    lm_d = _landmarks(32, 1)
    lm_q = lm_d + 1.5
    out = warp_to_landmarks(valid, lm_d, lm_q)
    assert out[0, 0, 0, 0] > 0.99 and out[0, 0, -1, -1] > 0.99  # anchored corners sample themselves


def test_non_square_images_are_refused():
    with pytest.raises(ValueError, match="square"):
        warp_to_landmarks(torch.zeros(1, 3, 32, 40), _landmarks(32), _landmarks(32))


def test_the_coarse_grid_samples_where_the_exact_warp_does(aligned_faces):
    """Real landmark sets (two people): the default coarse evaluation of the spline samples the
    same place as evaluating it at every pixel."""
    import json

    lms = [torch.tensor(json.loads((aligned_faces / f"{n}.json").read_text())["landmarks"])[None].float()
           for n in ("biden", "astronaut")]
    ramp = torch.stack(torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij"))[None]  # (1, 2, H, W)
    exact = warp_to_landmarks(ramp.double(), lms[0], lms[1], step=1)
    coarse = warp_to_landmarks(ramp.double(), lms[0], lms[1])
    inside = (exact > 2).all(1) & (exact < 125).all(1)
    err = (exact - coarse).abs().amax(1)[inside]
    assert err.max() < 0.5 and err.quantile(0.99) < 0.1
