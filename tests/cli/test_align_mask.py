import json
import shutil

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from facefill.cli.app import app

runner = CliRunner()


@pytest.fixture
def mixed_folder(tmp_path, data_dir):
    raw = tmp_path / "raw"
    (raw / "sub").mkdir(parents=True)
    shutil.copy(data_dir / "faces" / "obama.jpg", raw / "obama.jpg")
    shutil.copy(data_dir / "faces" / "obama2_rgba.png", raw / "sub" / "rgba.png")
    gray = cv2.imread(str(data_dir / "faces" / "astronaut.jpg"), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(raw / "gray.png"), gray)
    cv2.imwrite(str(raw / "noface.png"), np.full((120, 120, 3), 90, np.uint8))
    (raw / "sub" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff garbage")
    return raw


def test_align_then_mask_mixed_batch(tmp_path, mixed_folder):
    aligned, masked = tmp_path / "aligned", tmp_path / "masked"
    result = runner.invoke(app, ["align", str(mixed_folder), str(aligned)])
    assert result.exit_code == 3, result.output  # 2 of 5 failed, the 3 good crops kept
    written = sorted(p.relative_to(aligned).as_posix() for p in aligned.rglob("*.png") if not p.name.endswith(".valid.png"))
    assert written == ["gray.png", "obama.png", "sub/rgba.png"]
    assert "noface.png" in result.output and "no face found" in result.output
    assert "corrupt.jpg" in result.output and "2 failed of" in result.output
    side = json.loads((aligned / "obama.json").read_text())
    assert len(side["landmarks"]) == 68 and side["source"] == "obama.jpg" and side["score"] > 0
    assert cv2.imread(str(aligned / "obama.png")).shape == (128, 128, 3)

    result = runner.invoke(app, ["mask", str(aligned), str(masked), "--grow", "2"])
    assert result.exit_code == 0, result.output
    img = cv2.imread(str(masked / "obama.png"))
    m = cv2.imread(str(masked / "obama.mask.png"), cv2.IMREAD_GRAYSCALE)
    assert set(np.unique(m)) == {0, 255}
    assert (img[m == 0] == 0).all() and img[m == 255].mean() > 40
    assert json.loads((masked / "obama.json").read_text())["mask"]["grow"] == 2


def test_resume_skips_existing(tmp_path, data_dir):
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(data_dir / "faces" / "obama.jpg", raw / "a.jpg")
    out = tmp_path / "out"
    assert runner.invoke(app, ["align", str(raw), str(out)]).exit_code == 0
    stamp = (out / "a.png").stat().st_mtime_ns
    shutil.copy(data_dir / "faces" / "biden.jpg", raw / "b.jpg")
    result = runner.invoke(app, ["align", str(raw), str(out)])
    assert result.exit_code == 0 and "1 done, 1 already done" in result.output
    assert (out / "a.png").stat().st_mtime_ns == stamp and (out / "b.png").exists()
    result = runner.invoke(app, ["align", str(raw), str(out), "--overwrite"])
    assert "2 done, 0 already done" in result.output


def test_mask_redetects_without_sidecar(tmp_path, data_dir):
    aligned = tmp_path / "aligned"
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(data_dir / "faces" / "biden.jpg", raw / "b.jpg")
    assert runner.invoke(app, ["align", str(raw), str(aligned)]).exit_code == 0
    (aligned / "b.json").unlink()
    result = runner.invoke(app, ["mask", str(aligned), str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert cv2.imread(str(tmp_path / "m" / "b.mask.png"), 0).mean() > 10


def test_all_bad_exits_1(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    cv2.imwrite(str(raw / "flat.png"), np.zeros((64, 64, 3), np.uint8))
    result = runner.invoke(app, ["align", str(raw), str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "every input failed, nothing was written" in result.output


def test_bad_inputs(tmp_path):
    r = runner.invoke(app, ["align", str(tmp_path / "missing"), str(tmp_path / "o")])
    assert r.exit_code == 1 and "does not exist" in r.output
    (tmp_path / "empty").mkdir()
    r = runner.invoke(app, ["align", str(tmp_path / "empty"), str(tmp_path / "o")])
    assert r.exit_code == 1 and "no images" in r.output
    r = runner.invoke(app, ["align", str(tmp_path / "empty"), str(tmp_path / "o"), "--faces", "some"])
    assert r.exit_code == 2
    r = runner.invoke(app, ["align", str(tmp_path / "empty"), str(tmp_path / "o"), "--set", "align.nosuch=1"])
    assert r.exit_code == 2 and "align.nosuch" in r.output
    r = runner.invoke(app, ["mask", str(tmp_path / "missing"), str(tmp_path / "o")])
    assert r.exit_code == 1 and "facefill align" in r.output
