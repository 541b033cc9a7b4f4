"""Donor tests: a copy of the shared donor bank (tests/conftest.py) and an empty index cache."""

import shutil
from pathlib import Path

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
