"""dlib's face chip (``dlib.get_face_chip(img, shape, 150, 0.25)``), batched and differentiable.

dlib maps chip pixels to image pixels with a least-squares similarity from a fixed mean-face
template (in chip pixels) to the landmarks, then samples bilinearly through a rectangle whose
corner *pixels* are the chip's corner pixels, which scales the similarity by
``(size * s - 1) / (s * (size - 1))`` about the chip centre. The templates below were measured
from dlib itself, treating it as a black box (``tools/derive_dlib_chip_template.py``), and
``tests/models/test_chip.py`` checks the result against ``dlib.get_face_chip`` pixel for pixel.

Coordinates are pixels with integer values at pixel centres (as dlib, OpenCV and kornia with
``align_corners=True``).
"""

from __future__ import annotations

import torch
from kornia.geometry.transform import invert_affine_transform, warp_affine

#: 5-point shapes (dlib's ``shape_predictor_5_face_landmarks``): eye corners and nose base,
#: in the unit square of an unpadded chip.
TEMPLATE_5 = (
    (0.8595675, 0.2134982), (0.6460605, 0.2289674), (0.1205751, 0.2137275),
    (0.3340851, 0.2290642), (0.4901123, 0.6277975),
)

#: 68-point shapes: dlib uses points 27-54 and 60-64 (nose, eyes, upper mouth); these are
#: their template positions, same units as ``TEMPLATE_5``.
TEMPLATE_68_INDEX = tuple(range(27, 55)) + tuple(range(60, 65))
TEMPLATE_68 = (
    (0.490127, 0.203352), (0.490127, 0.307009), (0.490127, 0.409805), (0.490127, 0.515625),
    (0.36688, 0.587326), (0.426036, 0.609345), (0.490127, 0.628106), (0.554217, 0.609345),
    (0.613373, 0.587326), (0.121737, 0.216423), (0.187122, 0.178758), (0.265825, 0.179852),
    (0.334606, 0.231733), (0.260918, 0.245099), (0.182743, 0.244077), (0.645647, 0.231733),
    (0.714428, 0.179852), (0.793132, 0.178758), (0.858516, 0.216423), (0.79751, 0.244077),
    (0.719335, 0.245099), (0.254149, 0.780233), (0.340985, 0.745405), (0.428858, 0.727388),
    (0.490127, 0.742578), (0.551395, 0.727388), (0.639268, 0.745405), (0.726104, 0.780233),
    (0.290379, 0.784792), (0.428096, 0.778746), (0.490127, 0.785343), (0.552157, 0.778746),
    (0.689874, 0.784792),
)

DLIB_CHIP_SIZE = 150
DLIB_CHIP_PADDING = 0.25


def _template(n_points: int, size: int, padding: float, like: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    if n_points == 5:
        pts, index = TEMPLATE_5, list(range(5))
    elif n_points == 68:
        pts, index = TEMPLATE_68, list(TEMPLATE_68_INDEX)
    else:
        raise ValueError(f"face chips need 5 or 68 landmarks per face, got {n_points}")
    t = torch.tensor(pts, dtype=like.dtype, device=like.device)
    return (t + padding) / (1 + 2 * padding) * size, index


def chip_to_image(landmarks: torch.Tensor, size: int = DLIB_CHIP_SIZE,
                  padding: float = DLIB_CHIP_PADDING) -> torch.Tensor:
    """``(B, N, 2)`` landmarks (N = 5 or 68, image pixels) -> ``(B, 2, 3)`` affine taking chip
    pixel ``(x, y, 1)`` to the image point dlib samples for it. Differentiable in ``landmarks``."""
    src, index = _template(landmarks.shape[1], size, padding, landmarks)
    dst = landmarks[:, index]
    src_c = src - src.mean(0)
    dst_c = dst - dst.mean(1, keepdim=True)
    norm = (src_c ** 2).sum()
    # least squares similarity src -> dst: z = a + ib = sum(conj(s) d) / sum |s|^2
    a = (src_c[None, :, 0] * dst_c[..., 0] + src_c[None, :, 1] * dst_c[..., 1]).sum(1) / norm
    b = (src_c[None, :, 0] * dst_c[..., 1] - src_c[None, :, 1] * dst_c[..., 0]).sum(1) / norm
    scale = torch.sqrt(a * a + b * b)
    k = (size * scale - 1) / (scale * (size - 1))  # dlib's corner-pixel rectangle
    lin = torch.stack([torch.stack([a, -b], -1), torch.stack([b, a], -1)], 1)  # (B, 2, 2)
    t = dst.mean(1) - (lin @ src.mean(0)[:, None])[..., 0]
    centre = (lin @ torch.full((2, 1), size / 2, dtype=lin.dtype, device=lin.device))[..., 0] + t
    lin_k = lin * k[:, None, None]
    offset = centre - (lin_k @ torch.full((2, 1), (size - 1) / 2, dtype=lin.dtype, device=lin.device))[..., 0]
    return torch.cat([lin_k, offset[..., None]], -1)


def extract_chips(images: torch.Tensor, landmarks: torch.Tensor, size: int = DLIB_CHIP_SIZE,
                  padding: float = DLIB_CHIP_PADDING) -> torch.Tensor:
    """Face chips as dlib cuts them, with kornia (bilinear, zeros outside the image).

    ``images``: ``(B, C, H, W)`` any range; ``landmarks``: ``(B, N, 2)`` in those images' pixels.
    Returns ``(B, C, size, size)``, same range; differentiable in ``images`` (and landmarks).
    """
    if images.shape[0] != landmarks.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {landmarks.shape[0]} landmark sets")
    to_chip = invert_affine_transform(chip_to_image(landmarks.to(images.dtype), size, padding))
    return warp_affine(images, to_chip, (size, size), mode="bilinear", padding_mode="zeros",
                       align_corners=True)
