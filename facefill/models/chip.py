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


# ---------------------------------------------------------------------- dlib's exact extraction

#: dlib's ``pyramid_down<2>`` filter (applied along rows and columns, divided by 256)
_PYR_TAPS = (1.0, 4.0, 6.0, 4.0, 1.0)


def _pyramid_down(x: torch.Tensor) -> torch.Tensor:
    """dlib's ``pyramid_down<2>`` on ``(C, H, W)`` integer-valued pixels: a 5x5 [1 4 6 4 1]^2
    filter, every other row and column, integer division by 256 -> ``(C, (H-3)//2, (W-3)//2)``."""
    import torch.nn.functional as F

    if min(x.shape[1:]) <= 8:  # dlib returns an empty image
        return x.new_zeros(x.shape[0], 0, 0)
    k = torch.tensor(_PYR_TAPS, dtype=x.dtype, device=x.device)
    k2 = (k[:, None] * k[None, :]).expand(x.shape[0], 1, 5, 5)
    y = F.conv2d(x[None], k2, stride=2, groups=x.shape[0])[0]
    return torch.floor(y / 256.0)


def _pyramid_depth(width: float, size: int) -> int:
    """How many ``pyramid_down<2>`` steps dlib takes before sampling a chip of ``size`` from a
    rectangle ``width`` pixels wide (``rect_down`` halves ``right - left``)."""
    depth, w = 0, (width - 1) / 2 + 1
    while w * w > size * size:
        w, depth = (w - 1) / 2 + 1, depth + 1
    return depth


