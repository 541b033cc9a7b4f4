"""``match``: cosine similarity of dlib-ResNet descriptors of a generated and a real face."""

from __future__ import annotations

import numpy as np
import torch


def match_scores(embedder: torch.nn.Module, gen: torch.Tensor, real: torch.Tensor,
                 landmarks: list[np.ndarray | None]) -> list[float]:
    """Cosine similarity per pair, batched. ``gen``/``real``: ``(B, 3, H, W)`` in [0, 1];
    ``landmarks[i]``: the real image's (68, 2) landmarks, or None for dlib's template at the
    aligned eye positions. Both images of a pair are cut with the same chip. Values in [-1, 1]."""
    out = [0.0] * len(landmarks)
    with_lm = [i for i, lm in enumerate(landmarks) if lm is not None]
    without = [i for i, lm in enumerate(landmarks) if lm is None]
    for idx, lm in ((with_lm, True), (without, False)):
        if not idx:
            continue
        sel = torch.tensor(idx, device=gen.device)
        pair = torch.cat([gen[sel], real[sel]]) * 2 - 1
        marks = None
        if lm:
            marks = torch.from_numpy(np.stack([landmarks[i] for i in idx])).to(gen.device)
            marks = torch.cat([marks, marks])
        e = embedder(pair, marks)
        sims = torch.nn.functional.cosine_similarity(e[: len(idx)], e[len(idx):]).tolist()
        for i, v in zip(idx, sims):
            out[i] = v
    return out
