"""The SSIM term: what it scores (the kept-face composite), where its gradient goes, its scale."""

import dataclasses as dc

import piq
import pytest
import torch

from facefill.config import LossConfig
from facefill.errors import ConfigError
from facefill.losses import GeneratorLoss
from facefill.losses.structure import keep_face, structure_loss
from facefill.metrics.ssim import SSIM_SETTINGS


def _pair(n=64):
    torch.manual_seed(0)
    real = torch.rand(2, 3, n, n) * 2 - 1
    fake = torch.rand(2, 3, n, n) * 2 - 1
    mask = torch.zeros(2, 1, n, n)
    mask[..., n // 4: 3 * n // 4, n // 4: 3 * n // 4] = 1
    return fake, real, mask


def test_zero_for_the_real_context_and_equal_to_one_minus_piq_ssim_of_the_composite():
    fake, real, mask = _pair()
    assert structure_loss(real, real, mask).item() == pytest.approx(0.0, abs=1e-6)
    composite = mask * real + (1 - mask) * fake  # written out, not through keep_face
    expected = 1 - piq.ssim((composite + 1) / 2, (real + 1) / 2, **SSIM_SETTINGS)
    assert structure_loss(fake, real, mask).item() == pytest.approx(expected.item(), rel=1e-6)
    assert torch.equal(keep_face(fake, real, mask), composite)


def test_only_context_pixels_get_a_gradient():
    fake, real, mask = _pair()
    fake.requires_grad_(True)
    structure_loss(fake, real, mask).backward()
    inside = mask.expand_as(fake) == 1
    assert fake.grad[inside].abs().max() == 0
    assert fake.grad[~inside].abs().mean() > 0


def test_falls_as_the_context_approaches_the_real_one():
    fake, real, mask = _pair()
    losses = [structure_loss(real + t * (fake - real), real, mask).item() for t in (1.0, 0.5, 0.1)]
    assert losses[0] > losses[1] > losses[2] > 0


def test_refuses_images_smaller_than_the_window():
    fake, real, mask = _pair(8)
    with pytest.raises(ValueError, match="11 px"):
        structure_loss(fake, real, mask)


def test_objective_adds_it_from_feature_min_scale_and_needs_the_mask():
    torch.manual_seed(0)
    scales = (8, 16, 32, 64, 128)
    fakes = {n: torch.rand(2, 3, n, n) * 2 - 1 for n in scales}
    real = torch.rand(2, 3, 128, 128) * 2 - 1
    mask = torch.zeros(2, 1, 128, 128)
    mask[..., 32:96, 32:96] = 1
    lm = torch.rand(2, 68, 2) * 127
    cfg = dc.replace(LossConfig(), id=0.0, pc=0.0, ssim=2.0, feature_min_scale=64)
    total, terms = GeneratorLoss(cfg)(fakes, real, lm, mask=mask)
    terms = {k: float(v) for k, v in terms.items()}  # 0-d tensors: pytest.approx (9.2+) takes floats
    assert {k for k in terms if k.startswith("loss/G/ssim/")} == {"loss/G/ssim/64", "loss/G/ssim/128"}
    _, without = GeneratorLoss(dc.replace(cfg, ssim=0.0))(fakes, real, lm, mask=mask)
    without = {k: float(v) for k, v in without.items()}
    assert total.item() == pytest.approx(without["loss/G/total"] + 2.0 * (terms["loss/G/ssim/64"]
                                         + terms["loss/G/ssim/128"]), rel=1e-5)
    with pytest.raises(ValueError, match="mask"):
        GeneratorLoss(cfg)(fakes, real, lm)


def test_config_refuses_it_below_the_window():
    with pytest.raises(ConfigError, match="feature_min_scale >= 16"):
        LossConfig(ssim=1.0, feature_min_scale=8)
    assert LossConfig().ssim == 0.0  # off by default: not in the paper
