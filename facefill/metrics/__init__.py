"""Metrics, each a small function over ``(B, 3, H, W)`` batches in [0, 1]: ``match``
(identity), ``ssim``, ``context`` (SSIM and L1 over the hallucinated region only), ``fid``
(Fréchet distance of Inception features, see ``inception``). The folder driver that pairs
generated with real images is :mod:`facefill.pipeline.evaluate`."""

# The names below are the one list of metrics, shared by ``facefill evaluate`` (which must not
# import torch at start-up, hence here) and :mod:`facefill.pipeline.evaluate`.

#: what ``evaluate --metrics`` accepts
METRICS = ("match", "ssim", "fid", "kid", "pieapp", "lpips", "seam-kid")
#: what ``evaluate`` computes when ``--metrics`` is not given
DEFAULT_METRICS = ("match", "ssim", "fid")
#: one value per set, from the Inception features (the rest are per image)
SET_METRICS = ("fid", "kid")
#: one value per set, from Inception features of patches on the face mask's border (facefill.metrics.seam)
SEAM_METRICS = ("seam-kid",)
#: what the summary holds beyond the per-image means: the set metrics and seam-kid's real floor
SUMMARY_ONLY = SET_METRICS + SEAM_METRICS + ("seam-kid-floor",)
#: per image, with ``--masks``: over the hallucinated region only
CONTEXT_METRICS = ("ssim_context", "l1_context")
#: the help text of ``evaluate --metrics``
METRICS_HELP = (f"Any of: {' '.join(METRICS)}, before or after the folders: --metrics fid kid ssim, -m fid -m kid or "
                f"--metrics fid,kid (default: {' '.join(DEFAULT_METRICS)}). fid and kid share one Inception pass. seam-kid: "
                "KID of patches on the face mask's border, unpaired, with the real photos' own floor (needs --masks or "
                "<name>.mask.png beside the generated images). A folder named like a metric right after the list is "
                "written ./fid.")
