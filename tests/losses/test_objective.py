"""The per-scale generator objective: weights, switches, names, and the validity mask."""

import dataclasses as dc

import pytest
import torch

from facefill.config import LossConfig, get_preset
from facefill.losses import GeneratorLoss, discriminator_loss, scale_targets
from facefill.losses.identity import IdentityTerm, scale_landmarks
from facefill.losses.perceptual import PerceptualTerm
from facefill.models import build_discriminator

SCALES = (8, 16, 32, 64, 128)


class MeanAbs(torch.nn.Module):
    """A stand-in feature network whose loss depends on every pixel it sees."""

    def forward(self, fake, real, *rest):
        return (fake - real).abs().mean() + 0.25


class _Floats:
    """The objective with its terms read back as Python floats: GeneratorLoss returns detached
    0-d tensors (no host sync per term), and pytest.approx (9.2+) takes neither 0-d tensors nor
    dicts of them."""

    def __init__(self, loss):
        self.loss = loss

    def __call__(self, *args, **kw):
        total, terms = self.loss(*args, **kw)
        assert all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in terms.values())
        return total, {k: float(v) for k, v in terms.items()}


def _objective(**kw):
    return _Floats(GeneratorLoss(dc.replace(LossConfig(), **kw), identity=IdentityTerm(net=MeanAbs()),
                                 perceptual=PerceptualTerm(net=MeanAbs())))


def _inputs():
    torch.manual_seed(0)
    outs = {n: torch.rand(2, 3, n, n) * 2 - 1 for n in SCALES}
    real = torch.rand(2, 3, 128, 128) * 2 - 1
    return outs, real, torch.rand(2, 68, 2) * 127


def _critic():
    torch.manual_seed(1)
    D = build_discriminator(get_preset("tiny"))
    masked = torch.rand(2, 3, 128, 128) * 2 - 1
    return lambda images: D(images, masked)


@pytest.mark.parametrize("term", ["pixel", "adv", "id", "pc"])
def test_a_zero_weight_removes_its_term(term):
    outs, real, lm = _inputs()
    critic = _critic()
    full_total, full = _objective()(outs, real, lm, critic=critic)
    total, terms = _objective(**{term: 0.0})(outs, real, lm, critic=critic)
    assert not any(k.startswith(f"loss/G/{term}/") for k in terms)
    assert any(k.startswith(f"loss/G/{term}/") for k in full)
    removed = sum(v for k, v in full.items() if k.startswith(f"loss/G/{term}/"))
    weight = LossConfig().weight(term)
    assert total.item() == pytest.approx(full_total.item() - weight * removed, rel=1e-5, abs=1e-5)
    assert terms["loss/G/total"] == pytest.approx(total.item())


def test_names_are_hierarchical_and_feature_terms_start_at_32():
    outs, real, lm = _inputs()
    _, terms = _objective()(outs, real, lm, critic=_critic())
    assert {k for k in terms if k.startswith("loss/G/id/")} == {"loss/G/id/32", "loss/G/id/64", "loss/G/id/128"}
    assert {f"loss/G/pixel/{n}" for n in SCALES} | {f"loss/G/adv/{n}" for n in SCALES} <= set(terms)
    assert "loss/G/total" in terms


def test_pixel_kind_l2():
    outs, real, lm = _inputs()
    _, l1 = _objective()(outs, real, lm)
    _, l2 = _objective(pixel_kind="l2")(outs, real, lm)
    t = scale_targets(real, None, (64,))[0][64]
    assert l1["loss/G/pixel/64"] == pytest.approx((outs[64] - t).abs().mean().item(), rel=1e-5)
    assert l2["loss/G/pixel/64"] == pytest.approx(((outs[64] - t) ** 2).mean().item(), rel=1e-5)


def test_invalid_pixels_change_no_term():
    """A synthetic aligned photo whose right third is padding (invalid): whatever the generator
    draws there, no loss term (pixel, adversarial, identity, perceptual) changes."""
    outs, real, lm = _inputs()
    real[..., 86:] = -1  # the black padding alignment adds past the photo's edge
    valid = torch.ones(2, 1, 128, 128)
    valid[..., 86:] = 0
    _, valids = scale_targets(real, valid, SCALES)
    changed = {n: torch.where(valids[n] == 0, torch.rand_like(o) * 2 - 1, o) for n, o in outs.items()}
    assert all(not torch.equal(changed[n], outs[n]) for n in SCALES)
    critic = _critic()
    _, before = _objective()(outs, real, lm, valid, critic)
    _, after = _objective()(changed, real, lm, valid, critic)
    assert before == pytest.approx(after, rel=1e-6, abs=1e-7)
    # ...while without the validity mask the same change is seen
    _, blind = _objective()(changed, real, lm, None, critic)
    assert blind["loss/G/pixel/128"] != pytest.approx(before["loss/G/pixel/128"])


def test_discriminator_loss_names():
    logits = {n: torch.randn(2, 1, 4, 4) for n in (8, 16)}
    total, terms = _Floats(discriminator_loss)(logits, {n: -v for n, v in logits.items()}, "hinge")
    assert set(terms) == {"loss/D/adv/8", "loss/D/adv/16", "loss/D/total"}
    assert terms["loss/D/total"] == pytest.approx(total.item())


def test_missing_networks_for_switched_on_terms():
    with pytest.raises(ValueError, match="needed"):
        GeneratorLoss(LossConfig())
    GeneratorLoss(LossConfig(id=0.0, pc=0.0))


def test_scale_landmarks_keeps_pixel_centres():
    lm = torch.tensor([[[-0.5, 127.5], [63.5, 63.5]]])
    assert torch.allclose(scale_landmarks(lm, 128, 32), torch.tensor([[[-0.5, 31.5], [15.5, 15.5]]]))
