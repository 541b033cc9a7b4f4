"""``facefill hallucinate --method donor`` end to end on real faces."""

import numpy as np
import pytest
from typer.testing import CliRunner

from facefill.cli.app import app
from facefill.data.io import read_image

runner = CliRunner()



def _snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_variants_are_written_face_bit_exact_and_the_bank_is_untouched(masked_men, bank_copy, cache, tmp_path, kept_face):
    masked = masked_men
    out = tmp_path / "out"
    before = _snapshot(bank_copy)
    r = runner.invoke(app, ["hallucinate", str(masked), str(out), "--method", "donor", "--donors", str(bank_copy),
                            "--variants", "5", "--seed", "7"])
    assert r.exit_code == 0, r.output
    assert _snapshot(bank_copy) == before and any(cache.iterdir())
    names = sorted(p.name for p in masked.glob("*.png") if not p.name.endswith(".mask.png"))
    for name in names:
        stem = name[:-4]
        masked_img = read_image(masked / name)
        face = read_image(masked / f"{stem}.mask.png")[..., 0] > 127
        outs = [read_image(out / f"{stem}_v{k}.png") for k in range(5)]
        for k, o in enumerate(outs):
            kept = kept_face(out, f"{stem}_v{k}.png", face)  # the mask beside it where the donor's hair narrowed it
            np.testing.assert_array_equal(o[kept], masked_img[kept])
        assert len({o.tobytes() for o in outs}) == 5
        assert not (out / name).exists()
    assert "24 donors" in r.output

    again = tmp_path / "again"
    r2 = runner.invoke(app, ["hallucinate", str(masked), str(again), "--method", "donor", "--donors", str(bank_copy),
                             "--variants", "5", "--seed", "7"])
    assert r2.exit_code == 0, r2.output
    assert "index read from the cache" in r2.output
    assert _snapshot(again) .keys() >= {f"{n[:-4]}_v{k}.png" for n in names for k in range(5)}
    for p in out.glob("*_v*.png"):
        assert (again / p.name).read_bytes() == p.read_bytes(), p.name  # same seed, same bank: same outputs


def test_one_output_per_face_by_default(masked_men, donor_bank, cache, tmp_path):
    masked = masked_men
    out = tmp_path / "out"
    r = runner.invoke(app, ["hallucinate", str(masked), str(out), "--method", "donor", "--donors", str(donor_bank)])
    assert r.exit_code == 0, r.output
    assert (out / "biden.png").is_file() and not list(out.glob("*_v0.png"))


@pytest.mark.parametrize("args, hint", [
    (["--method", "donor"], "--donors"),
    (["--donors", "BANK"], "--donors"),
    (["--method", "donor", "--donors", "BANK", "--no-keep-face"], "--no-keep-face"),
    (["--method", "donor", "--donors", "BANK", "--variants", "0"], "--variants"),
    (["--method", "donor", "--donors", "BANK", "--all-scales", "SCALES"], "--all-scales"),
    (["--method", "mean", "--all-scales", "SCALES"], "--all-scales"),
])
def test_usage_errors_exit_2(masked, donor_bank, tmp_path, args, hint):
    args = [a.replace("BANK", str(donor_bank)).replace("SCALES", str(tmp_path / "s")) for a in args]
    r = runner.invoke(app, ["hallucinate", str(masked), str(tmp_path / "o"), *args])
    assert r.exit_code == 2 and hint in r.output, r.output
    assert not (tmp_path / "s").exists() and not (tmp_path / "o").exists()


def test_a_bank_that_cannot_serve_is_one_line_exit_1(masked, tmp_path, cache):
    bank = tmp_path / "tiny"
    bank.mkdir()
    (bank / "x.png").write_bytes(b"junk")
    r = runner.invoke(app, ["hallucinate", str(masked), str(tmp_path / "o"), "--method", "donor", "--donors", str(bank)])
    assert r.exit_code == 1
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "0 usable donors" in lines[0] and "facefill align" in lines[0]
    assert not (tmp_path / "o").exists()


def test_output_inside_the_bank_is_refused(masked, bank_copy, cache):
    before = _snapshot(bank_copy)
    r = runner.invoke(app, ["hallucinate", str(masked), str(bank_copy / "out"), "--method", "donor",
                            "--donors", str(bank_copy)])
    assert r.exit_code == 1 and "--donors" in r.output, r.output
    assert _snapshot(bank_copy) == before
