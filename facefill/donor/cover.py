"""The donor's hair kept where it falls over the query's face band (issue 31's temple flaw).

The query's face region (the refined region, :mod:`facefill.mask.refine`) is pasted over each
fitted donor. Where the donor's own hair fell over its temples or forehead, that paste cut the
hair along the face's edge: strands that stop short on a temple, and the skin-coloured gaps
between them carried onto the face's colour, an orange outline around the upper face.

Here the warped donor goes through the refined region's hair rule once more, with the query's
landmarks (the warp put the donor's jaw, brows and eyes there): band pixels above the nose's base
far from the *donor's* cheek colour that reach the region's edge, opened, smoothed and made one
region as there (:func:`facefill.mask.refine.refine_face_mask` with no background, jaw or core
rules). Those pixels leave the face region: the donor's strands lie over the query's temple as
they lay over the donor's. The core (eyes, brows, nose, mouth, glasses) is never given up, and
the face is still kept bit for bit over the region that remains, which is the mask written
beside the output. OpenCV on the CPU, one pair at a time (about 2 ms at 128 px).
"""

from __future__ import annotations

import numpy as np
import torch

from facefill.data.tensors import to_uint8
from facefill.mask.refine import RefineSettings, refine_face_mask


def cover_masks(donors: torch.Tensor, masks: torch.Tensor, landmarks: torch.Tensor, colour: float) -> torch.Tensor:
    """``masks (B, 1, S, S)`` in {0, 1} without the band pixels where the warped donor's hair lies.

    ``donors (B, 3, S, S)`` in [0, 1]: the donors warped onto the queries (before any colour
    change: the hair's contrast against the donor's own skin is what is measured);
    ``landmarks (B, 68, 2)`` the queries' pixels; ``colour``: Mahalanobis distance in Lab from
    the donor's cheeks over which a band pixel is hair (:attr:`RefineSettings.colour`; 0: off,
    the masks are returned as they are). Returns a subset of each mask, on its device and dtype."""
    if colour <= 0 or not len(masks):
        return masks
    settings = RefineSettings(colour=colour, jaw=0.0, core_background=0.0)
    images = to_uint8(donors, signed=False)
    region = masks[:, 0].cpu().numpy() > 0.5
    lms = landmarks.detach().cpu().numpy()
    person = np.ones(region.shape[1:], np.float32)  # no background rule: only the donor's hair
    out = np.stack([refine_face_mask(im, m, lm, person, settings) > 127 for im, m, lm in zip(images, region, lms)])
    return torch.from_numpy(out)[:, None].to(masks)
