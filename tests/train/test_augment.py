"""Random similarity warp + colour jitter: reproducible, geometrically consistent, validity exact."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from facefill.errors import ConfigError
from facefill.train.augment import (AugmentConfig, AugmentParams, augment, draw_params, similarity_matrix,
                                    transform_landmarks)

S = 64
ON = AugmentConfig(geometric=True, color=True)
GEO = AugmentConfig(geometric=True)
STRONG = AugmentConfig(geometric=True, scale=(0.8, 1.2), rotate=25, shift=0.15)


def _item(seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(3, S, S, generator=g) * 2 - 1
    lm = torch.rand(68, 2, generator=g, dtype=torch.float64) * (S - 1)
    return image, lm.float()


def test_same_key_same_output_different_key_different():
    image, lm = _item()
    a = augment(image, lm, None, ON, seed=3, epoch=2, index=7)
    torch.manual_seed(123)  # global RNG state must not matter
    b = augment(image.clone(), lm.clone(), None, ON, seed=3, epoch=2, index=7)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    for key in ({"seed": 3, "epoch": 2, "index": 8}, {"seed": 3, "epoch": 3, "index": 7},
                {"seed": 4, "epoch": 2, "index": 7}):
        c = augment(image, lm, None, ON, **key)
        assert not torch.equal(a[0], c[0]) and not torch.equal(a[1], c[1])


def test_batch_equals_items_in_any_order():
    items = [_item(i) for i in range(3)]
    images = torch.stack([i for i, _ in items])
    lms = torch.stack([l for _, l in items])
    out = augment(images.flip(0), lms.flip(0), None, ON, seed=1, epoch=0, index=[12, 11, 10])
    for k, (image, lm) in enumerate(items):
        one = augment(image, lm, None, ON, seed=1, epoch=0, index=10 + k)
        j = 2 - k
        torch.testing.assert_close(out[0][j], one[0], atol=1e-6, rtol=0)
        torch.testing.assert_close(out[1][j], one[1])
        assert torch.equal(out[2][j], one[2])


def test_colour_switch_does_not_change_geometry():
    for i in range(5):
        a, b = draw_params(GEO, 0, 0, i), draw_params(ON, 0, 0, i)
        assert (a.scale, a.angle, a.shift_x, a.shift_y) == (b.scale, b.angle, b.shift_x, b.shift_y)
        assert a.brightness == 1.0 and b.brightness != 1.0


def test_params_stay_in_range():
    for i in range(200):
        p = draw_params(ON, 0, 0, i)
        assert 0.9 <= p.scale <= 1.1 and abs(p.angle) <= 10 and abs(p.shift_x) <= 0.06 and abs(p.shift_y) <= 0.06
        assert 0.8 <= p.brightness <= 1.2 and abs(p.hue) <= 0.02


def _blob(x: float, y: float) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(S, dtype=torch.float64), torch.arange(S, dtype=torch.float64), indexing="ij")
    return torch.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5 ** 2))


@pytest.mark.parametrize("index", range(4))
def test_landmarks_follow_the_warp(index):
    lm = torch.tensor([[20.3, 24.7], [40.0, 30.5], [31.6, 44.2]] + [[32.0, 32.0]] * 65, dtype=torch.float32)
    for k in range(3):
        dot = _blob(*lm[k].tolist()).float()
        image = (dot * 2 - 1).expand(3, S, S).clone()  # bright dot at landmark k on black
        out, lm2, _ = augment(image, lm, None, STRONG, seed=0, epoch=0, index=index)
        w = (out[0] + 1).double()  # black is 0
        ax = torch.arange(S, dtype=torch.float64)
        yy, xx = torch.meshgrid(ax, ax, indexing="ij")
        centroid = torch.stack([(w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()])
        peak = torch.stack([w.argmax() % S, w.argmax() // S]).double()
        assert (centroid - lm2[k].double()).norm() < 1.0, (centroid, lm2[k])
        assert (peak - lm2[k].double()).abs().max() <= 1.0
    assert not torch.allclose(lm2, lm)  # it did move


def test_validity_is_zero_exactly_where_pixels_came_from_outside():
    image, lm = _item()
    valid_in = torch.ones(1, S, S)
    valid_in[:, :, :3] = 0  # alignment padding on the left edge
    checked = 0
    for index in range(6):
        out, _, valid = augment(image, lm, valid_in, STRONG, seed=0, epoch=0, index=index)
        assert set(valid.unique().tolist()) <= {0.0, 1.0}
        m = similarity_matrix(draw_params(STRONG, 0, 0, index), S, S).numpy()
        inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))
        yy, xx = np.mgrid[0:S, 0:S].astype(np.float64)
        sx = inv[0, 0] * xx + inv[0, 1] * yy + inv[0, 2]
        sy = inv[1, 0] * xx + inv[1, 1] * yy + inv[1, 2]
        # every bilinear tap inside the frame and on a valid column (x >= 3)
        expected = (sx >= 3) & (sx <= S - 1) & (sy >= 0) & (sy <= S - 1)
        margin = np.minimum.reduce([np.abs(sx - 3), np.abs(sx - (S - 1)), np.abs(sy), np.abs(sy - (S - 1))])
        clear = margin > 0.01  # a source within 0.01 px of an edge is a rounding call either way
        got = valid[0].numpy() > 0.5
        np.testing.assert_array_equal(got[clear], expected[clear])
        assert (~expected).any()  # something came from outside
        assert (out[:, ~torch.from_numpy(got)] == -1).all()  # invalid pixels are black
        checked += int(clear.sum())
    assert checked > 0.99 * 6 * S * S


def test_interior_pixels_match_a_reference_bilinear_warp():
    image, lm = _item()
    out, _, valid = augment(image, lm, None, GEO, seed=5, epoch=1, index=2)
    m = similarity_matrix(draw_params(GEO, 5, 1, 2), S, S).numpy()
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))
    src = image.numpy().astype(np.float64)
    for y, x in [(32, 32), (20, 40), (45, 17)]:
        sx, sy = inv[0] @ [x, y, 1], inv[1] @ [x, y, 1]
        x0, y0 = int(np.floor(sx)), int(np.floor(sy))
        fx, fy = sx - x0, sy - y0
        ref = (src[:, y0, x0] * (1 - fx) * (1 - fy) + src[:, y0, x0 + 1] * fx * (1 - fy)
               + src[:, y0 + 1, x0] * (1 - fx) * fy + src[:, y0 + 1, x0 + 1] * fx * fy)
        assert valid[0, y, x] == 1
        np.testing.assert_allclose(out[:, y, x].numpy(), ref, atol=1e-4)


def test_disabled_is_identity():
    image, lm = _item()
    valid_in = torch.ones(1, S, S)
    valid_in[:, :5] = 0
    out, lm2, valid = augment(image, lm, valid_in, AugmentConfig(), seed=0, epoch=0, index=0)
    assert torch.equal(out, image) and torch.equal(lm2, lm) and torch.equal(valid, valid_in)
    assert not AugmentConfig().enabled
    assert draw_params(AugmentConfig(), 0, 0, 0) == AugmentParams()
    # zero ranges with the switches on: the identity transform
    zero = AugmentConfig(geometric=True, color=True, scale=(1, 1), rotate=0, shift=0, brightness=0,
                         contrast=0, saturation=0, hue=0)
    out, lm2, valid = augment(image, lm, None, zero, seed=0, epoch=0, index=0)
    torch.testing.assert_close(out, image, atol=1e-4, rtol=0)  # kornia's float32 sampling grid
    torch.testing.assert_close(lm2, lm)
    assert valid.all()


def test_colour_only_leaves_geometry_and_invalid_pixels():
    image, lm = _item()
    valid_in = torch.ones(1, S, S)
    valid_in[:, :, :4] = 0
    image = torch.where(valid_in.bool(), image, -1.0)
    cfg = AugmentConfig(color=True, brightness=0.5, contrast=0.5, saturation=0.5, hue=0.1)
    out, lm2, valid = augment(image, lm, valid_in, cfg, seed=0, epoch=0, index=1)
    assert torch.equal(lm2, lm) and torch.equal(valid, valid_in)
    assert (out[:, :, :4] == -1).all()
    assert not torch.allclose(out[:, :, 4:], image[:, :, 4:], atol=1e-3)
    assert out.min() >= -1 and out.max() <= 1


def test_brightness_alone_scales_linearly():
    image, lm = _item()
    cfg = AugmentConfig(color=True, brightness=0.3, contrast=0, saturation=0, hue=0)
    p = draw_params(cfg, 0, 0, 4)
    out, _, _ = augment(image, lm, None, cfg, seed=0, epoch=0, index=4)
    torch.testing.assert_close(out, (((image + 1) / 2 * p.brightness).clamp(0, 1)) * 2 - 1)


def test_transform_landmarks_matches_matrix():
    m = similarity_matrix(AugmentParams(scale=1.1, angle=90, shift_x=0.0), 65, 65)
    centre = torch.tensor([[32.0, 32.0], [42.0, 32.0]])
    out = transform_landmarks(centre, m)
    torch.testing.assert_close(out, torch.tensor([[32.0, 32.0], [32.0, 43.0]]), atol=1e-5, rtol=0)


def test_config_validation_and_frozen():
    with pytest.raises(ConfigError, match="augment.scale"):
        AugmentConfig(scale=(1.2, 0.9))
    with pytest.raises(ConfigError, match="augment.hue"):
        AugmentConfig(hue=0.7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        AugmentConfig().geometric = True  # type: ignore[misc]


def test_colour_is_read_as_the_deprecated_spelling_of_color(tmp_path):
    """Config keys spell it ``color``; files, run folders and stored configs that say ``colour``
    (the earlier key) still load, and saying both is an error."""
    from facefill.config import ConfigError, from_dict, resolve, to_dict

    old = tmp_path / "old.toml"
    old.write_text("[augment]\ngeometric = true\ncolour = true\n")
    assert resolve("tiny", old).augment.color is True
    stored = to_dict(resolve("tiny"))
    stored["augment"]["colour"] = stored["augment"].pop("color") or True
    assert from_dict(stored).augment.color is True
    both = tmp_path / "both.toml"
    both.write_text("[augment]\ncolour = true\ncolor = false\n")
    with pytest.raises(ConfigError, match="augment.colour is the deprecated spelling of augment.color"):
        resolve("tiny", both)
    assert "colour" not in to_dict(resolve("tiny"))["augment"]
