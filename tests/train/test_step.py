"""One training step on its own: D step, G step, EMA."""

import copy
import dataclasses as dc

import pytest
import torch

from facefill.config import get_preset
from facefill.losses import build_generator_loss
from facefill.models import build_discriminator, build_generator
from facefill.train.step import Nets, ema_decay, train_step


def _setup(**loss):
    cfg = get_preset("tiny")
    cfg = dc.replace(cfg, loss=dc.replace(cfg.loss, id=0.0, pc=0.0, **loss))
    torch.manual_seed(0)
    G, D = build_generator(cfg), build_discriminator(cfg)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    nets = Nets(G, D, G_ema, torch.optim.Adam(G.parameters(), lr=1e-3), torch.optim.Adam(D.parameters(), lr=1e-3))
    real = torch.rand(2, 3, 128, 128) * 2 - 1
    mask = torch.zeros(2, 1, 128, 128)
    mask[..., 32:96, 40:88] = 1
    batch = {"real": real, "masked": real * mask - (1 - mask), "landmarks": torch.rand(2, 68, 2) * 60 + 34,
             "valid": torch.ones(2, 1, 128, 128)}
    return cfg, nets, build_generator_loss(cfg), batch


def _params(m):
    return {k: v.detach().clone() for k, v in m.named_parameters()}


def test_one_step_updates_G_and_D_and_G_ema_follows_the_ema_formula():
    cfg, nets, objective, batch = _setup()
    g0, d0, e0 = _params(nets.G), _params(nets.D), _params(nets.G_ema)
    metrics = train_step(nets, objective, batch, step=5, gan=cfg.loss.gan, decay=0.999)
    g1, d1, e1 = _params(nets.G), _params(nets.D), _params(nets.G_ema)
    assert all(not torch.equal(g0[k], g1[k]) for k in g0), "every G parameter moves"
    # every D weight moves (the last biases get exactly zero gradient from the hinge loss while
    # every logit is inside (-1, 1): -mean(1) on the real side cancels +mean(1) on the fake side)
    assert all(not torch.equal(d0[k], d1[k]) for k in d0 if d0[k].dim() > 1), "every D weight moves"
    decay = ema_decay(0.999, 5)
    assert decay == pytest.approx(6 / 15)
    for k in e0:
        torch.testing.assert_close(e1[k], decay * e0[k] + (1 - decay) * g1[k], rtol=1e-5, atol=1e-7)
    assert all(p.grad is None for p in nets.D.parameters()), "G's step leaves no gradient in D"
    scales = (8, 16, 32, 64, 128)
    want = ({f"loss/D/adv/{n}" for n in scales} | {f"loss/G/pixel/{n}" for n in scales}
            | {f"loss/G/adv/{n}" for n in scales} | {"loss/D/total", "loss/G/total"})
    assert set(metrics) == want
    # no host sync per step (issue 26): the terms stay on the device, detached, 0-dim
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 and not v.requires_grad for v in metrics.values())


def test_without_the_adversarial_term_D_is_left_alone():
    cfg, nets, objective, batch = _setup(adv=0.0)
    d0 = _params(nets.D)
    metrics = train_step(nets, objective, batch, step=0)
    assert all(torch.equal(d0[k], v) for k, v in _params(nets.D).items())
    assert not any(k.startswith("loss/D") for k in metrics)


def test_progressive_stage_trains_only_the_grown_blocks():
    cfg, nets, objective, batch = _setup()
    g0 = _params(nets.G)
    metrics = train_step(nets, objective, batch, step=0, stage=1, alpha=0.5)
    moved = {k.split(".")[1] for k, v in _params(nets.G).items() if not torch.equal(g0[k], v)}
    assert moved == {"b8", "b16", "up16"}
    assert {k for k in metrics if k.startswith("loss/G/pixel")} == {"loss/G/pixel/8", "loss/G/pixel/16"}
