"""Metrics, each a small function over ``(B, 3, H, W)`` batches in [0, 1]: ``match``
(identity), ``ssim``, ``context`` (SSIM and L1 over the hallucinated region only), ``fid``
(Fréchet distance of Inception features, see ``inception``). The folder driver that pairs
generated with real images is :mod:`facefill.pipeline.evaluate`."""
