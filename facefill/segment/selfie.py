"""Person segmentation with MediaPipe's selfie network: the PyTorch port (``selfie``, offline,
batched, CPU or GPU) and MediaPipe itself (``mediapipe``, optional).

The port reproduces MediaPipe's whole ``SelfieSegmentationCpu`` graph, not just the network:

1. ``ImageToTensorCalculator``: the image is stretched to the model size (256x256, or 144x256
   for the landscape model) by OpenCV's ``warpPerspective`` with the corner-to-corner transform
   (``x_src = x_dst * w / W``, not pixel centres), bilinear, zero border, on uint8 pixels.
   OpenCV's fixed-point arithmetic is reproduced exactly: source coordinates rounded to 1/32
   pixel (computed per 64-column block, as OpenCV does), 15-bit integer weights, rounding
   ``(sum + 2^14) >> 15``. Then ``/ 255`` to [0, 1]. (A float bilinear resize instead moves the
   mask by up to 0.1 near edges: the network is that sensitive to 1/255 input changes.)
2. The network (:mod:`facefill.models.selfie_seg`), with the sigmoid.
3. ``TensorsToSegmentationCalculator``: bilinear resize of the probability map back to the
   image size (OpenCV ``INTER_LINEAR`` = PyTorch ``bilinear``, ``align_corners=False``).

Steps 1-3 run batched in PyTorch on the chosen device.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from facefill.errors import FacefillError
from facefill.models.selfie_seg import INPUT_SIZE, load_selfie_segnet

_TAB = 32  # OpenCV's INTER_TAB_SIZE: sub-pixel positions per pixel
_BLOCK = 32  # OpenCV's warp block size


@lru_cache(maxsize=16)
def _fixed_point_coords(h: int, w: int, out_h: int, out_w: int) -> tuple[np.ndarray, np.ndarray]:
    """Source coordinates in 1/32 pixel, ``(out_h, out_w)`` int64 each (x, y), of MediaPipe's
    stretch of an ``h x w`` image to ``out_h x out_w``, rounded as OpenCV's ``warpPerspective``
    does: the corner-to-corner transform from ``getPerspectiveTransform``, inverted, evaluated
    in double per 64-column block, times 32, rounded half to even."""
    src = np.array([[0, h], [0, 0], [w, 0], [w, h]], np.float32)
    dst = np.array([[0, out_h], [0, 0], [out_w, 0], [out_w, out_h]], np.float32)
    m = cv2.invert(cv2.getPerspectiveTransform(src, dst))[1].ravel()
    bh = min(_BLOCK // 2, out_h)
    bw = min(_BLOCK * _BLOCK // bh, out_w)
    x = np.arange(out_w, dtype=np.float64)[None]
    xb = np.floor(x / bw) * bw  # the block's first column
    x1 = x - xb
    y = np.arange(out_h, dtype=np.float64)[:, None]
    x0 = m[0] * xb + m[1] * y + m[2]
    y0 = m[3] * xb + m[4] * y + m[5]
    w0 = m[6] * xb + m[7] * y + m[8] + m[6] * x1
    scale = np.divide(_TAB, w0, out=np.zeros_like(w0), where=w0 != 0)
    lim = 2.0 ** 31 - 1
    fx = np.rint(np.clip((x0 + m[0] * x1) * scale, -lim, lim)).astype(np.int64)
    fy = np.rint(np.clip((y0 + m[3] * x1) * scale, -lim, lim)).astype(np.int64)
    return fx, fy


def _taps(f: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index of the first of the two neighbours in the source padded by 2 zeros on each side
    (a neighbour out of the image reads zero: OpenCV's constant border), and their 1/32 weights."""
    i = np.clip(f >> 5, -2, n) + 2
    a = f & (_TAB - 1)
    return i, _TAB - a, a


