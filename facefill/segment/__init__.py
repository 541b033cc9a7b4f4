"""Person segmentation for ``replace-bg``, and the paper's saliency refinement.

Backends (``get_segmenter(name)``), each ``(H, W, 3) uint8 RGB (+ optional face mask) -> (H, W)
float32`` foreground probability in [0, 1], and ``.batch(images, face_masks)`` for a list:

* ``selfie`` (what ``auto`` picks): MediaPipe's selfie segmentation network (Apache-2.0),
  ported to PyTorch, weights in the package (``facefill/weights/selfie_segmentation.safetensors``).
  Offline, batched, CPU or GPU; equal to MediaPipe's own output to about 1e-7 (tested).
* ``grabcut`` (what ``auto`` falls back to when the shipped weights file is missing, never when
  ``$FACEFILL_SELFIE_SEGMENTER`` names one): OpenCV's GrabCut,
  seeded with the face mask as sure foreground, a body region below it as probable foreground,
  and the top and side borders as sure background. Needs no weights.
* ``mediapipe``: MediaPipe itself, when the optional ``mediapipe`` 0.10.21 is installed
  (legacy ``mp.solutions``; see docs/replace-bg.md).

:func:`refine` applies the paper's refinement: the union of the thresholded segmentation with
the inside of the outer contour of the gradient-magnitude saliency map that encloses the face.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol, Sequence

if TYPE_CHECKING:
    import numpy as np
    import torch

from facefill.options import SEGMENTERS as _SEGMENTER_CHOICES  # the one list, with what each means

#: the backends :func:`get_segmenter` knows (``replace-bg --segmenter``)
SEGMENTERS: tuple[str, ...] = _SEGMENTER_CHOICES.names
#: the help text for ``--segmenter``
SEGMENTER_HELP = _SEGMENTER_CHOICES.help("Person segmentation:")


class Segmenter(Protocol):
    name: str

    def __call__(self, image: np.ndarray, face_mask: np.ndarray | None = None) -> np.ndarray: ...

    def batch(self, images: Sequence[np.ndarray],
              face_masks: Sequence[np.ndarray | None] | None = None) -> list[np.ndarray]: ...


def get_segmenter(name: str = "auto", device: str | torch.device = "cpu") -> Segmenter:
    """A segmenter by name (one of :data:`SEGMENTERS`); ``device`` is used by ``selfie``."""
    from facefill.errors import FacefillError
    from facefill.segment.grabcut import GrabCutSegmenter
    from facefill.segment.selfie import MediapipeSegmenter, SelfieSegmenter, selfie_available

    if name == "auto":
        name = "selfie" if selfie_available() else "grabcut"
    if name == "selfie":
        return SelfieSegmenter(device=device)
    if name == "mediapipe":
        return MediapipeSegmenter()
    if name == "grabcut":
        return GrabCutSegmenter()
    raise FacefillError(f"unknown segmenter {name!r}; choose one of {', '.join(SEGMENTERS)}")


#: the backends and the refinement, imported on first use (``facefill.segment.X``), so that the
#: names above cost no torch, OpenCV or kornia import (the CLI reads them at start-up)
_LAZY = {"GrabCutSegmenter": "grabcut", "default_face_region": "grabcut", "enclosed": "refinement",
         "refine": "refinement", "salient_region": "refinement", "saliency": "refinement",
         "MediapipeSegmenter": "selfie", "SelfieSegmenter": "selfie", "mediapipe_available": "selfie",
         "mediapipe_resize": "selfie", "selfie_available": "selfie"}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["SEGMENTERS", "SEGMENTER_HELP", "GrabCutSegmenter", "MediapipeSegmenter", "Segmenter", "SelfieSegmenter",
           "default_face_region", "enclosed", "get_segmenter", "mediapipe_available", "mediapipe_resize", "refine",
           "salient_region", "saliency", "selfie_available"]
