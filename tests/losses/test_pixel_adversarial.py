import pytest
import torch

from facefill.errors import ConfigError
from facefill.losses import d_loss, fill_invalid, g_loss, pixel_loss


def test_pixel_loss_l1_l2_and_valid_weighting():
    fake, real = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    assert pixel_loss(fake, real).item() == pytest.approx((fake - real).abs().mean().item())
    assert pixel_loss(fake, real, kind="l2").item() == pytest.approx((fake - real).square().mean().item())
    valid = torch.zeros(2, 1, 8, 8)
    valid[..., :4] = 1
    want = (fake - real)[..., :4].abs().mean().item()
    assert pixel_loss(fake, real, valid).item() == pytest.approx(want, rel=1e-6)
    assert pixel_loss(fake, real, torch.ones(2, 1, 8, 8)).item() == pytest.approx(pixel_loss(fake, real).item())
    assert pixel_loss(fake, real, torch.zeros(2, 1, 8, 8)).item() == 0
    with pytest.raises(ConfigError, match="l1, l2"):
        pixel_loss(fake, real, kind="l3")


def test_fill_invalid_takes_the_reals_pixels_and_blocks_their_gradient():
    fake = torch.rand(1, 3, 4, 4, requires_grad=True)
    real = torch.rand(1, 3, 4, 4)
    valid = torch.ones(1, 1, 4, 4)
    valid[..., 2:] = 0
    out = fill_invalid(fake, real, valid)
    assert torch.equal(out[..., 2:], real[..., 2:]) and torch.equal(out[..., :2], fake[..., :2])
    out.sum().backward()
    assert (fake.grad[..., 2:] == 0).all() and (fake.grad[..., :2] == 1).all()
    assert fill_invalid(fake, real, None) is fake


@pytest.mark.parametrize("kind", ["hinge", "nonsaturating", "lsgan"])
def test_gan_losses_prefer_the_right_answer(kind):
    good_real, good_fake = torch.full((4,), 3.0), torch.full((4,), -3.0)
    assert d_loss(good_real, good_fake, kind) < d_loss(good_fake, good_real, kind)
    assert g_loss(torch.full((4,), 3.0), kind) < g_loss(torch.full((4,), -3.0), kind)


def test_gan_loss_values():
    r, f = torch.tensor([0.5]), torch.tensor([-0.25])
    assert d_loss(r, f, "hinge").item() == pytest.approx(0.5 + 0.75)
    assert g_loss(f, "hinge").item() == pytest.approx(0.25)
    assert d_loss(r, f, "lsgan").item() == pytest.approx(0.5 * 0.25 + 0.5 * 0.0625)
    with pytest.raises(ConfigError, match="hinge, nonsaturating, lsgan"):
        d_loss(r, f, "wgan")
