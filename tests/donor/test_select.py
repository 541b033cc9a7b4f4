"""Donor choice (facefill/donor/select.py): the partial sort gives the full sort's picks."""

from __future__ import annotations

import numpy as np
import pytest

from facefill.donor import select
from facefill.donor.settings import DonorSettings


class Bank:
    """The two arrays choose reads, as a donor source holds them (aligned at 128 px)."""

    size = 128

    def __init__(self, descriptors, signature):
        self.descriptors, self.signature = descriptors, signature

    def __len__(self):
        return len(self.descriptors)


@pytest.mark.parametrize("seed", range(5))
def test_cheapest_is_the_prefix_of_the_stable_sort_ties_and_infinities_included(seed):
    rng = np.random.default_rng(seed)
    row = rng.integers(0, 40, 3000).astype(np.float32)  # many ties
    row[rng.choice(3000, 500, replace=False)] = np.inf
    row[rng.choice(3000, 3, replace=False)] = -np.inf
    full = np.argsort(row, kind="stable")
    for m in (1, 7, 50, 2499, 2990):
        got = select.cheapest(row, m)
        assert len(got) >= m
        assert np.array_equal(got, full[:len(got)])
        assert row[got[-1]] == row[full[m - 1]]  # everything tied with the m-th is in


def test_a_bank_full_of_copies_gets_the_full_sorts_picks(monkeypatch):
    """A bank where every face is there 60 times (copies are skipped by _distinct): the cheapest
    few hold fewer distinct donors than the pool, so choose must look further, as the full sort does."""
    rng = np.random.default_rng(0)
    desc, sig = rng.normal(size=(40, 128)).astype(np.float32), rng.normal(size=(40, 192)).astype(np.float32)
    copies = np.tile(np.arange(40), 60)
    bank = Bank(desc[copies], sig[copies])
    cost = (rng.random((6, len(copies))).astype(np.float32) * 0.01 + rng.random(40).astype(np.float32)[copies])
    cost[2, ::3] = np.inf
    settings = DonorSettings(variants=3)
    fast, why = select.choose(bank, cost, settings, list(range(6)))
    monkeypatch.setattr(select, "cheapest", lambda row, m: np.argsort(row, kind="stable"))
    slow, why_slow = select.choose(bank, cost, settings, list(range(6)))
    assert np.array_equal(fast, slow) and why == why_slow
    assert (fast >= 0).all() and all(len(set(copies[r])) == 3 for r in fast)  # three different faces each


class Rows(Bank):
    """Every array costs() reads: 60 donors, the first 30 men (p_male 0.99), the rest women (0.01);
    the women a little further from the query in descriptor space than the men."""

    def __init__(self, rng):
        n = 60
        query = rng.normal(size=128).astype(np.float32)
        far = np.r_[np.full(30, 0.3), np.full(30, 0.45)].astype(np.float32)[:, None]
        noise = rng.normal(size=(n, 128)).astype(np.float32)
        super().__init__(query + far * noise / np.linalg.norm(noise, axis=1, keepdims=True),
                         rng.normal(size=(n, 192)).astype(np.float32))
        self.query = query
        self.landmarks = np.tile(rng.uniform(20, 100, (1, 68, 2)).astype(np.float32), (n, 1, 1))
        self.pose = np.zeros((n, 2), np.float32)
        self.skin = np.zeros((n, 6), np.float32)
        self.padding = np.zeros(n, np.float32)
        self.silhouette = np.zeros((n, 256), np.float32)
        self.p_male = np.r_[np.full(30, 0.99), np.full(30, 0.01)].astype(np.float32)
        self.age = np.full(n, 30.0, np.float32)


def test_an_unsure_query_takes_the_gender_of_its_closest_donors():
    """A man the gender network is unsure of (p_male 0.3): his closest donors are men, so no variant
    may be a woman; without the consensus he had no gender term and women were possible."""
    rng = np.random.default_rng(1)
    bank = Rows(rng)
    settings = DonorSettings(variants=3)
    lm = bank.landmarks[:1]
    args = (bank, bank.query[None], lm, np.zeros((1, 6), np.float32), settings)
    cost = select.costs(*args, (np.array([0.3], np.float32), np.array([30.0], np.float32)))
    assert np.isinf(cost[0, 30:]).all() and np.isfinite(cost[0, :30]).all()
    picks, _ = select.choose(bank, cost, settings, [0])
    assert (picks < 30).all()
    # a sure query keeps its own answer, whatever its donors say
    sure = select.consensus_gender(bank, np.repeat(cost, 2, 0), np.array([0.05, 0.5], np.float32), settings)
    assert sure[0] == np.float32(0.05) and sure[1] == np.float32(0.99)
