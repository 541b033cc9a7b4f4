"""The paper's refinement of a person mask: union with the inside of the salient outer contour."""

from __future__ import annotations

import cv2
import numpy as np
from kornia.filters import gaussian_blur2d, sobel

from facefill.data.tensors import from_uint8
from facefill.segment.grabcut import default_face_region


def saliency(image: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Gradient-magnitude saliency ``(H, W)`` in [0, 1] of an ``(H, W, 3) uint8`` image: Sobel
    magnitude of the blurred grey image (mean of the channels), / max."""
    x = from_uint8(image, signed=False).mean(1, keepdim=True)
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
    face = face_mask if face_mask is not None else default_face_region(h, w)
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
