"""Metrics, each a small function over ``(B, 3, H, W)`` batches in [0, 1]: ``match``
(identity), ``ssim``, ``context`` (SSIM and L1 over the hallucinated region only), ``fid``
(Fréchet distance of Inception features, see ``inception``). The folder driver that pairs
generated with real images is :mod:`facefill.pipeline.evaluate`."""

# The names below are the one list of metrics, shared by ``facefill evaluate`` (which must not
# import torch at start-up, hence here) and :mod:`facefill.pipeline.evaluate`.

#: what ``evaluate --metrics`` accepts
METRICS = ("match", "ssim", "fid", "kid", "pieapp", "lpips")
#: what ``evaluate`` computes when ``--metrics`` is not given
DEFAULT_METRICS = ("match", "ssim", "fid")
#: one value per set, from the Inception features (the rest are per image)
SET_METRICS = ("fid", "kid")
#: per image, with ``--masks``: over the hallucinated region only
CONTEXT_METRICS = ("ssim_context", "l1_context")
#: the help text of ``evaluate --metrics``
METRICS_HELP = (f"Any of: {' '.join(METRICS)}, before or after the folders: --metrics fid kid ssim, -m fid -m kid or "
                f"--metrics fid,kid (default: {' '.join(DEFAULT_METRICS)}). fid and kid share one Inception pass. A "
                "folder named like a metric right after the list is written ./fid.")
