"""The training losses of the paper, one small module per term, and the per-scale objectives.

* :mod:`~facefill.losses.pixel`: L1 / L2 to the real photo, over valid pixels only.
* :mod:`~facefill.losses.adversarial`: hinge, non-saturating and least-squares GAN losses.
* :mod:`~facefill.losses.identity`: dlib-ResNet descriptor distance of the face chips.
* :mod:`~facefill.losses.perceptual`: scale-normalised L1 of backbone features.
* :mod:`~facefill.losses.objective`: every term at every scale, weighted by ``[loss]``, with
  hierarchical names (``loss/G/pixel/64``, ``loss/D/adv/64``, ``loss/G/total``).

Images are ``(B, 3, N, N)`` in [-1, 1]; validity masks ``(B, 1, N, N)`` in [0, 1] (1 = the pixel
comes from the photo, 0 = padding added by alignment).
"""

from facefill.losses.adversarial import d_loss, g_loss
from facefill.losses.objective import GeneratorLoss, build_generator_loss, discriminator_loss, scale_targets
from facefill.losses.pixel import fill_invalid, pixel_loss

__all__ = ["GeneratorLoss", "build_generator_loss", "d_loss", "discriminator_loss", "fill_invalid", "g_loss",
           "pixel_loss", "scale_targets"]
