"""The donor's hair kept where it falls over the query's face band (facefill.donor.cover, issue 31)."""

import cv2
import numpy as np
import pytest
import torch

from facefill.align.sidecar import read_sidecar
from facefill.data.io import read_image
from facefill.donor import composite
from facefill.donor.cover import cover_masks
from facefill.mask.refine import core_mask
from facefill.mask.region import face_mask

HAIR = (0.16, 0.10, 0.07)


@pytest.fixture
def biden(aligned_faces):
    """A real aligned face, its landmarks and hull mask, and a donor that is the same photo with a
    dark lock of hair painted from outside the hull down over its right temple (above the nose),
    and a dark patch on its nose (inside the core)."""
    image = read_image(aligned_faces / "biden.png").astype(np.float32) / 255
    lm = np.asarray(read_sidecar(aligned_faces / "biden.png")["landmarks"], np.float32)
    m = face_mask(lm, 128) > 0.5
    donor = image.copy()
    lock = np.zeros((128, 128), np.uint8)
    top, temple = lm[16] + (10, -14), lm[16] + (-4, 10)  # from beyond the hull down over the right temple
    cv2.line(lock, tuple(int(v) for v in top), tuple(int(v) for v in temple), 1, thickness=6)
    lock = lock.astype(bool)
    nose = np.zeros((128, 128), bool)
    x, y = (int(v) for v in lm[29])
    nose[y - 3:y + 3, x - 3:x + 3] = True
    donor[lock | nose] = HAIR
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None]
    return t(image), t(donor), torch.from_numpy(m.astype(np.float32))[None, None], torch.from_numpy(lm)[None], lock, nose


def test_the_donors_lock_over_the_temple_leaves_the_face_region_and_the_core_stays(biden):
    """The lock's pixels inside the hull's band leave the region; the core (the painted nose
    included) and the rest of the hull stay. Fails with cover_masks returning the masks as given."""
    query, donor, m, lm, lock, nose = biden
    kept = cover_masks(donor, m, lm, 4.5)[0, 0].numpy() > 0.5
    hull = m[0, 0].numpy() > 0.5
    core = core_mask(lm[0].numpy(), hull.shape) & hull
    band_lock = lock & hull & ~core
    assert band_lock.sum() > 40
    assert not (kept & ~hull).any() and core[nose].all() and kept[core].all()  # a subset; the core is never given up
    assert kept[band_lock].mean() < 0.2, kept[band_lock].mean()  # the lock's band pixels go
    elsewhere = hull & ~core & (cv2.dilate(lock.astype(np.uint8), np.ones((9, 9), np.uint8)) == 0)
    assert kept[elsewhere].mean() > 0.97  # the rest of the band stays (the edge smoothed)
    assert torch.equal(cover_masks(donor, m, lm, 0.0), m)  # off: as given


def test_fit_donors_keeps_the_donors_lock_over_the_temple(biden):
    """In the fit the lock stays dark over the temple and the region returned is the one the
    output keeps the face over. Fails with cover=0 (the query's temple skin is pasted over it:
    0.76 against 0.22, the lock painted at 0.11)."""
    query, donor, m, lm, lock, _ = biden
    hull = m[0, 0].numpy() > 0.5
    core = core_mask(lm[0].numpy(), hull.shape) & hull
    band_lock = lock & hull & ~core
    valid = torch.ones_like(m)
    out, region = composite.fit_donors(query, m, lm, donor, valid, lm, cover=4.5)
    plain, whole = composite.fit_donors(query, m, lm, donor, valid, lm, cover=0.0)
    assert torch.equal(whole, m)
    inner = cv2.distanceTransform((region[0, 0].numpy() < 0.5).astype(np.uint8), cv2.DIST_L2, 5) >= composite.EDGE
    lum = lambda x: x[0].mean(0).numpy()[band_lock & inner]  # past the hair edge's soft px
    assert lum(out).mean() < 0.3 and lum(plain).mean() > 0.4, (lum(out).mean(), lum(plain).mean())
    r = region[0, 0].numpy() > 0.5
    assert torch.allclose(out[0][:, torch.from_numpy(r)], query[0][:, torch.from_numpy(r)], atol=1e-6)


def test_region_hull_turns_the_cover_off_and_auto_keeps_it():
    """``--region hull`` asks for the plain hull kept whole: the donor's hair is not laid over it."""
    from facefill.fill.donor import DonorFill
    from facefill.options import HallucinateOptions

    def cover(region):
        return DonorFill.from_options(HallucinateOptions(method="donor", donors="bank", region=region)).donor_settings.cover

    assert cover("hull") == 0.0 and cover("auto") == cover("refined") == 4.5


def test_the_hair_laid_over_the_face_gets_no_colour_or_seam_weight_next_to_it():
    """Pixels held (the donor's hair over the face's band) get neither the colour step's weight
    next to the face nor the seam's always-blended 2 px ring: without ``hold`` both lift the hair
    next to the face into a pale edge (fails with hold ignored in either step)."""
    from facefill.donor.colour import skin_weight
    from facefill.donor.seam import face_distance, seam_correction

    s = 32
    m = torch.zeros(1, 1, s, s)
    m[..., :16] = 1  # the face: the left half
    hold = torch.zeros_like(m)
    hold[..., 16:20] = 1  # hair laid over the face's band, next to it
    dist = face_distance(m)
    hair = torch.tensor([20.0, 5.0, 5.0])[None, :, None, None].expand(1, 3, s, s)  # Lab: dark, not skin-coloured
    mean, std = torch.tensor([[70.0, 15.0, 15.0]]), torch.tensor([[5.0, 3.0, 3.0]])
    held = hold[0, 0] > 0
    assert skin_weight(hair, mean, std, dist, 24.0)[0, 0][held].mean() > 0.3
    assert skin_weight(hair, mean, std, dist, 24.0, hold=hold)[0, 0][held].max() < 0.01
    query, donor = torch.full((1, 3, s, s), 0.8), torch.full((1, 3, s, s), 0.1)
    accept = torch.zeros_like(m)  # the donor is hair everywhere
    ring = held & (dist[0, 0] <= 2)
    assert seam_correction(query, donor, m, dist, 10, accept=accept)[0, :, ring].mean() > 0.2
    assert seam_correction(query, donor, m, dist, 10, accept=accept, hold=hold)[0, :, ring].abs().max() < 1e-6
