"""Person segmentation for ``replace-bg``, and the paper's saliency refinement.

Backends (``get_segmenter(name)``), each ``(H, W, 3) uint8 RGB (+ optional face mask) -> (H, W)
float32`` foreground probability in [0, 1], and ``.batch(images, face_masks)`` for a list:

* ``selfie`` (what ``auto`` picks): MediaPipe's selfie segmentation network (Apache-2.0),
  ported to PyTorch, weights in the package (``facefill/weights/selfie_segmentation.safetensors``).
  Offline, batched, CPU or GPU; equal to MediaPipe's own output to about 1e-7 (tested).
* ``grabcut`` (what ``auto`` falls back to when the weights file is missing): OpenCV's GrabCut,
  seeded with the face mask as sure foreground, a body region below it as probable foreground,
  and the top and side borders as sure background. Needs no weights.
* ``mediapipe``: MediaPipe itself, when the optional ``mediapipe`` 0.10.21 is installed
  (legacy ``mp.solutions``; see docs/replace-bg.md).

:func:`refine` applies the paper's refinement: the union of the thresholded segmentation with
the inside of the outer contour of the gradient-magnitude saliency map that encloses the face.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np
import torch

from facefill.errors import FacefillError
from facefill.segment.grabcut import GrabCutSegmenter, default_face_region
from facefill.segment.refine import enclosed, refine, salient_region, saliency
from facefill.segment.selfie import (MediapipeSegmenter, SelfieSegmenter, mediapipe_available, mediapipe_resize,
                                     selfie_available)

SEGMENTERS = ("auto", "selfie", "grabcut", "mediapipe")

#: the help text for ``--segmenter``
SEGMENTER_HELP = ("Person segmentation: auto (= selfie; grabcut if its weights file is missing), selfie "
                  "(MediaPipe's selfie network ported to PyTorch, shipped with facefill, offline), grabcut "
                  "(OpenCV GrabCut seeded from the face mask, no weights), mediapipe (MediaPipe itself; needs "
                  "mediapipe 0.10.21 installed).")


class Segmenter(Protocol):
    name: str

    def __call__(self, image: np.ndarray, face_mask: np.ndarray | None = None) -> np.ndarray: ...

    def batch(self, images: Sequence[np.ndarray],
              face_masks: Sequence[np.ndarray | None] | None = None) -> list[np.ndarray]: ...


def get_segmenter(name: str = "auto", device: str | torch.device = "cpu") -> Segmenter:
    """A segmenter by name (one of :data:`SEGMENTERS`); ``device`` is used by ``selfie``."""
    if name == "auto":
        name = "selfie" if selfie_available() else "grabcut"
    if name == "selfie":
        return SelfieSegmenter(device=device)
    if name == "mediapipe":
        return MediapipeSegmenter()
    if name == "grabcut":
        return GrabCutSegmenter()
    raise FacefillError(f"unknown segmenter {name!r}; choose one of {', '.join(SEGMENTERS)}")


__all__ = ["SEGMENTERS", "SEGMENTER_HELP", "GrabCutSegmenter", "MediapipeSegmenter", "Segmenter", "SelfieSegmenter",
           "default_face_region", "enclosed", "get_segmenter", "mediapipe_available", "mediapipe_resize", "refine",
           "salient_region", "saliency", "selfie_available"]
