"""Thin-plate-spline warps that carry a donor photo onto a query face's landmarks.

Both photos come from ``facefill align`` (the same eye-centred frame), so the donor's head already
sits roughly where the query's does; the spline moves the donor's jaw line, brows and nose onto the
query's, so that the donor's neck, ears and hair line continue *this* face's outline. Fixed
anchors along the image border keep the far background where it is.

Coordinates are pixels with integer values at pixel centres (``align_corners=True``, as
:mod:`facefill.models.chip`). Solves run in float64 on the points' device. Donor pixels that the
warp brings in from outside the donor's photo, and the edge streaks an earlier crop baked into it
(:func:`baked_padding`), are filled with a smooth extension of the photo and grain, never a mirror
image (:func:`fill_padding`, OpenCV on the CPU; :func:`warp_donors` does all of it).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

#: 68-point landmarks that steer the warp: jaw line (0-16), brows (17-26), nose bridge (27-30),
#: outer and inner eye corners (36, 39, 42, 45). The mouth is left out: it lies inside the face,
#: which the query's own pixels replace.
CONTROL_POINTS = tuple(range(0, 31)) + (36, 39, 42, 45)


def _kernel(d2: torch.Tensor) -> torch.Tensor:
    """TPS radial basis ``r^2 log r^2`` from squared distances (0 at r = 0)."""
    return torch.where(d2 > 0, d2 * torch.log(d2.clamp_min(1e-30)), torch.zeros_like(d2))


def border_anchors(size: int, per_side: int = 4) -> torch.Tensor:
    """``(4 * per_side, 2)`` points evenly spaced along the border of a ``size`` px square image."""
    t = torch.linspace(0, size - 1, per_side + 1, dtype=torch.float64)[:-1]
    e = torch.full_like(t, size - 1.0)
    z = torch.zeros_like(t)
    return torch.cat([torch.stack([t, z], 1), torch.stack([e, t], 1),
                      torch.stack([e - t, e], 1), torch.stack([z, e - t], 1)])


def tps_fit(src: torch.Tensor, dst: torch.Tensor, regularization: float = 0.0
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """The thin-plate spline ``f`` with ``f(src) ~= dst``.

    ``src``, ``dst``: ``(B, N, 2)`` points (any frame; pass normalised coordinates for a
    well-conditioned solve). ``regularization`` >= 0 trades exactness for smoothness (0 = exact).
    Returns ``(weights (B, N, 2), affine (B, 3, 2))`` in float64, for :func:`tps_apply`."""
    src, dst = src.double(), dst.double()
    b, n, _ = src.shape
    k = _kernel(torch.cdist(src, src).square())
    k = k + regularization * torch.eye(n, dtype=k.dtype, device=k.device)
    p = torch.cat([torch.ones(b, n, 1, dtype=k.dtype, device=k.device), src], 2)
    top = torch.cat([k, p], 2)
    bottom = torch.cat([p.transpose(1, 2), torch.zeros(b, 3, 3, dtype=k.dtype, device=k.device)], 2)
    rhs = torch.cat([dst, torch.zeros(b, 3, 2, dtype=k.dtype, device=k.device)], 1)
    sol = torch.linalg.solve(torch.cat([top, bottom], 1), rhs)
    return sol[:, :n], sol[:, n:]


def tps_apply(points: torch.Tensor, centres: torch.Tensor, weights: torch.Tensor, affine: torch.Tensor
              ) -> torch.Tensor:
    """Evaluate a spline from :func:`tps_fit` (fitted with ``src = centres``) at ``points``
    ``(B, M, 2)``, in float32 (pass normalised coordinates); returns ``(B, M, 2)`` float64."""
    dtype = torch.float32  # normalised coordinates: float32 is exact to ~1e-6 of the half-width
    points, centres = points.to(dtype), centres.to(dtype)
    weights, affine = weights.to(dtype), affine.to(dtype)
    d2 = ((points ** 2).sum(-1, keepdim=True) + (centres ** 2).sum(-1)[:, None] - 2 * points @ centres.transpose(1, 2))
    d2 = d2.clamp_min(0)
    u = d2 * torch.log(d2.clamp_min(1e-20))  # r^2 log r^2, 0 at r = 0
    return (affine[:, :1] + points @ affine[:, 1:] + u @ weights).double()


def warp_to_landmarks(images: torch.Tensor, donor_landmarks: torch.Tensor, query_landmarks: torch.Tensor,
                      regularization: float = 1e-3, anchors_per_side: int = 4, step: int = 2) -> torch.Tensor:
    """Warp donor images so that their landmarks land on the query's.

    ``images``: ``(B, C, S, S)`` any range (donor photo, validity mask, ...);
    ``donor_landmarks``, ``query_landmarks``: ``(B, 68, 2)`` pixels in that frame. Only
    :data:`CONTROL_POINTS` steer the warp, plus border anchors that stay put. Returns
    ``(B, C, S, S)``, same dtype; samples outside the donor image are 0 (so a warped validity
    mask marks them invalid). ``step``: spacing in pixels of the grid the spline is evaluated on
    (1 = every pixel)."""
    b, _, h, w = images.shape
    if h != w:
        raise ValueError(f"warp_to_landmarks takes square images, got {h}x{w}")
    idx = list(CONTROL_POINTS)
    anchors = border_anchors(w, anchors_per_side).to(images.device)[None].expand(b, -1, -1)
    scale = 2.0 / (w - 1)
    q = torch.cat([query_landmarks[:, idx].double().to(images.device), anchors], 1) * scale - 1
    d = torch.cat([donor_landmarks[:, idx].double().to(images.device), anchors], 1) * scale - 1
    # The spline is smooth: evaluate it on a coarse grid (every ``step`` px) and interpolate the
    # sampling grid bilinearly (step 2 at 128 px: 99% of pixels within 0.07 px of the exact map,
    # all within 0.5 px; 4x cheaper).
    n = min(w, -(-(w - 1) // step) + 1)
    lin = torch.linspace(-1, 1, n, dtype=torch.float64, device=images.device)
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")
    grid = torch.stack([gx, gy], -1).reshape(1, -1, 2)
    # Each face's spline is fitted and evaluated alone: batched matrix products round differently
    # from single ones (up to 3e-5 px here, 1e-4 in the warped pixels), and an output must not
    # depend on the batch it came in. The sampling below is per pixel, batched.
    src = torch.cat([tps_apply(grid, q[i:i + 1], *tps_fit(q[i:i + 1], d[i:i + 1], regularization))
                     for i in range(b)])  # output (query) frame -> donor frame
    src = src.reshape(b, n, n, 2).permute(0, 3, 1, 2).to(images.dtype)
    if n != w:
        src = F.interpolate(src, size=(h, w), mode="bilinear", align_corners=True)
    return F.grid_sample(images, src.permute(0, 2, 3, 1), mode="bilinear", padding_mode="zeros", align_corners=True)


def _nearest_valid(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``image (H, W, ...)`` with every invalid pixel replaced by the nearest valid one."""
    if valid.all():
        return image
    _, labels = cv2.distanceTransformWithLabels((~valid).astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    vy, vx = np.nonzero(valid)
    lookup = np.zeros(labels.max() + 1, np.int64)
    lookup[labels[vy, vx]] = np.arange(len(vy))
    near = lookup[labels]
    return image[vy[near], vx[near]]


def _runs_from_left(ok: np.ndarray, valid: np.ndarray, min_run: int, max_run: int) -> np.ndarray:
    """The valid pixels reached from column 0 of each row through ``ok`` pixels only, in rows where
    ``min_run`` to ``max_run`` valid pixels are reached (a longer run is the photo's own structure:
    a curtain, a pillar, a door frame)."""
    run = np.cumprod(ok, axis=1).astype(bool) & valid
    n = run.sum(1)
    return run & ((n >= min_run) & (n <= max_run))[:, None]


def baked_padding(image: np.ndarray, valid: np.ndarray, ratio: float = 0.3, min_run: int = 5,
                  max_share: float = 0.4, floor: float = 0.04, scale: float = 1.0) -> np.ndarray:
    """``(S, S)`` bool: streaks that a photo's earlier crop baked in at its edges (CelebA's aligned
    photos repeat their edge pixels where the original photo ran out), which the photo's own
    ``.valid.png`` cannot know of. ``image (S, S, C)`` in [0, 1], ``valid (S, S)`` bool.

    A pixel is streaked where, over 5x5 px, its grey level barely changes along one image axis
    (mean gradient under ``ratio`` of that across it, and above ``floor``); a streak is the run of
    such pixels, or of flat black ones (the black wedge an earlier rotation left), ``min_run`` px
    to ``max_share`` of the side long, from the photo's edge inwards, along
    rows at the left and right, along columns from the top (not from the bottom, where ties,
    lapels and collars run straight up). Mirror images baked in are not found. ``scale`` (S / 128)
    multiplies ``min_run`` and the 5 px window."""
    k, min_run = 2 * round(2 * scale) + 1, round(min_run * scale)
    g = _nearest_valid(np.ascontiguousarray(image.mean(-1), dtype=np.float32), valid)
    gx = cv2.blur(np.abs(cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)), (k, k))
    gy = cv2.blur(np.abs(cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)), (k, k))
    black = g < 0.015  # a black border left by an earlier rotation (exactly 0 but for JPEG noise)
    rows = ((gx < ratio * gy) & (gy > floor)) | black | ~valid  # constant along a row: a horizontal streak
    cols = ((gy < ratio * gx) & (gx > floor)) | black | ~valid
    lim = (min_run, int(max_share * len(valid)))
    out = _runs_from_left(rows, valid, *lim) | _runs_from_left(rows[:, ::-1], valid[:, ::-1], *lim)[:, ::-1]
    out |= _runs_from_left(cols.T, valid.T, *lim).T  # not from the bottom: ties and lapels run up from it
    return out