@lru_cache(maxsize=16)
def _stretch_matrices(h: int, w: int, out_h: int, out_w: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The separable stretch as two weight matrices, ``(w + 4, out_w)`` along rows and
    ``(out_h, h + 4)`` along columns, in 1/32 (the source padded by 2 zeros), or None when the
    stretch is not separable."""
    fx, fy = _fixed_point_coords(h, w, out_h, out_w)
    if not ((fx == fx[:1]).all() and (fy == fy[:, :1]).all()):
        return None
    mats = []
    for f, n in ((fx[0], w), (fy[:, 0], h)):
        i, w0, w1 = _taps(f, n)
        m = np.zeros((n + 4, len(f)), np.float32)
        np.add.at(m, (i, np.arange(len(f))), w0)
        np.add.at(m, (i + 1, np.arange(len(f))), w1)
        mats.append(m)
    return mats[0], np.ascontiguousarray(mats[1].T)


def mediapipe_resize(images: torch.Tensor, size: tuple[int, int], separable: bool | None = None) -> torch.Tensor:
    """``(B, h, w, C)`` uint8 -> ``(B, C, H, W)`` float in [0, 1], bit-exact with MediaPipe's
    ``ImageToTensorCalculator`` (OpenCV ``warpPerspective``, bilinear, zero border) on CPU.

    OpenCV's result is ``(sum(wy * wx * 32 * pixel) + 2^14) >> 15`` with ``wx, wy`` in 1/32; the
    sums are integers below 2^24, so float32 holds them exactly. When the source x depends only
    on the output x and y only on y (always, for this stretch), the sum is taken separably (on the
    CPU as two matrix products; ``separable=None``: detect; False: per-pixel gathers, the general
    warp)."""
    b, h, w, c = images.shape
    fx, fy = _fixed_point_coords(h, w, *size)
    dev = images.device
    x = F.pad(images.permute(0, 3, 1, 2).float(), (2, 2, 2, 2))

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(dev)

    mats = _stretch_matrices(h, w, *size) if separable is not False else None
    if mats is not None and dev.type == "cpu":  # every product and sum an integer below 2^24: exact in float32
        rows = x @ t(mats[0])  # (B, C, h + 4, W)   (not on a GPU, whose float32 products may be TF32)
        acc = t(mats[1]) @ rows  # (B, C, H, W)
    elif mats is not None:
        ix, wx0, wx1 = (t(a) for a in _taps(fx[0], w))
        iy, wy0, wy1 = (t(a) for a in _taps(fy[:, 0], h))
        rows = x[..., ix] * wx0.float() + x[..., ix + 1] * wx1.float()  # (B, C, h + 4, W)
        acc = rows[:, :, iy] * wy0.float()[:, None] + rows[:, :, iy + 1] * wy1.float()[:, None]
    else:
        ix, wx0, wx1 = (t(a) for a in _taps(fx, w))
        iy, wy0, wy1 = (t(a) for a in _taps(fy, h))
        flat, pw = x.flatten(2), w + 4

        def at(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
            return flat[:, :, (yy * pw + xx).flatten()].view(b, c, *size)

        acc = ((at(iy, ix) * wx0 + at(iy, ix + 1) * wx1) * wy0
               + (at(iy + 1, ix) * wx0 + at(iy + 1, ix + 1) * wx1) * wy1)
    u8 = torch.floor((acc * (2 ** 15 // _TAB ** 2) + 2 ** 14) / 2 ** 15).clamp(0, 255)
    return u8 * torch.tensor(1 / 255, dtype=torch.float32)


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.dtype != np.uint8:
        raise FacefillError(f"the segmenter takes uint8 images, not {image.dtype}")
    return np.ascontiguousarray(image[..., :3])


class SelfieSegmenter:
    """MediaPipe's selfie segmentation network, ported to PyTorch (weights in the package).

    ``segmenter(image)`` -> ``(H, W)`` float32 person probability; :meth:`batch` for many images
    (grouped by size); :meth:`predict` for uint8 tensors already on the device. The network runs
    ``chunk`` images at a time: 8 on the CPU (larger batches fall out of the cache and are
    slower per image), 64 on a GPU. The face mask is not used (the network needs no seed)."""

    name = "selfie"

    def __init__(self, variant: str = "general", device: str | torch.device = "cpu", chunk: int | None = None) -> None:
        self.variant = variant
        self.size = INPUT_SIZE[variant]
        self.device = torch.device(device)
        self.chunk = chunk or (8 if self.device.type == "cpu" else 64)
        # on the CPU the network runs on channels-last activations: half the time (12.3 -> 6.1 ms an
        # image at 1 thread), probabilities within 7e-5 of the plain layout (tests/segment)
        self.layout = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        self.net = _load_net(variant).to(self.device, memory_format=self.layout)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, H, W, 3)`` uint8 RGB tensor -> ``(B, H, W)`` float32 probability, on the device."""
        h, w = images.shape[1:3]
        out = []
        for part in images.split(self.chunk):
            prob = self.net(mediapipe_resize(part.to(self.device), self.size).contiguous(memory_format=self.layout))
            out.append(F.interpolate(prob, size=(h, w), mode="bilinear", align_corners=False)[:, 0])
        return torch.cat(out)

    def batch(self, images: Sequence[np.ndarray],
              face_masks: Sequence[np.ndarray | None] | None = None) -> list[np.ndarray]:
        rgb = [_rgb(i) for i in images]
        out: list[np.ndarray | None] = [None] * len(rgb)
        groups: dict[tuple[int, int], list[int]] = {}
        for n, img in enumerate(rgb):
            groups.setdefault(img.shape[:2], []).append(n)
        for ids in groups.values():
            for s in range(0, len(ids), self.chunk):
                part = ids[s:s + self.chunk]
                probs = self.predict(torch.from_numpy(np.stack([rgb[n] for n in part]))).cpu().numpy()
                for n, p in zip(part, probs):
                    out[n] = p
        return out  # type: ignore[return-value]

    def __call__(self, image: np.ndarray, face_mask: np.ndarray | None = None) -> np.ndarray:
        return self.batch([image])[0]


def _load_net(variant: str) -> torch.nn.Module:
    """The port's network, or a one-line CheckpointError naming the weights file when it is not
    the selfie segmenter's safetensors file (another format, damaged, or other tensors)."""
    from facefill.errors import CheckpointError
    from facefill.weights import WEIGHTS, find

    path = find("selfie-segmenter")  # WeightsNotFoundError when missing, naming where it was looked for
    try:
        return load_selfie_segnet(variant, path)
    except Exception as exc:  # safetensors' own error types for a file of another format, torch's for other tensors
        w = WEIGHTS["selfie-segmenter"]
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        why = " ".join(lines[:2] if len(lines) > 1 and lines[0].endswith(":") else lines[:1]) or type(exc).__name__
        fix = f"point ${w.env} at {w.file} or unset it" if os.environ.get(w.env) else w.how
        raise CheckpointError(f"{path} is not the selfie segmentation weights ({why[:160]}); {fix}") from None


def selfie_available() -> bool:
    """Whether ``auto`` uses the port: its weights file is found (it ships inside facefill), or
    ``$FACEFILL_SELFIE_SEGMENTER`` names one. A missing or wrong file named there is an error when
    the network loads, never a silent fall-back to GrabCut, as for every other weight override."""
    from facefill.weights import WEIGHTS, locate

    return bool(os.environ.get(WEIGHTS["selfie-segmenter"].env)) or locate("selfie-segmenter")[0] is not None


class MediapipeSegmenter:
    """MediaPipe's own selfie segmenter (legacy ``mp.solutions``), when mediapipe 0.10.21 is
    installed. Same network and result as ``selfie`` (to about 1e-7), on CPU, one image at a time."""

    name = "mediapipe"

    def __init__(self, model_selection: int = 0) -> None:
        try:
            import mediapipe as mp

            solution = mp.solutions.selfie_segmentation
        except (ImportError, AttributeError):
            raise FacefillError("the mediapipe segmenter needs mediapipe 0.10.21 (its wheel ships the model); "
                                "see docs/replace-bg.md, or use --segmenter selfie (the same network, built in)") from None
        self._seg = solution.SelfieSegmentation(model_selection=model_selection)

    def __call__(self, image: np.ndarray, face_mask: np.ndarray | None = None) -> np.ndarray:
        result = self._seg.process(_rgb(image))
        if result.segmentation_mask is None:
            return np.zeros(image.shape[:2], np.float32)
        return result.segmentation_mask.astype(np.float32)

    def batch(self, images: Sequence[np.ndarray],
              face_masks: Sequence[np.ndarray | None] | None = None) -> list[np.ndarray]:
        return [self(i) for i in images]


def mediapipe_available() -> bool:
    try:
        import mediapipe as mp

        return hasattr(mp, "solutions") and hasattr(mp.solutions, "selfie_segmentation")
    except ImportError:
        return False
