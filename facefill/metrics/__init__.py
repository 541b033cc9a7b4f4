"""Quality metrics: match score, SSIM, FID, PieAPP, LPIPS (see ``facefill.metrics.evaluate``)."""