def _push_pull(image: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``image (H, W, C) float32`` with the pixels where ``weight (H, W)`` is 0 filled from a
    Gaussian pyramid of the weighted pixels (push-pull): a smooth, low-frequency extension."""
    h, w = weight.shape
    if min(h, w) <= 2 or weight.min() > 0:
        filled = (image * weight[..., None]).sum((0, 1)) / max(float(weight.sum()), 1e-6)
        return np.where(weight[..., None] > 0, image, filled[None, None].astype(np.float32))
    num = cv2.pyrDown(np.ascontiguousarray(image * weight[..., None]))
    den = cv2.pyrDown(np.ascontiguousarray(weight))
    coarse = _push_pull(num / np.maximum(den, 1e-6)[..., None], (den > 1e-3).astype(np.float32) * den)
    up = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR).reshape(image.shape)
    a = np.clip(weight, 0, 1)[..., None]
    return (a * image + (1 - a) * up).astype(np.float32)


def fill_padding(image: np.ndarray, valid: np.ndarray, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    """Fill the invalid pixels of ``image`` (``(S, S, C) float32`` in [0, 1], ``valid`` ``(S, S)``
    bool) without mirroring: a smooth extension of the valid pixels (:func:`_push_pull`, what a
    defocused background beyond the photo's edge would look like) plus grain matched to the
    photo's own fine noise near its edge (a seeded, fixed pattern). No structure of the valid
    area is repeated, so no mirror pattern, streak or kaleidoscope appears. Returns a new array;
    an all-valid (or all-invalid) image is returned as is."""
    if valid.all() or not valid.any():
        return image
    v = valid.astype(np.float32)
    smooth = _push_pull(image.astype(np.float32), v)
    # the grain: the valid pixels' deviation from their own 1-px blur within 6 px of the edge, its
    # robust spread (median absolute deviation: hair strands and edges are not grain)
    edge = valid & (cv2.distanceTransform(valid.astype(np.uint8), cv2.DIST_L2, 3) <= 6 * scale)  # scale: S / 128
    fine = (image - cv2.GaussianBlur(image, (0, 0), 1.0).reshape(image.shape)).mean(-1)
    sd = 1.4826 * float(np.median(np.abs(fine[edge]))) if edge.any() else 0.0
    noise = np.random.default_rng(seed).standard_normal(image.shape[:2]).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), 0.7)
    noise *= min(sd, 0.015) / max(float(noise.std()), 1e-6)
    out = image.copy()
    hole = ~valid
    out[hole] = np.clip(smooth[hole] + noise[hole][:, None], 0, 1)
    return out


def warp_donors(donor: torch.Tensor, donor_valid: torch.Tensor, donor_landmarks: torch.Tensor,
                query_landmarks: torch.Tensor, streaks: bool = True, scale: float = 1.0) -> torch.Tensor:
    """Donors ``(B, 3, S, S)`` in [0, 1] warped onto the queries' landmarks (:func:`warp_to_landmarks`),
    with the pixels that came from outside a donor's photo (``donor_valid (B, 1, S, S)``, 1 = from
    the photo, warped alike) filled in (:func:`fill_padding`), so each output is a whole image.
    ``streaks``: the streaks baked into a donor's edges (:func:`baked_padding`) count as padding
    too. ``scale``: S / 128, for their pixel distances. On the donors' device; finding streaks and
    the padding fill run on the CPU."""
    if streaks:
        arr, ok = donor.permute(0, 2, 3, 1).cpu().numpy(), donor_valid[:, 0].cpu().numpy() > 0.5
        baked = np.stack([baked_padding(a, v, scale=scale) for a, v in zip(arr, ok)])
        donor_valid = donor_valid * torch.from_numpy(~baked)[:, None].to(donor_valid)
    warped = warp_to_landmarks(torch.cat([donor, donor_valid], 1), donor_landmarks, query_landmarks)
    d, valid = warped[:, :3], warped[:, 3:] > 0.99
    if not bool(valid.all()):
        arr, ok = d.permute(0, 2, 3, 1).cpu().numpy(), valid[:, 0].cpu().numpy()
        filled = np.stack([fill_padding(a, v, scale=scale) for a, v in zip(arr, ok)])
        d = torch.from_numpy(filled).permute(0, 3, 1, 2).to(donor.device)
    return d
