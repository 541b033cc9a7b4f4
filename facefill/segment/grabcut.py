"""GrabCut person segmentation (no weights): the offline fallback of ``replace-bg``."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np


def default_face_region(h: int, w: int) -> np.ndarray:
    """Where an aligned face sits when no face mask is given: a central ellipse."""
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, (w // 2, int(h * 0.52)), (int(w * 0.17), int(h * 0.24)), 0, 0, 360, 1, -1)
    return m


class GrabCutSegmenter:
    """OpenCV's GrabCut (graph-cut colour models), seeded with the face mask as sure foreground,
    a head-and-body region around and below it as probable foreground, and the top and side
    borders as sure background. Returns a hard 0/1 map."""

    name = "grabcut"

    def __init__(self, iterations: int = 5) -> None:
        self.iterations = iterations

    def __call__(self, image: np.ndarray, face_mask: np.ndarray | None = None) -> np.ndarray:
        h, w = image.shape[:2]
        face = (face_mask > 0.5).astype(np.uint8) if face_mask is not None else default_face_region(h, w)
        if not face.any():
            face = default_face_region(h, w)
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

    def batch(self, images: Sequence[np.ndarray],
              face_masks: Sequence[np.ndarray | None] | None = None) -> list[np.ndarray]:
        masks = face_masks if face_masks is not None else [None] * len(images)
        return [self(i, m) for i, m in zip(images, masks)]
