"""Colour and light from the query face onto a donor's context (CIE Lab, on the donors' device).

The donor's Lab statistics over the face region are moved to the query's, with a weight that is 1
on the donor's skin near the face (forehead, ears, neck) and fades with distance, and that is
small on non-skin colours (hair, clothes, background), so those keep their own colours
(:func:`skin_weight`). Lightness moves with its *direction* too: a plane fitted to each face's L
over position (:func:`shading_plane`: light from the left, a shadow towards the chin) replaces the
mean, so the donor's neck and forehead darken on the side where the query's face is dark. A
black-and-white query gets a black-and-white donor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.color import lab_to_rgb, rgb_to_lab
from facefill.donor.seam import sliding_max


def masked_stats(x: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel mean and std of ``x (B, C, H, W)`` over ``m (B, 1, H, W)``."""
    n = m.sum((2, 3)).clamp_min(1)
    mean = (x * m).sum((2, 3)) / n
    var = ((x - mean[..., None, None]) ** 2 * m).sum((2, 3)) / n
    return mean, var.clamp_min(1e-6).sqrt()


def skin_likelihood(lab: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, light: float = 3.0) -> torch.Tensor:
    """How skin-like each pixel of ``lab (B, 3, H, W)`` is, ``(B, 1, H, W)`` in [0, 1]: a Gaussian
    around a face's Lab ``mean``/``std (B, 3)``, within about 2.5 std in a and b and ``light`` std
    in L (shadows on skin are still skin; hair, beards, clothes, background are not)."""
    z = (lab[:, 1:] - mean[:, 1:, None, None]) / (2.5 * std[:, 1:, None, None].clamp_min(2.0))
    z_l = (lab[:, :1] - mean[:, :1, None, None]) / (light * std[:, :1, None, None].clamp_min(5.0))
    return torch.exp(-0.5 * ((z ** 2).sum(1, keepdim=True) + z_l ** 2))


def shading_plane(lightness: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """The least-squares plane ``a + b x + c y`` through ``lightness (B, 1, H, W)`` over ``m (B, 1,
    H, W)``, evaluated everywhere: ``(B, 1, H, W)``. ``x``, ``y`` run over [-1, 1]. Each image is
    fitted alone, so its plane does not depend on the batch."""
    b, _, h, w = lightness.shape
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, device=m.device, dtype=m.dtype),
                            torch.linspace(-1, 1, w, device=m.device, dtype=m.dtype), indexing="ij")
    basis = torch.stack([torch.ones_like(xs), xs, ys]).reshape(3, -1)  # (3, HW)
    wm, wl = m.reshape(b, -1), (m * lightness).reshape(b, -1)
    ridge = 1e-3 * torch.eye(3, device=m.device, dtype=m.dtype)

    def plane(i: int) -> torch.Tensor:  # one face alone: batched products round differently
        coef = torch.linalg.solve(torch.einsum("bn,in,jn->bij", wm[i:i + 1], basis, basis) + ridge,
                                  torch.einsum("bn,in->bi", wl[i:i + 1], basis))  # (1, 3)
        return coef @ basis

    return torch.cat([plane(i) for i in range(b)]).reshape(b, 1, h, w)


def close_holes(m: torch.Tensor, radius: int) -> torch.Tensor:
    """Grey-level closing of ``m (B, 1, H, W)`` by a ``2 radius + 1`` square: dips narrower than the
    square inside a high area are raised to it (a highlight or a coloured light spot on the skin);
    wider low areas (hair, background) keep their edges. ``radius`` 0: ``m`` unchanged. The same
    numbers as two ``max_pool2d`` calls of that square on replicate-padded maps, about 100 times
    faster on one CPU thread (:func:`facefill.donor.seam.sliding_max`; the square pools took
    about 7 ms a pair, more than the rest of the colour step)."""
    if radius <= 0:
        return m
    k = 2 * radius + 1
    grown = sliding_max(sliding_max(F.pad(m, (radius,) * 4, mode="replicate"), k, -1), k, -2)
    return -sliding_max(sliding_max(F.pad(-grown, (radius,) * 4, mode="replicate"), k, -1), k, -2)


