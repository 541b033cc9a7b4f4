"""Fixtures of the CLI tests: small folders as each command's input."""

import shutil

import pytest
from typer.testing import CliRunner

from facefill.cli.app import app


@pytest.fixture
def raw(tmp_path, data_dir):
    """Two raw photos (one face each)."""
    d = tmp_path / "raw"
    d.mkdir()
    shutil.copy(data_dir / "faces" / "obama.jpg", d / "obama.jpg")
    shutil.copy(data_dir / "faces" / "biden.jpg", d / "biden.jpg")
    return d


@pytest.fixture
def masked(faces_copy, tmp_path):
    """The output of 'facefill mask' for the aligned test faces (5 faces)."""
    out = tmp_path / "masked"
    assert CliRunner().invoke(app, ["mask", str(faces_copy), str(out)]).exit_code == 0
    return out