def _bilinear_dlib(img: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    """dlib's ``interpolate_bilinear`` of ``(C, H, W)`` at ``(N, 2)`` points: 0 where any of the
    four neighbours is outside the image. Returns ``(C, N)``."""
    c, h, w = img.shape
    x0, y0 = torch.floor(pts[:, 0]), torch.floor(pts[:, 1])
    inside = (x0 >= 0) & (y0 >= 0) & (x0 + 1 <= w - 1) & (y0 + 1 <= h - 1)
    fx, fy = pts[:, 0] - x0, pts[:, 1] - y0
    xi, yi = x0.long().clamp(0, max(w - 2, 0)), y0.long().clamp(0, max(h - 2, 0))
    if h < 2 or w < 2:
        return img.new_zeros(c, pts.shape[0])
    flat = img.reshape(c, -1).to(pts.dtype)

    def at(dy: int, dx: int) -> torch.Tensor:
        return flat[:, (yi + dy) * w + xi + dx]

    top = at(0, 0) * (1 - fx) + at(0, 1) * fx
    bottom = at(1, 0) * (1 - fx) + at(1, 1) * fx
    return torch.where(inside, top * (1 - fy) + bottom * fy, torch.zeros_like(fx))


#: chip pixels sampled together by :func:`extract_chips_dlib` (16 chips of 64 px; more spill the
#: CPU's cache)
_CHUNK = 2 ** 16


def _grow(depth: int) -> float:
    """How far dlib grows the chip's footprint before ``depth`` pyramid steps (2, 6, 14 ... px)."""
    grow = 2.0
    for _ in range(depth):
        grow = grow * 2 + 2
    return grow


def extract_chips_dlib(images: torch.Tensor, landmarks: torch.Tensor, size: int = DLIB_CHIP_SIZE,
                       padding: float = DLIB_CHIP_PADDING) -> torch.Tensor:
    """Face chips exactly as ``dlib.extract_image_chip(img, get_face_chip_details(shape, size,
    padding))`` cuts them, image pyramid included: where the face is more than twice the chip's
    size dlib first crops the chip's footprint (grown by 2, 6, 14 ... pixels), downsamples it
    with ``pyramid_down<2>`` and maps the chip into that level with ``rect_down`` (``p / 2 -
    (1.25, 0.75)``); then bilinear sampling (0 where a neighbour is outside) and truncation to
    integers. Not differentiable (use :func:`extract_chips` for losses).

    ``images``: ``(B, C, H, W)`` integer-valued pixels in [0, 255] (uint8 as float);
    ``landmarks``: ``(B, 5 or 68, 2)`` in their pixels. Returns ``(B, C, size, size)`` float
    with integer values, equal to dlib's uint8 chip (``tests/models/test_chip.py``).

    Faces that need no pyramid (most aligned crops) are sampled together, straight from the
    whole image with the footprint's bounds as the edge: the same numbers as cropping first, since
    the crop only shifts coordinates by whole pixels; the others one at a time."""
    if images.shape[0] != landmarks.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {landmarks.shape[0]} landmark sets")
    b, c, h, w = images.shape
    aff = chip_to_image(landmarks.to(torch.float64), size, padding).cpu()  # (B, 2, 3)
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64), indexing="ij")
    grid = torch.stack([xs.flatten(), ys.flatten(), torch.ones(size * size, dtype=torch.float64)], 1)
    corners = torch.tensor([[0, 0, 1], [size - 1, 0, 1], [0, size - 1, 1], [size - 1, size - 1, 1]], dtype=torch.float64)
    widths = torch.sqrt(torch.det(aff[:, :, :2]).abs()) * (size - 1) + 1
    depths = [_pyramid_depth(float(x), size) for x in widths]
    grows = torch.tensor([_grow(d) for d in depths], dtype=torch.float64)[:, None]
    rot = corners @ aff.transpose(1, 2)  # (B, 4, 2) image points of the chip's corners
    lo = torch.clamp(rot.min(1).values - grows, min=0.0)
    hi = torch.minimum(rot.max(1).values + grows, torch.tensor([w - 1.0, h - 1.0], dtype=torch.float64))
    box = torch.floor(torch.cat([lo, hi], 1) + 0.5).to(torch.int64).tolist()  # (x0, y0, x1, y1) per face
    # (B, size^2, 2) image points of the chip's pixels: x a_0 + y a_1 + a_2 for each face alike
    # (no batched matmul, whose rounding may depend on the batch)
    gx, gy = grid[None, :, 0, None], grid[None, :, 1, None]
    pts = gx * aff[:, None, :, 0] + gy * aff[:, None, :, 1] + aff[:, None, :, 2]
    out = images.new_zeros(b, c, size * size)
    flat = torch.tensor([d == 0 for d in depths])
    boxes = torch.tensor(box, dtype=torch.float64)
    ready = torch.nonzero(flat)[:, 0]
    step = max(1, _CHUNK // (size * size))  # a few faces at a time: the float64 temporaries stay in cache
    for start in range(0, len(ready), step):
        i = ready[start:start + step]
        out[i.to(out.device)] = _bilinear_dlib_boxed(images[i.to(images.device)], pts[i], boxes[i])
    for i in torch.nonzero(~flat)[:, 0].tolist():
        x0, y0, x1, y1 = box[i]
        # float32 holds dlib's integer pyramid sums exactly (< 2^24); the sampling runs in float64
        level = images[i, :, y0:y1 + 1, x0:x1 + 1].to(torch.float32) if x1 >= x0 and y1 >= y0 else \
            images.new_zeros(c, 0, 0, dtype=torch.float32)
        p = pts[i] - torch.tensor([x0, y0], dtype=torch.float64)
        for _ in range(depths[i]):
            level = _pyramid_down(level)
            p = p / 2 - torch.tensor([1.25, 0.75], dtype=torch.float64)
        out[i] = torch.floor(_bilinear_dlib(level, p.to(level.device)) + 1e-9).to(out.dtype)
    return out.view(b, c, size, size)


def _bilinear_dlib_boxed(images: torch.Tensor, pts: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """:func:`_bilinear_dlib` of each face's crop ``box`` (``(B, 4)`` x0, y0, x1, y1, whole
    pixels, inside the image), sampled in the whole ``images (B, C, H, W)`` at ``pts (B, N, 2)``
    image points, truncated to integers: ``(B, C, N)``, the images' dtype. A point counts as
    outside where any neighbour is outside its face's box."""
    b, c, h, w = images.shape
    x, y = pts[..., 0], pts[..., 1]
    x0, y0 = torch.floor(x), torch.floor(y)
    bx0, by0, bx1, by1 = (box[:, j:j + 1] for j in range(4))
    inside = (x0 >= bx0) & (y0 >= by0) & (x0 + 1 <= bx1) & (y0 + 1 <= by1)
    # in the crop's own coordinates (as dlib computes them): exact for points inside the box
    fx, fy = (x - bx0) - (x0 - bx0), (y - by0) - (y0 - by0)
    if h < 2 or w < 2:
        return images.new_zeros(b, c, pts.shape[1])
    base = (y0.long().clamp(0, h - 2) * w + x0.long().clamp(0, w - 2))[:, None].expand(b, c, -1)
    flat = images.reshape(b, c, -1).cpu()

    def at(dy: int, dx: int) -> torch.Tensor:  # integer pixel values: exact in any float type
        return torch.gather(flat, 2, base + (dy * w + dx)).to(torch.float64)

    fx, fy = fx[:, None], fy[:, None]
    top = at(0, 0) * (1 - fx) + at(0, 1) * fx
    bottom = at(1, 0) * (1 - fx) + at(1, 1) * fx
    value = torch.where(inside[:, None], top * (1 - fy) + bottom * fy, torch.zeros_like(top))
    return torch.floor(value + 1e-9).to(images.device, images.dtype)
