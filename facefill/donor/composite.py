"""Fitting a donor's context to a query face: warp, padding, colour, sharpness, seam.

All image tensors are ``(B, 3, S, S) float32`` in [0, 1] RGB and masks ``(B, 1, S, S)`` in
{0, 1} (1 = the query's face), on one device. Steps, in order (:func:`fit_donors`), each a
function of its own module:

1. **Warp** the donor onto the query's jaw line, brows and nose, and **padding**: donor pixels that
   came from outside its photo, and streaks baked into its edges, are filled with a smooth
   extension and grain, never a mirror image (:func:`facefill.donor.warp.warp_donors`, :func:`facefill.donor.warp.fill_padding`);
   donor choice already prefers donors with little padding.
1b. **Cover**: where the warped donor's own hair lies over the query's face band (temples,
   forehead), it stays there: those pixels leave the face region (:func:`facefill.donor.cover.cover_masks`).
2. **Colour and light**, locally: the face's colour and its shading direction carried onto the
   donor's skin (:func:`facefill.donor.colour.transfer_colour`).
3. **Sharpness**: where the query is softer than the donor, the donor is blurred with the
   Gaussian that best matches the two faces' high-frequency energy, and where it is sharper,
   the donor is sharpened by the unsharp mask that best matches it
   (:func:`facefill.donor.sharpness.match_sharpness`).
4. **Seam**: the step along the mask edge spread and faded over ``band`` px, from the query's
   skin onto the donor's skin (:func:`facefill.donor.colour.skin_maps`,
   :func:`facefill.donor.seam.correct_seam`). Face pixels are never changed.
"""

from __future__ import annotations

import torch
from kornia.color import rgb_to_lab

from facefill.donor.cover import cover_masks
from facefill.donor.colour import masked_stats, skin_maps, skin_weight, transfer_colour
from facefill.donor.seam import correct_seam, distance_outside, erode, face_distance, seam_correction
from facefill.donor.sharpness import BLUR_SIGMAS, match_sharpness
from facefill.donor.warp import fill_padding, warp_donors

__all__ = ["BLUR_SIGMAS", "distance_outside", "erode", "fit_donors", "masked_stats", "match_sharpness", "fill_padding",
           "seam_correction", "skin_maps", "skin_weight", "transfer_colour"]


#: spots up to about 2 x this many px across inside a donor's skin take the colour of the skin
#: around them (a highlight, a coloured light: :func:`facefill.donor.colour.skin_weight`)
HOLES = 7
#: the donor's hair laid over the face's band (step 1b) covers the face fully only this many px in
#: from its edge; nearer, the face shows through in proportion (a soft hair edge, not a cut)
EDGE = 3.0


def fit_donors(query: torch.Tensor, masks: torch.Tensor, query_landmarks: torch.Tensor,
               donor: torch.Tensor, donor_valid: torch.Tensor, donor_landmarks: torch.Tensor,
               band: int = 10, reach: float = 24.0, scale: float = 1.0, cover: float = 0.0, streaks: bool = True
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """One output per (query, donor) pair, ``(B, 3, S, S)`` in [0, 1] on the inputs' device, and
    the face region it keeps, ``(B, 1, S, S)`` in {0, 1}: ``masks`` less the band pixels the donor's
    hair covers (``cover``: the hair's colour distance from the donor's skin, 0 = off, the masks as
    given; :func:`facefill.donor.cover.cover_masks`). Inside that region the output is the query
    (exactly, up to float rounding: round to uint8 and paste the face over the region,
    :func:`facefill.mask.compose.paste_face`).

    ``query (B, 3, S, S)`` in [0, 1] (context ignored); ``masks (B, 1, S, S)`` {0, 1};
    ``query_landmarks``, ``donor_landmarks``: ``(B, 68, 2)`` pixels; ``donor (B, 3, S, S)`` in
    [0, 1]; ``donor_valid (B, 1, S, S)`` 1 where the donor pixel is from its photo (``streaks``
    False: and not in a streak baked into its edges, found by the caller already,
    :meth:`facefill.donor.DonorHallucinator.photo`). Each
    pair's output is the same whatever batch it is fitted in (the steps whose batched arithmetic
    rounds differently run one pair at a time). ``scale``: S / 128; ``band``, ``reach`` and every
    other distance in pixels are given for a 128 px crop and multiplied by it, so a 256 px output
    is a sharper 128 px one, not one with a thinner seam."""
    d = warp_donors(donor, donor_valid, donor_landmarks, query_landmarks, streaks=streaks, scale=scale)
    given = (masks > 0.5).to(query.dtype)
    m = cover_masks(d, given, query_landmarks, cover)
    hold = given - m  # the donor's hair over the face's band keeps its colour and edge
    dist = face_distance(m)
    face = erode(m, round(2 * scale))
    q_lab = rgb_to_lab(query)  # the query's Lab, once for the colour and the skin maps
    d = transfer_colour(d, query, face, dist, reach * scale, query_lab=q_lab, holes=round(HOLES * scale), hold=hold)
    d, _ = match_sharpness(d, query, face, scale)
    trust, accept = skin_maps(query, d, face, query_lab=q_lab)
    # the seam one pair at a time: its Gaussian convolutions round differently in a batch
    d = torch.cat([correct_seam(query[i:i + 1], d[i:i + 1], m[i:i + 1], dist[i:i + 1], band, trust[i:i + 1],
                                accept[i:i + 1], scale, hold[i:i + 1]) for i in range(len(d))])
    # the hair's edge over the face: its first px let the face under it show through (no cut-out notch)
    under = hold * (1 - dist / (EDGE * scale)).clamp(0, 1)
    return m * query + (1 - m) * (under * query + (1 - under) * d), m
