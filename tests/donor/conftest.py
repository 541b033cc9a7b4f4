"""Donor tests: a copy of the shared donor bank (tests/conftest.py) and an empty index cache."""

import shutil
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def bank_copy(donor_bank, tmp_path) -> Path:
    dst = tmp_path / "bank"
    shutil.copytree(donor_bank, dst)
    return dst


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty index cache for this test (FACEFILL_CACHE points at it)."""
    root = tmp_path / "cache"
    monkeypatch.setenv("FACEFILL_CACHE", str(root))
    return root / "donors"


@pytest.fixture
def masked_men(masked, tmp_path) -> Path:
    """The masked test faces without the astronaut: the shared bank's only woman, whose copies are
    never her donors, so she has no donor of her gender and fails (test_cli checks that)."""
    dst = tmp_path / "masked_men"
    shutil.copytree(masked, dst, ignore=shutil.ignore_patterns("astronaut*"))
    return dst


@pytest.fixture
def kept_face():
    """:func:`_kept_face`: the face region one donor output keeps."""
    return _kept_face


def _kept_face(out: Path, name: str, input_face: np.ndarray) -> np.ndarray:
    """``(S, S) bool``: the face region output ``out/name`` keeps bit for bit: the mask written
    beside it where the donor's hair narrowed it (:mod:`facefill.donor.cover`), checked to be a
    subset of the input's face ``input_face`` holding nearly all of it, else the input's."""
    from facefill.data.io import MASK_SUFFIX, companion_path, read_image

    beside = companion_path(out / name, MASK_SUFFIX)
    if not beside.is_file():
        return input_face
    face = read_image(beside)[..., 0] > 127
    assert not (face & ~input_face).any() and face.sum() >= 0.8 * input_face.sum(), name
    return face
