"""``facefill paste`` on the command line: a tiny end-to-end run, resume, a bad input (exit 3,
one line), and errors before any work (exit 1 or 2, one line)."""

import shutil

import cv2
from typer.testing import CliRunner

from facefill.cli.app import app
from facefill.data.io import read_image

runner = CliRunner()


def _hallucinated(raw, tmp_path):
    r = runner.invoke(app, ["hallucinate", str(raw), str(tmp_path / "out"), "--method", "mean", "-q"])
    assert r.exit_code == 0, r.output
    return tmp_path / "out"


def test_paste_end_to_end_resume_and_a_bad_photo(raw, tmp_path):
    out = _hallucinated(raw, tmp_path)
    r = runner.invoke(app, ["paste", str(out), str(raw), str(tmp_path / "final")])
    assert r.exit_code == 0, r.output
    assert "paste: 2 done, 0 already done (kept), 0 failed of 2 inputs; 2 files written" in " ".join(r.stderr.split())
    for name in ("obama", "biden"):
        assert read_image(tmp_path / "final" / f"{name}.png").shape == read_image(raw / f"{name}.jpg").shape
    r = runner.invoke(app, ["paste", str(out), str(raw), str(tmp_path / "final")])
    assert r.exit_code == 0 and "0 done, 2 already done (kept)" in " ".join(r.stderr.split()), r.output
    # another size than the photo hallucinate aligned: that photo fails, the other is written
    photos = tmp_path / "photos"
    shutil.copytree(raw, photos)
    img = cv2.imread(str(photos / "obama.jpg"))
    cv2.imwrite(str(photos / "obama.jpg"), cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2)))
    r = runner.invoke(app, ["paste", str(out), str(photos), str(tmp_path / "f2"), "-q"])
    assert r.exit_code == 3, r.output
    skipped = [line for line in r.stderr.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 1 and "obama.jpg" in skipped[0] and "original photos" in skipped[0], r.stderr
    assert (tmp_path / "f2" / "biden.png").is_file() and (tmp_path / "f2" / "failures.tsv").is_file()


def test_errors_before_any_work_are_one_line(raw, tmp_path):
    (tmp_path / "empty").mkdir()
    for args, code, words in [
        ([str(raw), str(raw), str(tmp_path / "f")], 1, "not a 'facefill hallucinate' output folder"),
        ([str(tmp_path / "nope"), str(raw), str(tmp_path / "f")], 1, "does not exist"),
        ([str(raw), str(raw), str(tmp_path / "f"), "--feather", "-1"], 2, "--feather"),
        ([str(raw), str(raw), str(tmp_path / "f"), "--shard", "2/2"], 2, "--shard"),
    ]:
        r = runner.invoke(app, ["paste", *args])
        assert r.exit_code == code and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, (args, r.stderr)
        assert words in r.stderr, r.stderr
    assert not (tmp_path / "f").exists()


def test_paste_never_writes_into_what_it_reads(raw, tmp_path):
    out = _hallucinated(raw, tmp_path)
    r = runner.invoke(app, ["paste", str(out), str(raw), str(out / "final")])
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and "final" in r.stderr, r.stderr
