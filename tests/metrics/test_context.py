"""Context-only metrics against hand computations (plain loops and scikit-image)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from facefill.errors import FacefillError
from facefill.metrics.context import context_l1, context_ssim


def _pair(b=2, h=24, w=20, seed=0):
    rng = np.random.default_rng(seed)
    real = rng.random((b, 3, h, w))
    pred = np.clip(real + rng.normal(0, 0.15, real.shape), 0, 1)
    mask = np.zeros((b, 1, h, w))
    mask[0, 0, 6:17, 5:14] = 1.0
    if b > 1:
        mask[1, 0, 2:20, 3:9] = 0.8  # soft values: > 0.5 is face
        mask[1, 0, 10:12, 3:9] = 0.4  # <= 0.5 is context
    return pred, real, mask


def _t(a):
    return torch.from_numpy(np.asarray(a, np.float64))


def test_context_l1_matches_loops():
    pred, real, mask = _pair()
    got = context_l1(_t(pred), _t(real), _t(mask))
    for i in range(pred.shape[0]):
        total, n = 0.0, 0
        for y in range(pred.shape[2]):
            for x in range(pred.shape[3]):
                if mask[i, 0, y, x] <= 0.5:
                    for c in range(3):
                        total += abs(pred[i, c, y, x] - real[i, c, y, x])
                    n += 3
        assert got[i].item() == pytest.approx(total / n, rel=1e-12)
    # [-1, 1] inputs give the same number on the [0, 1] scale
    got_pm = context_l1(_t(pred * 2 - 1), _t(real * 2 - 1), _t(mask), value_range=(-1, 1))
    torch.testing.assert_close(got_pm, got)


def test_context_ssim_matches_skimage_map():
    pred, real, mask = _pair()
    got = context_ssim(_t(pred), _t(real), _t(mask))
    for i in range(pred.shape[0]):
        _, smap = structural_similarity(pred[i].transpose(1, 2, 0), real[i].transpose(1, 2, 0), channel_axis=-1,
                                        data_range=1.0, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, full=True)
        smap = smap.mean(-1)[5:-5, 5:-5]  # the "valid" window centres; skimage pads the border
        context = mask[i, 0, 5:-5, 5:-5] <= 0.5
        assert got[i].item() == pytest.approx(smap[context].mean(), abs=1e-6)


def test_context_ssim_inside_windows_only():
    pred, real, mask = _pair(b=1, h=40, w=40)
    got = context_ssim(_t(pred), _t(real), _t(mask), window="inside").item()
    _, smap = structural_similarity(pred[0].transpose(1, 2, 0), real[0].transpose(1, 2, 0), channel_axis=-1,
                                    data_range=1.0, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, full=True)
    smap = smap.mean(-1)
    vals = [smap[y, x] for y in range(5, 35) for x in range(5, 35)
            if (mask[0, 0, y - 5:y + 6, x - 5:x + 6] <= 0.5).all()]
    assert 0 < len(vals) < 30 * 30
    assert got == pytest.approx(np.mean(vals), abs=1e-6)


def test_all_context_equals_whole_image_piq_ssim():
    import piq

    from facefill.metrics.ssim import SSIM_SETTINGS

    pred, real, _ = _pair()
    x, y = _t(pred).float(), _t(real).float()
    got = context_ssim(x, y, torch.zeros(2, 1, 24, 20))
    torch.testing.assert_close(got, piq.ssim(x, y, reduction="none", **SSIM_SETTINGS), atol=1e-5, rtol=0)


def test_face_pixels_do_not_matter_context_pixels_do():
    pred, real, mask = _pair(b=1, h=48, w=48)
    mask[:] = 0
    mask[0, 0, 16:32, 16:32] = 1
    p, r, m = _t(pred), _t(real), _t(mask)
    face = m.bool().expand_as(p)
    for window in ("centre", "inside"):
        base_ssim = context_ssim(p, r, m, window=window)
        # the windows straddle the edge with "centre", so only "inside" is blind to face pixels
        changed_face = torch.where(face, torch.rand_like(p), p)
        if window == "inside":
            torch.testing.assert_close(context_ssim(changed_face, r, m, window=window), base_ssim)
        changed_ctx = torch.where(face, p, torch.rand_like(p))
        assert not torch.allclose(context_ssim(changed_ctx, r, m, window=window), base_ssim)
    base_l1 = context_l1(p, r, m)
    torch.testing.assert_close(context_l1(torch.where(face, torch.rand_like(p), p), r, m), base_l1)
    torch.testing.assert_close(context_l1(torch.where(face, 1 - r, r), r, m), torch.zeros(1, dtype=p.dtype))
    assert context_l1(torch.where(face, p, 1 - p), r, m).item() != pytest.approx(base_l1.item())
    # identical context scores perfectly whatever the face holds
    same_ctx = torch.where(face, torch.rand_like(r), r)
    assert context_ssim(same_ctx, r, m, window="inside").item() == pytest.approx(1.0, abs=1e-6)


def test_no_context_is_nan_and_bad_shapes_raise():
    x = torch.rand(1, 3, 16, 16)
    assert torch.isnan(context_l1(x, x, torch.ones(1, 1, 16, 16))).all()
    with pytest.raises(ValueError, match="face_mask"):
        context_l1(x, x, torch.ones(1, 1, 8, 8))
    with pytest.raises(FacefillError, match="window"):
        context_ssim(x, x, torch.zeros(1, 1, 16, 16), window="edge")
