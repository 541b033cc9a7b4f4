"""DiffAugment of the discriminator's inputs: one draw per sample shared by every scale and the
condition, differentiable, off when the policy is empty, and wired into the training step."""

import copy
import dataclasses as dc

import pytest
import torch
import torch.nn.functional as F

from facefill.config import get_preset, merge
from facefill.errors import ConfigError
from facefill.losses import build_generator_loss
from facefill.models import build_discriminator, build_generator
from facefill.train.diffaug import POLICIES, diff_augment
from facefill.train.step import Nets, train_step


def _pyramid(x128):
    return {n: F.interpolate(x128, size=(n, n), mode="area") for n in (32, 64, 128)}


def _smooth(b=4, seed=0):
    # a smooth image, so that resampling at different scales agrees closely
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(b, 3, 8, 8, generator=g) * 2 - 1, size=(128, 128), mode="bilinear",
                         align_corners=False)


def test_empty_policy_returns_the_inputs_untouched():
    x = _smooth()
    imgs = _pyramid(x)
    out, cond = diff_augment(imgs, x, ())
    assert out is imgs and cond is x


@pytest.mark.parametrize("policy", [("color",), ("translation",), ("cutout",), POLICIES])
def test_one_draw_per_sample_for_every_scale_and_the_condition(policy):
    torch.manual_seed(1)
    x = _smooth()
    out, cond = diff_augment(_pyramid(x), x.clone(), policy)
    # the condition at full size got exactly the image's transform
    assert torch.allclose(cond, out[128], atol=1e-6)
    # the smaller scales got the same transform: they match the augmented 128 px image downsampled
    for n in (32, 64):
        err = (F.interpolate(out[128], size=(n, n), mode="area") - out[n]).abs().mean()
        assert err < 0.03, (policy, n, float(err))
    # and the transform changed the images, differently per sample
    assert not torch.allclose(out[128], x, atol=1e-3)
    d = out[128] - x
    assert not torch.allclose(d[0], d[1], atol=1e-3)


def test_translation_shifts_content_by_at_most_an_eighth_and_cutout_blanks_a_quarter():
    torch.manual_seed(2)
    x = torch.zeros(64, 3, 128, 128)
    x[:, :, 60:68, 60:68] = 1  # a bright dot in the middle
    out, _ = diff_augment({128: x}, x, ("translation",))
    ys, xs = torch.nonzero(out[128][:, 0] > 0.5, as_tuple=True)[1:]
    assert ys.numel() and (ys - 64).abs().max() <= 16 + 4 and (xs - 64).abs().max() <= 16 + 4
    ones = torch.ones(64, 3, 128, 128)
    cut, _ = diff_augment({128: ones}, ones, ("cutout",))
    zero_fraction = (cut[128] == 0).float().mean(dim=(1, 2, 3))
    # a 64x64 square, cropped where it runs past the border
    assert zero_fraction.max() == pytest.approx(0.25, abs=0.01) and zero_fraction.min() > 0.0625 - 0.01


def test_gradients_flow_through_every_policy():
    fake = _smooth().requires_grad_(True)
    out, _ = diff_augment(_pyramid(fake), fake.detach(), POLICIES)
    sum(v.square().sum() for v in out.values()).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def test_config_refuses_unknown_and_repeated_policies():
    with pytest.raises(ConfigError, match="colour"):
        merge(get_preset("tiny"), {"discriminator": {"diffaug": ["colour"]}})
    with pytest.raises(ConfigError, match="twice"):
        merge(get_preset("tiny"), {"discriminator": {"diffaug": ["cutout", "cutout"]}})


class _Recorder(torch.nn.Module):
    """Wraps D and keeps the images it was shown."""

    def __init__(self, D):
        super().__init__()
        self.D, self.seen = D, []

    def forward(self, images, masked):
        self.seen.append((images[128].detach().clone(), masked.detach().clone()))
        return self.D(images, masked)


@pytest.mark.parametrize("policy", [(), ("cutout",)])
def test_the_training_step_shows_D_augmented_images_only_when_asked(policy):
    cfg = get_preset("tiny")
    cfg = dc.replace(cfg, loss=dc.replace(cfg.loss, id=0.0, pc=0.0))
    torch.manual_seed(0)
    G, D = build_generator(cfg), _Recorder(build_discriminator(cfg))
    nets = Nets(G, D, copy.deepcopy(G).requires_grad_(False), torch.optim.Adam(G.parameters()),
                torch.optim.Adam(D.parameters()))
    real = torch.rand(2, 3, 128, 128) * 2 - 1
    mask = torch.zeros(2, 1, 128, 128)
    mask[..., 32:96, 40:88] = 1
    masked = real * mask - (1 - mask)
    batch = {"real": real, "masked": masked, "landmarks": torch.rand(2, 68, 2) * 60 + 34}
    train_step(nets, build_generator_loss(cfg), batch, step=0, diffaug=policy)
    assert len(D.seen) == 3  # D step: real and fake; G step: fake
    shown_real, shown_cond = D.seen[0]
    if policy:
        holes = (shown_real == 0).all(dim=1)  # cutout: the same hole in image and condition
        assert holes.float().mean() > 0.05 and ((shown_cond == 0).all(dim=1) == holes).all()
    else:
        assert torch.equal(shown_real, real) and torch.equal(shown_cond, masked)
