"""What donor choice compares, for query faces and donors alike (:mod:`facefill.donor.select`).

* :func:`describe`: the dlib face descriptor of the *face-masked* photo (gender, age, look);
* :func:`face_stats`: CIE Lab mean and std of the face region (skin colour);
* :func:`pose_from_landmarks`: yaw and pitch proxies;
* :func:`silhouettes`: the person's outline at 16x16 (the selfie segmentation network);
* :func:`signatures`: the photo at 8x8 in Lab (hair colour, clothes, background);
* :func:`padding_share`: how much of the context lies outside the photo;
* :func:`gender_age`: p_male and age (dlib-models' networks), on the unmasked crop where there
  is one, else on the masked face with its context refilled.

The descriptor and the silhouette run on the device of the network given; the rest is numpy and
OpenCV on the CPU (see :mod:`facefill.donor` for every step's device).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch


def describe(images: np.ndarray, landmarks: np.ndarray, masks: np.ndarray, embedder) -> np.ndarray:
    """Face descriptors of face-masked photos: ``images (B, S, S, 3) uint8``, ``landmarks
    (B, 68, 2)``, ``masks (B, S, S)`` in [0, 1] (1 = face) -> ``(B, 128) float32``. The context is
    blanked before the descriptor is taken, so a query (which has no context) and a donor are
    described alike. Runs on the device of ``embedder`` (a :class:`facefill.models.embedders.FaceEmbedder`)."""
    from facefill.data.tensors import from_uint8, masked_input, masks_from_numpy

    device = _device_of(embedder)
    x = masked_input(from_uint8(images, device), masks_from_numpy(masks, device))
    with torch.no_grad():
        lm = torch.as_tensor(np.asarray(landmarks), dtype=torch.float32).to(device)
        return embedder(x, lm).cpu().numpy().astype(np.float32)


def gender_age(images: np.ndarray, landmarks: np.ndarray, masks: np.ndarray | None = None,
               device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """``(p_male (B,) float32 in [0, 1], age (B,) float32 in years)`` of aligned faces ``images
    (B, S, S, 3) uint8`` with ``landmarks (B, 68, 2)``. ``masks`` ``(B, S, S)`` (nonzero = face)
    for faces that were masked: their context is refilled with the face's mean colour first (a
    black surround reads "female"; :func:`facefill.models.age_gender.estimate`). Give unmasked
    crops without ``masks`` wherever they exist. The networks run batched (3x faster than one
    face at a time on a CPU); batching moves p_male by about 1e-7 and age by 1e-5 years, so both
    are rounded (p_male to 1e-4, age to 0.01 years) to keep a face's result off the batch it came in."""
    from facefill.models.age_gender import estimate

    p, age = estimate(np.ascontiguousarray(images), np.asarray(landmarks, np.float32), device=device, masks=masks)
    return np.round(p, 4).astype(np.float32), np.round(age, 2).astype(np.float32)


def _device_of(module) -> torch.device:
    try:
        return next(module.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")


def face_stats(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``(B, S, S, 3) uint8`` + ``(B, S, S)`` face masks -> ``(B, 6)`` Lab mean and std over the face."""
    out = np.zeros((len(images), 6), np.float32)
    for i, (im, m) in enumerate(zip(images, masks)):
        lab = cv2.cvtColor(im.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[m > 0.5]
        if len(lab):
            out[i, :3], out[i, 3:] = lab.mean(0), lab.std(0)
    return out


def pose_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """``(..., 68, 2)`` aligned landmarks -> ``(..., 2)``: yaw proxy (nose tip's horizontal offset
    from the jaw's midpoint, over jaw width; about -0.5 .. 0.5) and pitch proxy (nose tip's height
    between eye line and chin; about 0.3 .. 0.7)."""
    lm = np.asarray(landmarks, np.float64)
    jaw_l, jaw_r, nose, chin = lm[..., 0, :], lm[..., 16, :], lm[..., 30, :], lm[..., 8, :]
    eyes_y = lm[..., 36:48, 1].mean(-1)
    width = np.maximum(np.abs(jaw_r[..., 0] - jaw_l[..., 0]), 1.0)
    yaw = (nose[..., 0] - (jaw_l[..., 0] + jaw_r[..., 0]) / 2) / width
    pitch = (nose[..., 1] - eyes_y) / np.maximum(chin[..., 1] - eyes_y, 1.0)
    return np.stack([yaw, pitch], -1).astype(np.float32)


def silhouettes(images: np.ndarray, segmenter) -> np.ndarray:
    """``(B, S, S, 3) uint8`` photos -> ``(B, 256) float32``: person probability at 16x16
    (``segmenter``: :class:`facefill.segment.selfie.SelfieSegmenter`, on its own device)."""
    probs = segmenter.predict(torch.from_numpy(np.ascontiguousarray(images))).cpu().numpy()
    return np.stack([cv2.resize(p, (16, 16), interpolation=cv2.INTER_AREA).reshape(-1) for p in probs]).astype(np.float32)


def signatures(images: np.ndarray) -> np.ndarray:
    """``(B, S, S, 3) uint8`` -> ``(B, 192) float32``: each photo at 8x8 in CIE Lab."""
    small = [cv2.resize(im, (8, 8), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0 for im in images]
    return np.stack([cv2.cvtColor(s, cv2.COLOR_RGB2LAB).reshape(-1) for s in small]).astype(np.float32)


def padding_share(valid: np.ndarray | None, mask: np.ndarray) -> float:
    """The share of the context (``mask < 0.5``) that lies outside the photo (``valid < 0.5``;
    None: every pixel is from the photo)."""
    context = mask < 0.5
    return 0.0 if valid is None else float(((valid < 0.5) & context).sum() / max(context.sum(), 1))
