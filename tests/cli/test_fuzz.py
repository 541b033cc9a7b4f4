"""Every batch command fed a folder of good and bad inputs, mixed: every good output exists and is
right, every bad input is listed in failures.tsv, and the exit code says "some failed" (3)."""

import shutil

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from facefill.cli.app import app

runner = CliRunner()


def bad_files(folder, size):
    """Inputs that must fail, one of each kind a real folder holds."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.jpg").write_text("not an image")
    good = cv2.imencode(".png", np.full((size, size, 3), 128, np.uint8))[1].tobytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 3])
    rng = np.random.default_rng(0)
    (folder / "noise.png").write_bytes(cv2.imencode(".png", rng.integers(0, 255, (size, size, 3), np.uint8))[1].tobytes())
    return {"empty.png", "text.jpg", "truncated.png", "noise.png"}


def failures(out):
    lines = (out / "failures.tsv").read_text().splitlines()[1:]
    return {line.split("\t")[0].rsplit("/", 1)[-1] for line in lines}


@pytest.mark.parametrize("stage", ["align", "mask", "hallucinate", "replace-bg"])
def test_mixed_good_and_bad_inputs(stage, tmp_path, data_dir, faces_copy):
    good = {"obama", "biden"}
    if stage == "align":
        src = tmp_path / "raw"
        src.mkdir()
        for name in good:
            shutil.copy(data_dir / "faces" / f"{name}.jpg", src / f"{name}.jpg")
        bad = bad_files(src, 96)
        args = ["align", str(src), str(tmp_path / "out")]
    elif stage == "mask":
        src = tmp_path / "aligned"
        src.mkdir()
        for name in good:
            for suffix in (".png", ".json"):
                shutil.copy(faces_copy / f"{name}{suffix}", src / f"{name}{suffix}")
        bad = bad_files(src, 128)  # noise.png: aligned size but no face, no sidecar
        args = ["mask", str(src), str(tmp_path / "out")]
    else:
        src = tmp_path / "masked"
        assert runner.invoke(app, ["mask", str(faces_copy), str(src)]).exit_code == 0
        for p in src.glob("*"):
            if p.name.split(".")[0] not in good:
                p.unlink()
        bad = bad_files(src, 128)  # noise.png: no mask beside it (replace-bg needs none: a good input there)
        if stage == "replace-bg":
            bad.discard("noise.png")
            good = good | {"noise"}
        args = (["hallucinate", str(src), str(tmp_path / "out")] if stage == "hallucinate" else
                ["replace-bg", str(src), str(tmp_path / "out"), "-b", str(data_dir / "faces" / "astronaut.jpg"),
                 "--segmenter", "grabcut"])
    r = runner.invoke(app, args)
    out = tmp_path / "out"
    assert r.exit_code == 3, r.output
    assert failures(out) == bad
    for name in good:
        img = cv2.imread(str(out / f"{name}.png"))
        assert img is not None and img.shape == (128, 128, 3), name
        if stage == "mask":
            m = cv2.imread(str(out / f"{name}.mask.png"), 0)
            assert 0.1 < (m > 0).mean() < 0.6
        if stage in ("hallucinate", "replace-bg"):
            if name == "noise":
                continue
            m = cv2.imread(str(src / f"{name}.mask.png"), 0) > 0
            face = cv2.imread(str(src / f"{name}.png"))
            if stage == "hallucinate":  # --keep-face: the face is bit-exact
                assert np.array_equal(img[m], face[m])
            else:  # the face is kept, exactly away from the person's edge (the seam band is blended)
                inner = cv2.erode(m.astype(np.uint8), np.ones((13, 13), np.uint8)) > 0
                assert inner.sum() > 500 and np.abs(img[inner].astype(int) - face[inner]).max() <= 1
    # a second run resumes: the good ones are kept, the bad ones are listed again
    r = runner.invoke(app, args)
    assert r.exit_code == 3 and f"{len(good)} already done" in r.output and failures(out) == bad