def skin_weight(donor_lab: torch.Tensor, skin_mean: torch.Tensor, skin_std: torch.Tensor,
                dist: torch.Tensor, reach: float, holes: int = 0, hold: torch.Tensor | None = None) -> torch.Tensor:
    """How much of the colour transfer a donor pixel gets, ``(B, 1, H, W)`` in [0, 1].

    ``donor_lab (B, 3, H, W)``; ``skin_mean``/``skin_std (B, 3)``: the donor face's Lab stats;
    ``dist (B, 1, H, W)``: pixels from the query's face. Skin-coloured pixels (within about 2.5
    std of the face colour in a and b) get the full weight out to about ``2 * reach``; other
    pixels only right next to the face (out to about ``reach / 2``). ``holes``: spots up to
    about ``2 holes`` px across inside the skin count as skin (:func:`close_holes`): a
    specular highlight or a spot of coloured stage light on a forehead is not skin-coloured, and
    kept as it was it stood out as a white or purple patch on the query's darker skin. ``hold``
    ``(B, 1, H, W)`` in {0, 1}: pixels that get the skin test alone, not the weight next to the
    face (the donor's hair over the face's band, :mod:`facefill.donor.cover`: it keeps its colour)."""
    skin = close_holes(skin_likelihood(donor_lab, skin_mean, skin_std), holes)
    far = torch.exp(-(dist / (2 * reach)) ** 2)
    near = 0.5 * torch.exp(-(dist / (reach / 2)) ** 2)
    if hold is not None:
        near = near * (1 - hold)
    return torch.maximum(skin * far, near).clamp(0, 1)


def transfer_colour(donor: torch.Tensor, query: torch.Tensor, face: torch.Tensor, dist: torch.Tensor,
                    reach: float, shading: bool = True, max_shade: float = 20.0,
                    query_lab: torch.Tensor | None = None, holes: int = 0, hold: torch.Tensor | None = None) -> torch.Tensor:
    """The donors ``(B, 3, S, S)`` in [0, 1] with the queries' face colour carried onto their skin.
    ``query (B, 3, S, S)`` in [0, 1]; ``face (B, 1, S, S)``: the face region the statistics are
    taken over (the mask eroded); ``dist (B, 1, S, S)``: pixels from the query's face.
    ``shading``: lightness follows each face's :func:`shading_plane` rather than its mean; where
    the plane is carried out past the face, the change it makes is held within ``max_shade`` L.
    ``query_lab``: ``rgb_to_lab(query)`` where the caller has it already (None: computed here).
    ``holes``, ``hold``: see :func:`skin_weight`."""
    q_lab = rgb_to_lab(query) if query_lab is None else query_lab
    d_lab = rgb_to_lab(donor.clamp(0, 1))
    q_mean, q_std = masked_stats(q_lab, face)
    d_mean, d_std = masked_stats(d_lab, face)
    grey = (q_std[:, 1:].amax(1) < 4) & (q_mean[:, 1:].abs().amax(1) < 4)  # a black-and-white photo
    if bool(grey.any()):  # its context must be black and white too
        d_lab = torch.cat([d_lab[:, :1], d_lab[:, 1:] * (~grey).to(d_lab.dtype)[:, None, None, None]], 1)
        d_mean, d_std = masked_stats(d_lab, face)
    gain = (q_std / d_std).clamp(0.6, 1.6)
    moved = (d_lab - d_mean[..., None, None]) * gain[..., None, None] + q_mean[..., None, None]
    if shading:  # the two faces' light directions: plane minus mean, the donor's out, the query's in
        q_tilt = shading_plane(q_lab[:, :1], face) - q_mean[:, :1, None, None]
        d_tilt = shading_plane(d_lab[:, :1], face) - d_mean[:, :1, None, None]
        tilt = (q_tilt - gain[:, :1, None, None] * d_tilt).clamp(-max_shade, max_shade)
        moved = torch.cat([moved[:, :1] + tilt, moved[:, 1:]], 1)
    w = skin_weight(d_lab, d_mean, d_std, dist, reach, holes, hold)
    return lab_to_rgb(d_lab + w * (moved - d_lab)).clamp(0, 1)


def skin_maps(query: torch.Tensor, donor: torch.Tensor, face: torch.Tensor,
              query_lab: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(trust, accept)``, each ``(B, 1, S, S)`` in [0, 1]: how skin-like each pixel of the query
    and of the (colour-fitted) donor is, both measured against the query face's Lab statistics over
    ``face``. The seam step trusts only the query's skin along the edge (not a beard, hair or
    background kept in the mask) and carries it only onto the donor's skin (not its hair or
    clothes): :func:`facefill.donor.seam.seam_correction`. ``query_lab``: ``rgb_to_lab(query)``
    where the caller has it already (None: computed here)."""
    q_lab = rgb_to_lab(query) if query_lab is None else query_lab
    d_lab = rgb_to_lab(donor.clamp(0, 1))
    mean, std = masked_stats(q_lab, face)
    return skin_likelihood(q_lab, mean, std), skin_likelihood(d_lab, mean, std, light=4.0)
