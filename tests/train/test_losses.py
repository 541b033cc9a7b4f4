import dataclasses as dc

import pytest
import torch

from facefill.config import LossConfig
from facefill.errors import ConfigError
from facefill.train.losses import GeneratorObjective, d_loss, g_adv_loss, scale_landmarks


class Const(torch.nn.Module):
    """A stand-in network whose loss is a known function of its inputs."""

    def forward(self, fake, real, *rest):
        return (fake - real).abs().mean() * 0 + 0.25 + fake.mean() * 0


def _objective(**kw):
    return GeneratorObjective(dc.replace(LossConfig(), **kw), identity=Const(), perceptual=Const())


def _inputs():
    torch.manual_seed(0)
    outs = {n: torch.rand(2, 3, n, n) * 2 - 1 for n in (8, 16, 32, 64, 128)}
    real = torch.rand(2, 3, 128, 128) * 2 - 1
    logits = {n: torch.randn(2, 1, 4, 4) for n in outs}
    return outs, real, torch.rand(2, 68, 2) * 127, logits


@pytest.mark.parametrize("term", ["pixel", "adv", "id", "pc"])
def test_every_switch_removes_its_term(term):
    outs, real, lm, logits = _inputs()
    full_total, full = _objective()(outs, real, lm, logits)
    total, terms = _objective(**{f"use_{term}": False})(outs, real, lm, logits)
    assert not any(k.startswith(term + "@") for k in terms)
    assert any(k.startswith(term + "@") for k in full)
    weight = getattr(LossConfig(), f"w_{term}")
    removed = sum(v for k, v in full.items() if k.startswith(term + "@"))
    assert total.item() == pytest.approx(full_total.item() - weight * removed, rel=1e-5, abs=1e-5)
    # a zero weight removes it too
    _, terms0 = _objective(**{f"w_{term}": 0.0})(outs, real, lm, logits)
    assert not any(k.startswith(term + "@") for k in terms0)


def test_feature_terms_only_at_large_scales_and_pixel_l2():
    outs, real, lm, logits = _inputs()
    _, terms = _objective()(outs, real, lm, logits)
    assert {k for k in terms if k.startswith("id@")} == {"id@32", "id@64", "id@128"}
    _, l1 = _objective()(outs, real, lm)
    _, l2 = _objective(pixel="l2")(outs, real, lm)
    from facefill.models.generator import pyramid

    t = pyramid(real, (64,))[64]
    assert l1["pixel@64"] == pytest.approx((outs[64] - t).abs().mean().item(), rel=1e-5)
    assert l2["pixel@64"] == pytest.approx(((outs[64] - t) ** 2).mean().item(), rel=1e-5)


@pytest.mark.parametrize("kind", ["hinge", "nonsaturating", "lsgan"])
def test_gan_losses_prefer_the_right_answer(kind):
    good_real, good_fake = torch.full((4,), 3.0), torch.full((4,), -3.0)
    assert d_loss(good_real, good_fake, kind) < d_loss(good_fake, good_real, kind)
    assert g_adv_loss(torch.full((4,), 3.0), kind) < g_adv_loss(torch.full((4,), -3.0), kind)


def test_bad_names():
    with pytest.raises(ConfigError, match="hinge"):
        _objective(gan="wgan")
    with pytest.raises(ConfigError, match="l1 or l2"):
        _objective(pixel="l3")


def test_scale_landmarks_keeps_pixel_centres():
    lm = torch.tensor([[[-0.5, 127.5], [63.5, 63.5]]])
    assert torch.allclose(scale_landmarks(lm, 128, 32), torch.tensor([[[-0.5, 31.5], [15.5, 15.5]]]))
