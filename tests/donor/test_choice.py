"""Donor choice end to end (issue 31 items 4 and 6, issue 33 items 7 and 14): gender, provenance,
the user's say (exclude, pin), the contact sheet of every variant, batch-size independence, and
inputs that fail alone."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from facefill.cli.app import app
from facefill.data.io import read_image

runner = CliRunner()


def _run(src, out, bank, *extra):
    return runner.invoke(app, ["hallucinate", str(src), str(out), "--method", "donor", "--donors", str(bank), *extra])


def _rows(out):
    lines = (out / "donors.tsv").read_text().splitlines()
    head = lines[0].split("\t")
    return [dict(zip(head, ln.split("\t"))) for ln in lines[1:]]


def test_a_woman_without_a_woman_donor_fails_alone_and_every_output_names_its_donor(masked, donor_bank, cache, tmp_path):
    """The bank's only woman is the astronaut, whose copies are never her donors: her face fails
    (exit 3, failures.tsv) rather than take a man's context; the men's outputs are all written and
    donors.tsv names each output's donor, every one a man."""
    out = tmp_path / "out"
    r = _run(masked, out, donor_bank, "--variants", "2")
    assert r.exit_code == 3, r.output
    failures = (out / "failures.tsv").read_text()
    assert "astronaut.png" in failures and "other gender" in failures
    assert not list(out.glob("astronaut*"))
    rows = _rows(out)
    outputs = sorted(p.name for p in out.glob("*_v*.png") if not p.name.endswith(".mask.png"))  # narrowed masks beside
    assert sorted(r["output"] for r in rows) == outputs and len(outputs) == 8
    assert all(float(r["donor_p_male"]) >= 0.5 and float(r["p_male"]) > 0.8 for r in rows)
    assert all((donor_bank / r["donor"]).is_file() for r in rows)
    assert {r["variant"] for r in rows} == {"0", "1"}


def test_exclude_and_pin_steer_the_choice_and_are_recorded(masked_men, donor_bank, cache, tmp_path):
    first = tmp_path / "first"
    assert _run(masked_men, first, donor_bank).exit_code == 0
    used = sorted({r["donor"] for r in _rows(first)})
    excl = tmp_path / "exclude.txt"
    excl.write_text("# donors we do not want\n" + "\n".join(used) + "\n")
    second = tmp_path / "second"
    r = _run(masked_men, second, donor_bank, "--exclude-donors", str(excl))
    assert r.exit_code == 0, r.output
    assert not {row["donor"] for row in _rows(second)} & set(used)
    record = json.loads((second / ".facefill-run.json").read_text())
    assert used[0] in json.dumps(record)  # the exclusion changes outputs: it is in the run record
    pinned = tmp_path / "pinned"
    r = _run(masked_men, pinned, donor_bank, "--pin-donor", "obama_cool", "--variants", "2")
    assert r.exit_code == 0, r.output
    v0 = [row for row in _rows(pinned) if row["variant"] == "0"]
    assert v0 and all(row["donor"] == "obama_cool.png" and row["pinned"] == "yes" for row in v0)
    r = _run(masked_men, tmp_path / "bad", donor_bank, "--exclude-donors", "nobody.png")
    assert r.exit_code == 1 and "nobody.png" in r.output and "not a donor" in r.output, r.output


def test_outputs_do_not_depend_on_the_batch_size(masked_men, donor_bank, cache, tmp_path):
    outs = []
    for bs in (1, 3, 16):
        out = tmp_path / f"b{bs}"
        r = _run(masked_men, out, donor_bank, "--variants", "4", "--seed", "7", "--batch-size", str(bs))
        assert r.exit_code == 0, r.output
        outs.append({p.name: p.read_bytes() for p in out.glob("*.png")})  # outputs and any masks beside them
    assert sum(not n.endswith(".mask.png") for n in outs[0]) == 16 and outs[0] == outs[1] == outs[2]


