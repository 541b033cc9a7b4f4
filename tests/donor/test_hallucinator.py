"""Donor choice and fitting on real faces: bit-exact faces, no self-donors, distinct variants."""

import numpy as np
import pytest
import torch

from facefill.donor import DonorHallucinator, DonorSettings, load_index, name_seed
from facefill.donor.composite import erode, fill_padding, fit_donors, seam_correction
from facefill.donor.select import choose, costs
from facefill.errors import ConfigError


@pytest.fixture(scope="module")
def embedder():
    from facefill.models.embedders import FaceEmbedder

    return FaceEmbedder()


@pytest.fixture(scope="module")
def index(donor_bank, tmp_path_factory, embedder):
    return load_index(donor_bank, embedder=embedder, cache=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def queries(aligned_faces):
    return _queries(aligned_faces, ("obama2", "biden"))


def _queries(aligned_faces, names):
    """Masked queries (the face only) for two of the bank's photos: (images, masks, landmarks).
    Two men: the bank's only woman is astronaut, whose copies are never her donors, so a masked
    astronaut has no donor of her gender (tests below)."""
    from facefill.align.sidecar import read_sidecar
    from facefill.data.io import read_image
    from facefill.mask.region import face_mask

    ims, ms, lms = [], [], []
    for name in names:
        path = aligned_faces / f"{name}.png"
        lm = np.asarray(read_sidecar(path)["landmarks"], np.float32)
        m = face_mask(lm, 128)
        ims.append(np.where(m[..., None] > 0.5, read_image(path), 0).astype(np.uint8))
        ms.append(m), lms.append(lm)
    return np.stack(ims), np.stack(ms), np.stack(lms)


def test_the_query_and_its_copies_are_never_donors(index, aligned_faces, embedder):
    h = DonorHallucinator(index, DonorSettings(variants=5, gender_margin=0.5), embedder)  # no gender filter
    picks = h.choose(*_queries(aligned_faces, ("obama2", "astronaut")), seeds=[1, 2])
    for row, who in zip(picks, ("obama2", "astronaut")):
        names = [index.names[i] for i in row]
        assert not any(n.startswith(who + "_") for n in names), names


def test_a_query_masked_with_the_refined_region_is_described_as_donors_are(index, aligned_faces, embedder):
    """hallucinate masks aligned crops with the refined region, which drops the jaw's rim; the
    query is still described as every donor is (its unmasked crop under the plain hull), so its
    own copy in the bank is at ~0 descriptor distance and none of its copies is a donor. Described
    under the refined mask, astronaut was 0.23 from her own copy, near the 0.25 duplicate line."""
    from facefill.data.io import read_image
    from facefill.donor import as_donors_are
    from facefill.donor.describe import describe
    from facefill.mask.refine import refine_face_masks

    names = ("obama2", "astronaut")
    _, hull, lms = _queries(aligned_faces, names)
    raw = np.stack([read_image(aligned_faces / f"{n}.png") for n in names])
    refined = (np.stack(refine_face_masks(list(raw), list(hull), list(lms))) > 127).astype(np.float32)
    assert (refined < hull).any()  # the refined region is smaller: the case at hand
    masked = np.where(refined[..., None] > 0.5, raw, 0).astype(np.uint8)
    own = np.stack([index.descriptors[index.names.index(f"{n}_plain.png")] for n in names])
    seen = describe(*as_donors_are(masked, refined, lms, list(raw)), embedder)
    assert np.linalg.norm(seen - own, axis=1).max() < 0.02
    h = DonorHallucinator(index, DonorSettings(variants=5, gender_margin=0.5), embedder)
    picks = h.choose(masked, refined, lms, seeds=[1, 2], unmasked=list(raw))
    for row, who in zip(picks, names):
        assert not any(index.names[i].startswith(who + "_") for i in row)


def test_faces_are_bit_exact_and_variants_come_from_different_donors(index, queries, embedder):
    images, masks, lms = queries
    h = DonorHallucinator(index, DonorSettings(variants=5), embedder)
    res = h.run(images, masks, lms, seeds=[1, 2])
    out, picks = res.out, res.picks
    assert out.shape == (2, 5, 128, 128, 3) and out.dtype == np.uint8
    face = masks > 0.5
    assert res.regions.shape == (2, 5, 128, 128) and not (res.regions & ~face[:, None]).any()  # the hair cover narrows only
    for q in range(2):
        assert len(set(picks[q].tolist())) == 5
        for k in range(5):
            kept = res.regions[q, k]
            assert kept.sum() >= 0.8 * face[q].sum()
            np.testing.assert_array_equal(out[q, k][kept], images[q][kept])
        context = [out[q, k][~face[q]].astype(int) for k in range(5)]
        assert all(np.abs(a - b).mean() > 5 for i, a in enumerate(context) for b in context[i + 1:])
        assert (out[q][:, ~face[q]] > 0).mean() > 0.95  # a whole image: no black context left


def test_the_same_seed_gives_the_same_donors_and_another_seed_other_variants(index, queries, embedder):
    h = DonorHallucinator(index, DonorSettings(variants=4, seed=3), embedder)
    a, b = h.choose(*queries, seeds=[10, 11]), h.choose(*queries, seeds=[10, 11])
    np.testing.assert_array_equal(a, b)
    others = [h.choose(*queries, seeds=[s, s + 1]) for s in range(20, 26)]
    assert all((o[:, 0] == a[:, 0]).all() for o in others)  # the first variant is always the best donor
    assert any((o[:, 1:] != a[:, 1:]).any() for o in others)


def test_cost_prefers_the_same_person_and_refuses_too_few_donors(index, queries, embedder):
    from facefill.donor.describe import describe, face_stats as _face_stats

    images, masks, lms = queries
    desc = describe(images, lms, masks, embedder)
    c = costs(index, desc, lms, _face_stats(images, masks), DonorSettings())
    best = index.names[int(np.argmin(c[0]))]
    assert best.startswith("obama_")  # obama2's masked face: another photo of Obama fits best
    assert np.isinf(c[0, [i for i, n in enumerate(index.names) if n.startswith("obama2_")]]).all()
    picks, why = choose(index, np.where(np.arange(24)[None] < 2, 0.0, np.inf).astype(np.float32),
                        DonorSettings(variants=3), [0])
    assert (picks == -1).all() and "2 usable donors" in why[0]


def test_name_seed_is_stable():
    assert name_seed("a/b.png") == name_seed("a/b.png") != name_seed("a/c.png")
    assert 0 <= name_seed("x") < 2 ** 63


@pytest.mark.parametrize("bad", [dict(variants=0), dict(variants=65), dict(identity=float("nan")), dict(band=0),
                                 dict(skin=-1.0)])
def test_settings_refuse_bad_values(bad):
    with pytest.raises(ConfigError):
        DonorSettings(**bad)


def test_fill_padding_keeps_valid_pixels_and_does_not_mirror_them():
    img = (np.arange(10, dtype=np.float32)[None, :, None].repeat(4, 0).repeat(3, 2)) / 10
    valid = np.ones((4, 10), bool)
    valid[:, :3] = False
    out = fill_padding(img, valid)
    np.testing.assert_array_equal(out[:, 3:], img[:, 3:])
    assert not np.allclose(out[0, :3, 0], [0.6, 0.5, 0.4])  # not mirrored about column 3
    assert (np.abs(out[:, 2] - 0.3) < 0.1).all()  # next to the edge: near the edge's own value
    assert out[:, :3].min() >= 0.3 - 0.05 and out[:, :3].max() <= 0.9  # a smooth extension of the photo


def test_seam_correction_removes_the_step_at_the_edge_and_vanishes_past_the_band():
    size, band = 64, 8
    m = torch.zeros(1, 1, size, size)
    m[..., 20:44, 20:44] = 1
    query, donor = torch.full((1, 3, size, size), 0.6), torch.full((1, 3, size, size), 0.3)
    from facefill.donor.composite import distance_outside

    dist = torch.from_numpy(distance_outside(m[:, 0].numpy()))[:, None]
    c = seam_correction(query, donor, m, dist, band)
    assert (c * m).abs().max() == 0
    assert torch.allclose(c[0, :, 32, 19], torch.full((3,), 0.3), atol=0.02)  # just outside: the full difference
    assert c[0, :, 32, 20 - band - 1].abs().max() == 0  # beyond the band: untouched
    inner = erode(m, 2)
    assert inner.sum() == 20 * 20


def test_colour_is_carried_to_the_donor_skin_near_the_face(index, queries, embedder):
    """A donor tinted blue-ish gets the query's colour on its forehead, not on far background."""
    images, masks, lms = queries
    q = torch.from_numpy(images[:1]).permute(0, 3, 1, 2).float() / 255
    m = torch.from_numpy(masks[:1])[:, None]
    d = (q * torch.tensor([0.8, 0.9, 1.2])[None, :, None, None]).clamp(0, 1)
    d = torch.where(m > 0.5, d, torch.full_like(d, 0.5))  # donor: the face tinted, grey all around
    out, _ = fit_donors(q, m, torch.from_numpy(lms[:1]), d, torch.ones_like(m), torch.from_numpy(lms[:1]))
    assert torch.equal(out * m, q * m)
    corner = out[0, :, :8, :8].mean((1, 2))
    assert torch.allclose(corner, torch.full((3,), 0.5), atol=0.03)  # far grey background kept its colour


def test_an_outline_unlike_the_best_donors_costs_more():
    """Donor 1 is the second-nearest face but its outline (short hair, say) is unlike that of
    the other near donors: with the silhouette term it drops behind them."""
    from pathlib import Path

    from facefill.donor.index import DonorIndex

    n = 8
    desc = np.zeros((n, 128), np.float32)
    desc[:, 0] = np.arange(n) * 0.05 + 0.3  # donor i is 0.3 + 0.05 i from the query
    outline = np.zeros((n, 256), np.float32)
    outline[:, :128] = 1.0
    outline[1] = 0.0
    outline[1, 200:] = 1.0
    lm = np.zeros((n, 68, 2), np.float32)
    index = DonorIndex(Path("."), 128, [f"d{i}.png" for i in range(n)], lm, desc, np.zeros((n, 6), np.float32),
                       np.zeros((n, 2), np.float32), np.zeros(n, np.float32), np.zeros((n, 192), np.float32), outline)
    q = (np.zeros((1, 128), np.float32), np.zeros((1, 68, 2), np.float32), np.zeros((1, 6), np.float32))
    plain = costs(index, *q, DonorSettings(silhouette=0.0))[0]
    with_outline = costs(index, *q, DonorSettings())[0]
    assert np.argsort(plain)[:3].tolist() == [0, 1, 2]
    assert np.argsort(with_outline)[:3].tolist() == [0, 2, 3]
    np.testing.assert_allclose(with_outline[[0, 2, 3]], plain[[0, 2, 3]])  # the shared outline costs nothing


def _synthetic(n, p_male, age, desc=None):
    from pathlib import Path

    from facefill.donor.index import DonorIndex

    d = np.zeros((n, 128), np.float32) if desc is None else desc
    if desc is None:
        d[:, 0] = np.arange(n) * 0.05 + 0.3  # donor i is 0.3 + 0.05 i from the query
    sig = np.random.default_rng(0).random((n, 192)).astype(np.float32)
    return DonorIndex(Path("."), 128, [f"d{i}.png" for i in range(n)], np.zeros((n, 68, 2), np.float32), d,
                      np.zeros((n, 6), np.float32), np.zeros((n, 2), np.float32), np.zeros(n, np.float32), sig,
                      np.zeros((n, 256), np.float32), np.asarray(p_male, np.float32), np.asarray(age, np.float32))


def _q():
    return np.zeros((1, 128), np.float32), np.zeros((1, 68, 2), np.float32), np.zeros((1, 6), np.float32)


def test_no_variant_crosses_gender_and_an_unsure_query_takes_its_nearest_donors_gender():
    """The nearest donors are women; a sure man gets only men in every variant. An unsure query
    (p_male 0.5) takes the gender of its 5 nearest donors (median p_male 0.1: a woman); among
    unsure donors it stays unsure and is chosen for as before the networks."""
    p = [0.0, 0.05, 0.1, 0.3, 0.9, 0.95, 0.99, 1.0, 0.97, 0.93]
    index = _synthetic(10, p, [30.0] * 10)
    s = DonorSettings(variants=3, silhouette=0.0)
    man = costs(index, *_q(), s, (np.array([0.98]), np.array([30.0])))
    picks, why = choose(index, man, s, [1])
    assert why == [None] and all(p[i] >= 0.5 for i in picks[0]), picks
    assert np.isinf(man[0, :4]).all()
    unsure = costs(index, *_q(), s, (np.array([0.5]), np.array([30.0])))
    assert np.isinf(unsure[0, 4:]).all() and np.isfinite(unsure[0, :4]).all()
    undecided = _synthetic(10, [0.5] * 10, [30.0] * 10)
    np.testing.assert_allclose(costs(undecided, *_q(), s, (np.array([0.5]), np.array([30.0]))), costs(undecided, *_q(), s))
    woman = costs(index, *_q(), s, (np.array([0.02]), np.array([30.0])))
    assert choose(index, woman, s, [1])[0][0, 0] == 0 and np.isinf(woman[0, 4:]).all()


def test_age_band_keeps_donors_near_the_querys_age_unless_none_is():
    ages = [70.0, 68.0, 25.0, 28.0, 30.0, 32.0, 75.0, 27.0]
    index = _synthetic(8, [1.0] * 8, ages)
    s = DonorSettings(variants=2, silhouette=0.0)
    young = costs(index, *_q(), s, (np.array([0.99]), np.array([26.0])))
    picks, _ = choose(index, young, s, [3])
    assert all(abs(ages[i] - 26) <= 20 for i in picks[0]) and np.isinf(young[0, [0, 1, 6]]).all()
    old_index = _synthetic(4, [1.0] * 4, [25.0, 26.0, 27.0, 28.0])
    old = costs(old_index, *_q(), s, (np.array([0.99]), np.array([70.0])))
    assert np.isfinite(old).all()  # nobody within the band: the cost term alone, never no donor


def test_pins_exclusions_and_copies_in_the_bank():
    desc = np.zeros((6, 128), np.float32)
    desc[:, 0] = [0.3, 0.3, 0.4, 0.5, 0.6, 0.7]  # donors 0 and 1: the same photo twice
    index = _synthetic(6, [1.0] * 6, [30.0] * 6, desc)
    index.signature[1] = index.signature[0]
    s = DonorSettings(variants=3, silhouette=0.0, diversity=0.0)  # nothing but the dedupe keeps the copy out
    cost = costs(index, *_q(), s, (np.array([0.99]), np.array([30.0])))
    for seed in range(20):
        picks, _ = choose(index, cost, s, [seed])
        assert picks[0, 0] == 0 and 1 not in picks[0]  # the copy is never a second "variant"
    assert choose(index, cost, s, [5], pins=[4])[0][0, 0] == 4
    allowed = np.array([False, False, True, True, True, True])
    excl = costs(index, *_q(), s, (np.array([0.99]), np.array([30.0])), allowed)
    assert not set(choose(index, excl, s, [5])[0][0].tolist()) & {0, 1}


def test_a_woman_never_gets_a_mans_context(index, aligned_faces, embedder):
    """Real networks on real faces: the bank's only woman is the astronaut, whose copies are never
    her donors. Her masked face (gender from the refilled face) and her unmasked crop both fail
    alone rather than take a man's context; with biden's copies marked female she gets only them."""
    from facefill.align.sidecar import read_sidecar
    from facefill.data.io import read_image
    from facefill.mask.region import face_mask

    path = aligned_faces / "astronaut.png"
    real = read_image(path)
    lm = np.asarray(read_sidecar(path)["landmarks"], np.float32)[None]
    m = face_mask(lm[0], 128)[None]
    img = np.where(m[..., None] > 0.5, real, 0).astype(np.uint8)
    h = DonorHallucinator(index, DonorSettings(variants=2), embedder)
    p, _ = h.gender_age(img, m, lm, [real])
    assert p[0] < 0.2
    for unmasked in (None, [real]):
        picks, why, *_ = h.choose(img, m, lm, [0], unmasked, full=True)
        assert (picks == -1).all() and "other gender" in why[0]
    from dataclasses import replace

    fake = replace(index, p_male=np.where([n.startswith("biden_") for n in index.names], 0.0, index.p_male))
    picks = DonorHallucinator(fake, DonorSettings(variants=2), embedder).choose(img, m, lm, [0], [real])
    assert all(fake.names[i].startswith("biden_") for i in picks[0]), [fake.names[i] for i in picks[0]]


def test_a_donors_baked_streaks_are_found_once_and_fit_as_warp_donors_finds_them(index, queries, embedder, monkeypatch):
    """``DonorHallucinator.photo`` takes a donor's baked edge streaks out of its validity once and
    keeps them; fitting with that validity and ``streaks=False`` gives the same output, bit for
    bit, as fitting with the photo's own validity and the streaks found in the fit."""
    import facefill.donor as donor_pkg
    from facefill.data.tensors import from_uint8, masks_from_numpy

    h = DonorHallucinator(index, DonorSettings(variants=1), embedder)
    image, valid = index.read(0)
    streaked = image.copy()
    streaked[:, :20] = streaked[:, 20:21]  # the left 20 columns repeat column 20: a baked streak
    monkeypatch.setattr(index, "read", lambda i: (streaked, valid))
    calls = []
    found = donor_pkg.photo_pixels
    monkeypatch.setattr(donor_pkg, "photo_pixels", lambda *a, **k: calls.append(1) or found(*a, **k))
    img, kept = h.photo(0)
    assert kept[:, :12].mean() < valid[:, :12].mean() - 0.3  # most of the streak's rows are out
    assert (kept <= valid).all()  # only taken out, never added
    h.photo(0)
    assert len(calls) == 1  # found once, then kept
    images, masks, lms = queries
    q = from_uint8(images[:1], signed=False)
    m = (masks_from_numpy(masks[:1]) > 0.5).float()
    lm = torch.from_numpy(lms[:1])
    d_lm = torch.from_numpy(index.landmarks[:1])
    d = from_uint8(streaked[None], signed=False)
    ours = fit_donors(q, m, lm, d, masks_from_numpy(kept[None]), d_lm, streaks=False)[0]
    theirs = fit_donors(q, m, lm, d, masks_from_numpy(valid[None]), d_lm)[0]
    assert torch.equal(ours, theirs)
