"""One training step: one discriminator step, one generator step, one EMA update.

The nouns are G (the generator being trained; possibly wrapped by DDP or ``torch.compile``), D
(the per-scale critics) and G_ema (an exponential moving average of G's weights: what samples,
validation and the released weights use). :func:`train_step` is the whole of it and can be
called on its own (tests, benchmarks); :mod:`facefill.train.loop` calls it once per batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from facefill.losses.objective import GeneratorLoss, discriminator_loss, scale_targets
from facefill.losses.pixel import fill_invalid
from facefill.runtime import autocast
from facefill.train.diffaug import diff_augment


@dataclass
class Nets:
    """What a step updates: G, D, G_ema and the two Adam optimisers."""

    G: nn.Module
    D: nn.Module
    G_ema: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer


def unwrap(m: nn.Module) -> nn.Module:
    """The plain module inside DDP and/or ``torch.compile`` wrappers."""
    while True:
        if hasattr(m, "_orig_mod"):
            m = m._orig_mod
        elif isinstance(m, nn.parallel.DistributedDataParallel):
            m = m.module
        else:
            return m


def ema_decay(decay: float, step: int) -> float:
    """The EMA decay for update number ``step`` (0-based), warmed up as
    ``min(decay, (1 + step) / (10 + step))`` so that G_ema follows G early on instead of holding
    on to the random initialisation."""
    return min(decay, (1 + step) / (10 + step))


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * model`` for every parameter; buffers are copied. One
    batched (``foreach``) call each, not one per tensor: on CUDA a few kernel launches instead of
    hundreds; on the CPU the same per-tensor arithmetic."""
    params = list(ema.parameters())
    if params:
        torch._foreach_lerp_(params, [p.detach() for p in model.parameters()], 1 - decay)
    buffers = list(ema.buffers())
    if buffers:
        torch._foreach_copy_(buffers, list(model.buffers()))


def train_step(nets: Nets, objective: GeneratorLoss, batch: dict[str, torch.Tensor], step: int, *,
               gan: str = "hinge", decay: float = 0.999, stage: int | None = None, alpha: float = 1.0,
               precision: str = "auto", diffaug: tuple[str, ...] = ()) -> dict[str, float]:
    """Train on one batch and return the loss values by hierarchical name.

    ``batch``: ``real (B, 3, S, S)`` in [-1, 1], ``masked`` (the same, outside the face set to
    -1), ``landmarks (B, 68, 2)`` pixels and, optionally, ``valid (B, 1, S, S)`` in [0, 1] and
    ``mask (B, 1, S, S)`` in [0, 1] (the face region; needed by the SSIM term).
    ``step``: how many steps were done before (it sets the EMA warm-up). ``stage``/``alpha``:
    the progressive regime's block count and fade-in (None/1: every block). The D step runs only
    when the adversarial weight is > 0. ``diffaug``: DiffAugment policies for every input of D,
    real and fake, in both steps (:mod:`facefill.train.diffaug`). Returns ``loss/D/adv/N``, ``loss/D/total``,
    ``loss/G/<term>/N`` and ``loss/G/total``.
    """
    G, D = nets.G, nets.D
    real, masked, valid = batch["real"], batch["masked"], batch.get("valid")

    def judge(images: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        return D(*diff_augment(images, masked, diffaug))

    dev = real.device
    with autocast(dev, precision):
        fakes = G(masked, stage=stage, alpha=alpha)
    fakes = {n: f.float() for n, f in fakes.items()}
    metrics: dict[str, float] = {}
    use_adv = objective.on("adv")
    if use_adv:
        reals, valids = scale_targets(real, valid, tuple(fakes))
        filled = {n: fill_invalid(f.detach(), reals[n], valids[n] if valids else None) for n, f in fakes.items()}
        nets.opt_d.zero_grad(set_to_none=True)
        with autocast(dev, precision):
            r_logits, f_logits = judge(reals), judge(filled)
        ld, terms = discriminator_loss(r_logits, f_logits, gan)
        ld.backward()
        nets.opt_d.step()
        metrics.update(terms)

    def critic(images: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        with autocast(dev, precision):
            return {n: v.float() for n, v in judge(images).items()}

    nets.opt_g.zero_grad(set_to_none=True)
    lg, terms = objective(fakes, real, batch["landmarks"], valid, critic if use_adv else None, batch.get("mask"))
    lg.backward()
    if use_adv:
        D.zero_grad(set_to_none=True)  # G's step must not leave gradients in D
    nets.opt_g.step()
    ema_update(nets.G_ema, unwrap(G), ema_decay(decay, step))
    metrics.update(terms)
    return metrics