def test_the_grid_shows_every_variant(masked_men, donor_bank, aligned_faces, cache, tmp_path):
    grid = tmp_path / "sheet.png"
    r = _run(masked_men, tmp_path / "out", donor_bank, "--variants", "3", "--grid", str(grid),
             "--real-dir", str(aligned_faces))
    assert r.exit_code == 0, r.output
    sheet = read_image(grid)
    assert sheet.shape[1] == 128 * 5  # masked | v0 | v1 | v2 | real
    np.testing.assert_array_equal(sheet[:128, 128 * 2:128 * 3], read_image(tmp_path / "out" / "biden_v1.png"))


def test_an_empty_mask_fails_its_input(masked_men, donor_bank, cache, tmp_path):
    import cv2

    cv2.imwrite(str(masked_men / "biden.mask.png"), (read_image(masked_men / "biden.mask.png")[..., 0] > 127).astype(np.uint8))
    out = tmp_path / "out"
    r = _run(masked_men, out, donor_bank)
    assert r.exit_code == 3, r.output
    assert "biden.mask.png" in (out / "failures.tsv").read_text() and "empty" in (out / "failures.tsv").read_text()
    assert not (out / "biden.png").exists() and (out / "obama.png").is_file()


def test_a_bank_of_one_querys_copies_fails_that_input_only(masked_men, donor_bank, cache, tmp_path):
    """Every donor is a copy of obama (never his donors): obama fails into failures.tsv; biden,
    whose donors they can be, is written. Copies of one photo are never two variants."""
    bank = tmp_path / "bank"
    bank.mkdir()
    for p in donor_bank.glob("obama_*"):
        shutil.copy(p, bank / p.name)
        if p.suffix == ".png" and not p.name.endswith(".valid.png"):
            shutil.copy(p, bank / p.name.replace(".png", "_dup.png"))
            shutil.copy(p.with_suffix(".json"), bank / p.name.replace(".png", "_dup.json"))
    src = tmp_path / "src"
    src.mkdir()
    for p in masked_men.glob("*"):
        if p.name.startswith(("obama.", "biden.")):
            shutil.copy(p, src / p.name)
    out = tmp_path / "out"
    r = _run(src, out, bank, "--variants", "3")
    assert r.exit_code == 3, r.output
    assert "obama.png" in (out / "failures.tsv").read_text()
    outs = [(out / f"biden_v{k}.png").read_bytes() for k in range(3)]
    assert len(set(outs)) == 3
    donors = [row["donor"].replace("_dup", "") for row in _rows(out)]
    assert len(set(donors)) == 3, donors


def test_a_mask_output_folder_is_no_bank(masked, tmp_path, cache):
    r = _run(masked, tmp_path / "out", masked)
    assert r.exit_code == 1 and "'facefill mask' outputs" in r.output, r.output


def test_a_mask_output_folder_is_no_training_data(masked, tmp_path):
    from facefill.train.data import scan

    samples, skipped = scan(masked)
    assert not samples and skipped and all("'facefill mask' output" in why for _, why in skipped)
    r = runner.invoke(app, ["train", str(masked), "--out", str(tmp_path / "runs"), "--preset", "tiny"])
    assert r.exit_code == 1 and "'facefill mask' outputs" in r.output, r.output


def test_resume_keeps_pinned_outputs_and_help_names_the_options(masked_men, donor_bank, cache, tmp_path):
    out = tmp_path / "out"
    assert _run(masked_men, out, donor_bank, "--pin-donor", "obama_cool").exit_code == 0
    r = _run(masked_men, out, donor_bank, "--pin-donor", "obama_cool")
    assert r.exit_code == 0 and "already done" in r.output, r.output
    r = _run(masked_men, out, donor_bank, "--pin-donor", "biden_cool")
    assert r.exit_code != 0, r.output  # other pins are other settings: never kept silently
    help_text = runner.invoke(app, ["hallucinate", "--help"]).output
    assert "--exclude-donors" in help_text and "--pin-donor" in help_text
