"""``facefill bank index|info``, ``FACEFILL_DONORS``, and the index built only after the output checks."""

import os
import shutil

import pytest
from typer.testing import CliRunner

from facefill.cli.app import app

runner = CliRunner()


def _bank_files(bank):
    return sorted(p for p in bank.glob("*.png") if not p.name.endswith(".valid.png"))


def test_index_ahead_then_info_follows_added_changed_and_removed_files(bank_copy, cache):
    r = runner.invoke(app, ["bank", "info", str(bank_copy)])
    assert r.exit_code == 0, r.output
    assert "24 images of 128x128" in r.output and "index: not indexed" in r.output
    assert not cache.exists() or not any(cache.iterdir())  # info builds nothing

    r = runner.invoke(app, ["bank", "index", str(bank_copy)])
    assert r.exit_code == 0, r.output
    assert "24 donors" in r.output and "index built and cached" in r.output
    r = runner.invoke(app, ["bank", "info", str(bank_copy)])
    assert "index: fresh" in r.output and "donors: 24; skipped: 0" in r.output, r.output
    assert "padding:" in r.output and "licence" not in r.output

    first, second, third = _bank_files(bank_copy)[:3]
    shutil.copy(first, bank_copy / "added.png")
    shutil.copy(first.with_suffix(".json"), bank_copy / "added.json")
    os.utime(second, (1, 1))
    for p in bank_copy.glob(third.stem + ".*"):
        p.unlink()
    (bank_copy / "junk.png").write_bytes(b"not a png")
    r = runner.invoke(app, ["bank", "info", str(bank_copy)])
    assert "index: stale: 2 added, 1 changed, 1 removed" in r.output, r.output

    r = runner.invoke(app, ["bank", "index", str(bank_copy)])
    assert r.exit_code == 0, r.output
    assert "3 files read, 22 donors from the cache" in r.output and "24 donors" in r.output
    r = runner.invoke(app, ["bank", "info", str(bank_copy)])
    assert "index: fresh" in r.output and "donors: 24; skipped: 1" in r.output
    assert "skipped 1: no alignment sidecar" in r.output and "(e.g. junk.png)" in r.output


def test_info_names_celeba_terms_for_a_celeba_bank(bank_copy, tmp_path, cache):
    celeba = tmp_path / "celeba-aligned"
    celeba.mkdir()
    for i, p in enumerate(_bank_files(bank_copy), 1):
        for part in bank_copy.glob(p.stem + ".*"):
            (celeba / part.name.replace(p.stem, f"{i:06d}")).symlink_to(part)
    r = runner.invoke(app, ["bank", "info", str(celeba)])
    assert r.exit_code == 0, r.output
    assert "CelebA's terms apply, non-commercial research only" in r.output


def test_bank_commands_need_a_bank_or_facefill_donors(bank_copy, cache, monkeypatch, tmp_path):
    monkeypatch.delenv("FACEFILL_DONORS", raising=False)
    r = runner.invoke(app, ["bank", "info"])
    assert r.exit_code == 2 and "FACEFILL_DONORS" in r.output
    monkeypatch.setenv("FACEFILL_DONORS", str(bank_copy))
    r = runner.invoke(app, ["bank", "info"])
    assert r.exit_code == 0 and str(bank_copy) in r.output
    r = runner.invoke(app, ["bank", "info", str(tmp_path / "missing")])
    assert r.exit_code == 1 and "is not a folder" in r.output and "Traceback" not in r.output


def test_facefill_donors_is_the_default_bank_and_outputs_are_checked_before_the_index_is_built(
        masked_men, bank_copy, cache, monkeypatch, tmp_path):
    monkeypatch.setenv("FACEFILL_DONORS", str(bank_copy))
    taken = tmp_path / "a-file"
    taken.write_text("not a folder")
    r = runner.invoke(app, ["hallucinate", str(masked_men), str(taken), "--method", "donor"])
    assert r.exit_code == 1 and "not a folder" in r.output, r.output
    assert not cache.exists() or not any(cache.iterdir())  # refused before any index was built

    out = tmp_path / "out"
    r = runner.invoke(app, ["hallucinate", str(masked_men), str(out), "--method", "donor"])
    assert r.exit_code == 0, r.output
    assert f"24 donors in {bank_copy}" in r.output and any(out.glob("*.png"))


@pytest.mark.parametrize("args", [["bank", "--help"], ["bank", "index", "--help"], ["bank", "info", "--help"]])
def test_help(args):
    r = runner.invoke(app, args)
    assert r.exit_code == 0 and "FACEFILL_DONORS" in r.output


def test_facefill_donors_fills_only_a_missing_bank_of_the_donor_method(monkeypatch, tmp_path):
    from facefill.errors import UsageError
    from facefill.options import HallucinateOptions

    monkeypatch.delenv("FACEFILL_DONORS", raising=False)
    with pytest.raises(UsageError, match="--donors BANK .*FACEFILL_DONORS"):
        HallucinateOptions(method="donor")
    monkeypatch.setenv("FACEFILL_DONORS", str(tmp_path / "env-bank"))
    assert HallucinateOptions(method="donor").donors == tmp_path / "env-bank"
    assert HallucinateOptions(method="donor", donors=tmp_path / "given").donors == tmp_path / "given"
    assert HallucinateOptions(method="model").donors is None  # no other method is handed a bank
    monkeypatch.setenv("FACEFILL_DONORS", "")
    with pytest.raises(UsageError):
        HallucinateOptions(method="donor")
