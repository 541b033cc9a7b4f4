"""Person segmentation for ``replace-bg``, and the paper's saliency refinement.

Backends (``get_segmenter(name)``), each ``(H, W, 3) uint8 RGB (+ optional face mask) -> (H, W)
float32`` foreground probability in [0, 1]:

* ``mediapipe``: MediaPipe's selfie (person) segmenter, whose model ships inside the
  ``mediapipe`` 0.10.21 wheel (legacy ``mp.solutions``). Optional: see docs/replace-bg.md.
* ``grabcut``: OpenCV's GrabCut (graph-cut colour models), seeded with the face mask as sure
  foreground, a body region below it as probable foreground, and the top and side borders as
  sure background. Needs no weights; the default when MediaPipe is not installed.

:func:`refine` applies the paper's refinement: the union of the thresholded segmentation with
the inside of the outer contour of the gradient-magnitude saliency map that encloses the face.
"""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np
import torch
from kornia.filters import gaussian_blur2d, sobel

from facefill.errors import FacefillError
from facefill.info import Component, register

SEGMENTERS = ("auto", "mediapipe", "grabcut")


class Segmenter(Protocol):
    name: str

    def __call__(self, image: np.ndarray, face_mask: np.ndarray | None = None) -> np.ndarray: ...


def _default_face_region(h: int, w: int) -> np.ndarray:
    """Where an aligned face sits when no face mask is given: a central ellipse."""
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, (w // 2, int(h * 0.52)), (int(w * 0.17), int(h * 0.24)), 0, 0, 360, 1, -1)
    return m


class GrabCutSegmenter:
    name = "grabcut"

    def __init__(self, iterations: int = 5) -> None:
        self.iterations = iterations

    def __call__(self, image: np.ndarray, face_mask: np.ndarray | None = None) -> np.ndarray:
        h, w = image.shape[:2]
        face = (face_mask > 0.5).astype(np.uint8) if face_mask is not None else _default_face_region(h, w)
        if not face.any():
            face = _default_face_region(h, w)
        ys, xs = np.nonzero(face)
        x0, x1, y0 = xs.min(), xs.max(), ys.min()
        fw = x1 - x0 + 1
        gc = np.full((h, w), cv2.GC_BGD, np.uint8)
        # the head and body: from above the face (hair) down to the bottom, wider than the face
        top = max(0, int(y0 - 0.6 * fw))
        gc[top:, max(0, int(x0 - 0.5 * fw)):min(w, int(x1 + 0.5 * fw) + 1)] = cv2.GC_PR_FGD
        body_top = min(h - 1, int(ys.max()))
        gc[body_top:, max(0, int(x0 - 1.2 * fw)):min(w, int(x1 + 1.2 * fw) + 1)] = cv2.GC_PR_FGD
        border = max(1, h // 64)
        gc[:border] = cv2.GC_BGD
        gc[:, :border] = cv2.GC_BGD
        gc[:, -border:] = cv2.GC_BGD
        gc[face > 0] = cv2.GC_FGD
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.grabCut(np.ascontiguousarray(image[..., ::-1]), gc, None, bgd, fgd, self.iterations, cv2.GC_INIT_WITH_MASK)
        return np.isin(gc, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.float32)


class MediapipeSegmenter:
    name = "mediapipe"

    def __init__(self, model_selection: int = 0) -> None:
        try:
            import mediapipe as mp

            solution = mp.solutions.selfie_segmentation
        except (ImportError, AttributeError):
            raise FacefillError("the mediapipe segmenter needs mediapipe 0.10.21 (its wheel ships the model); "
                                "see docs/replace-bg.md, or use --segmenter grabcut") from None
        self._seg = solution.SelfieSegmentation(model_selection=model_selection)

    def __call__(self, image: np.ndarray, face_mask: np.ndarray | None = None) -> np.ndarray:
        result = self._seg.process(np.ascontiguousarray(image))
        if result.segmentation_mask is None:
            return np.zeros(image.shape[:2], np.float32)
        return result.segmentation_mask.astype(np.float32)


def mediapipe_available() -> bool:
    try:
        import mediapipe as mp

        return hasattr(mp, "solutions") and hasattr(mp.solutions, "selfie_segmentation")
    except ImportError:
        return False


def get_segmenter(name: str = "auto") -> Segmenter:
    if name == "auto":
        name = "mediapipe" if mediapipe_available() else "grabcut"
    if name == "mediapipe":
        return MediapipeSegmenter()
    if name == "grabcut":
        return GrabCutSegmenter()
    raise FacefillError(f"unknown segmenter {name!r}; choose one of {', '.join(SEGMENTERS)}")


@register
def _segmenter_component() -> Component:
    ok = mediapipe_available()
    return Component("mediapipe selfie segmenter (replace-bg)", "backend", ok,
                     "found" if ok else "not installed; replace-bg uses grabcut (see docs/replace-bg.md)")


def saliency(image: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Gradient-magnitude saliency in [0, 1]: Sobel magnitude of the blurred grey image, / max."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float().mean(1, keepdim=True) / 255
    k = 2 * int(3 * sigma) + 1
    g = sobel(gaussian_blur2d(x, (k, k), (sigma, sigma)))[0, 0].numpy()
    return g / max(float(g.max()), 1e-8)


def enclosed(barrier: np.ndarray) -> np.ndarray:
    """uint8 0/1: pixels that cannot be reached from the top or side borders without crossing
    ``barrier`` (the bottom is open: a portrait's body leaves the frame there). Barrier pixels
    count as inside."""
    h, w = barrier.shape
    outside = np.zeros((h + 2, w + 2), np.uint8)
    free = (~barrier.astype(bool)).astype(np.uint8)
    for y, x in [(0, i) for i in range(w)] + [(i, 0) for i in range(h)] + [(i, w - 1) for i in range(h)]:
        if free[y, x] and not outside[y + 1, x + 1]:
            cv2.floodFill(free, outside, (x, y), 2, flags=4 | cv2.FLOODFILL_MASK_ONLY | (1 << 8))
    return (outside[1:-1, 1:-1] == 0).astype(np.uint8)


def salient_region(image: np.ndarray, face_mask: np.ndarray | None = None, threshold: float | None = None) -> np.ndarray:
    """Inside of the outer contour of the salient edges that encloses the face (uint8 0/1).

    Edges are the saliency map above ``threshold`` (default: Otsu's), closed morphologically.
    The inside of their outer contour is every pixel that cannot be reached from the top or
    side borders without crossing an edge (the bottom is open: a portrait's body leaves the
    frame there); the connected part holding the face centre is returned.
    """
    s = saliency(image)
    s8 = (s * 255).astype(np.uint8)
    if threshold is None:
        _, edges = cv2.threshold(s8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    else:
        edges = ((s >= threshold) * 255).astype(np.uint8)
    k = max(3, image.shape[0] // 20) | 1
    edges = cv2.morphologyEx(edges, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    # of the inside of the outer contour, the connected part that holds the face centre
    h, w = edges.shape
    inside = enclosed(edges > 0)
    n, labels = cv2.connectedComponents(inside, connectivity=8)
    out = np.zeros((h, w), np.uint8)
    if n <= 1:
        return out
    face = face_mask if face_mask is not None else _default_face_region(h, w)
    ys, xs = np.nonzero(face > 0.5)
    cy, cx = (int(ys.mean()), int(xs.mean())) if len(xs) else (h // 2, w // 2)
    label = labels[cy, cx]
    if label == 0:  # the face centre is not enclosed: take the largest enclosed part
        label = 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
    out[labels == label] = 1
    return out


def refine(segmentation: np.ndarray, image: np.ndarray, face_mask: np.ndarray | None = None,
           threshold: float = 0.5, use_saliency: bool = True) -> np.ndarray:
    """Foreground (uint8 0/1) = thresholded segmentation | salient region | face mask, with
    enclosed holes filled (see :func:`enclosed`)."""
    fg = (segmentation >= threshold).astype(np.uint8)
    if use_saliency:
        fg |= salient_region(image, face_mask)
    if face_mask is not None:
        fg |= (face_mask > 0.5).astype(np.uint8)
    return enclosed(fg > 0) if use_saliency else fg
