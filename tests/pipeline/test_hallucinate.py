"""hallucinate: default model, keep-face exactness, bad files, shards, contact sheet."""


import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from facefill.cli.app import app
from facefill.config import get_preset
from facefill.data.io import read_image
from facefill.mask.compose import compose
from facefill.models import build_generator
from facefill.fill.model import ModelFill
from facefill.models.release import save_release
from facefill.pipeline.hallucinate import (HallucinateOptions, default_model_path, hallucinate_folder, load_model,
                                           parse_shard)

runner = CliRunner()



@pytest.fixture
def tiny_model(tmp_path):
    cfg = get_preset("tiny")
    torch.manual_seed(0)
    return save_release(tmp_path / "g.safetensors", build_generator(cfg), cfg)


def test_default_model_on_real_photos(masked, tmp_path):
    assert default_model_path().is_file(), "the default model must ship inside the package"
    r = runner.invoke(app, ["hallucinate", str(masked), str(tmp_path / "out"), "--device", "cpu",
                            "--grid", str(tmp_path / "sheet.png")])
    assert r.exit_code == 0, r.output
    outs = sorted((tmp_path / "out").glob("*.png"))
    assert len(outs) == 5
    for out in outs:
        img = read_image(out)
        assert img.shape == (128, 128, 3)
        inp = read_image(masked / out.name)
        m = cv2.imread(str(masked / (out.stem + ".mask.png")), cv2.IMREAD_GRAYSCALE) > 127
        assert np.array_equal(img[m], inp[m])  # the face is bit-exact
        assert np.abs(img[~m].astype(int) - inp[~m].astype(int)).mean() > 10  # context was filled in
    sheet = cv2.imread(str(tmp_path / "sheet.png"))
    assert sheet.shape == (5 * 128, 2 * 128, 3)  # masked | output: no real photos given, no blank column


@pytest.mark.parametrize("feather", [0, 3])
def test_keep_face_is_exact_inside_the_mask(masked, tmp_path, tiny_model, feather):
    G, cfg = load_model(tiny_model)
    report = hallucinate_folder(masked, tmp_path / "o", HallucinateOptions(feather=feather), filler=ModelFill(G=G, cfg=cfg))
    assert len(report.written) == 5 and not report.failed
    for out in report.written:
        img, inp = read_image(out), read_image(masked / out.name)
        m = cv2.imread(str(masked / (out.stem + ".mask.png")), cv2.IMREAD_GRAYSCALE) > 127
        assert np.array_equal(img[m], inp[m])
        assert (img[~m] != inp[~m]).any()


def test_no_keep_face_gives_the_raw_output(masked, tmp_path, tiny_model):
    G, cfg = load_model(tiny_model)
    hallucinate_folder(masked, tmp_path / "o", HallucinateOptions(keep_face=False, all_scales_dir=tmp_path / "s"),
                       filler=ModelFill(G=G, cfg=cfg))
    name = sorted((tmp_path / "o").glob("*.png"))[0].name
    inp = read_image(masked / name)
    m = cv2.imread(str(masked / name.replace(".png", ".mask.png")), cv2.IMREAD_GRAYSCALE) > 127
    assert not np.array_equal(read_image(tmp_path / "o" / name)[m], inp[m])
    for s in (8, 16, 32, 64, 128):
        assert read_image(tmp_path / "s" / str(s) / name).shape == (s, s, 3)


def test_bad_files_reported_good_ones_written(masked, tmp_path, tiny_model):
    (masked / "corrupt.png").write_bytes(b"garbage")
    cv2.imwrite(str(masked / "big.png"), np.zeros((200, 200, 3), np.uint8))
    cv2.imwrite(str(masked / "nomask.png"), np.zeros((128, 128, 3), np.uint8))
    r = runner.invoke(app, ["hallucinate", str(masked), str(tmp_path / "o"), "--checkpoint", str(tiny_model), "--device", "cpu"])
    assert r.exit_code == 3, r.output  # some inputs failed, the good outputs were kept
    assert "3 failed of 8 inputs" in r.output and "corrupt.png" in r.output and "200x200" in r.output
    assert "--mask-from-landmarks" in r.output
    assert len(list((tmp_path / "o").glob("*.png"))) == 5
    listed = (tmp_path / "o" / "failures.tsv").read_text().splitlines()[1:]
    assert sorted(line.split("\t")[0].split("/")[-1] for line in listed) == ["big.png", "corrupt.png", "nomask.png"]
    # resume: everything already there is kept
    r = runner.invoke(app, ["hallucinate", str(masked), str(tmp_path / "o"), "--checkpoint", str(tiny_model)])
    assert "5 already done" in r.output


def test_mask_from_landmarks_on_aligned_photos(aligned_faces, tmp_path, tiny_model):
    G, cfg = load_model(tiny_model)
    opts = HallucinateOptions(mask_from_landmarks=True, grid=tmp_path / "g.png", feather=0)
    report = hallucinate_folder(aligned_faces, tmp_path / "o", opts, filler=ModelFill(G=G, cfg=cfg))
    assert len(report.done) == 5 and sorted(p.name for p in report.written if p.name.endswith(".mask.png")) == sorted(
        p.name.replace(".png", ".mask.png") for p in report.done)  # each output and the mask it was made with
    sheet = read_image(tmp_path / "g.png")
    real = read_image(sorted(aligned_faces.glob("*.png"))[0])
    assert np.array_equal(sheet[:128, 256:], real)  # third column: the real photo


def test_shards_cover_every_file_once(masked, tmp_path, tiny_model):
    for i in range(3):
        r = runner.invoke(app, ["hallucinate", str(masked), str(tmp_path / f"o{i}"), "--checkpoint", str(tiny_model),
                                "--shard", f"{i}/3"])
        assert r.exit_code == 0, r.output
    names = [p.name for i in range(3) for p in (tmp_path / f"o{i}").glob("*.png")]
    assert sorted(names) == sorted(p.name for p in masked.glob("*.png") if not p.name.endswith(".mask.png"))
    with pytest.raises(Exception, match="0 <= i < n"):
        parse_shard("3/3")


def test_missing_checkpoint_and_wrong_file(masked, tmp_path):
    r = runner.invoke(app, ["hallucinate", str(masked), str(tmp_path / "o"), "--checkpoint", str(tmp_path / "nope.safetensors")])
    assert r.exit_code == 1 and "not found" in r.output
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"123")
    r = runner.invoke(app, ["hallucinate", str(masked), str(tmp_path / "o"), "--checkpoint", str(bad)])
    assert r.exit_code == 1 and "safetensors" in r.output


def test_compose_feathers_outside_the_mask():
    mask = np.zeros((20, 20), np.float32)
    mask[5:15, 5:15] = 1
    face, gen = np.full((20, 20, 3), 200, np.uint8), np.full((20, 20, 3), 10, np.uint8)
    face[5:15, 5:15, 0] = np.arange(10, dtype=np.uint8)[None] * 20  # varied face pixels
    hard = compose(face, gen, mask, 0)
    assert np.array_equal(hard[5:15, 5:15], face[5:15, 5:15]) and (hard[:5] == 10).all()
    soft = compose(face, gen, mask, 3)
    assert np.array_equal(soft[5:15, 5:15], face[5:15, 5:15])  # the face is untouched
    assert 10 < soft[4, 10, 1] < 200 and soft[4, 10, 1] > soft[3, 10, 1] > soft[2, 10, 1]  # a ramp outside
    assert soft[0, 10, 1] == 10  # beyond the feather: the hallucination


@pytest.mark.parametrize("value, hint", [("2/2", "0/2 .. 1/2"), ("abc", "counted from 0"), ("1/0", "0 <= i < n"),
                                         ("-1/3", "0/3 .. 2/3")])
def test_bad_shard_is_a_usage_error_naming_the_base(masked, tmp_path, value, hint):
    r = runner.invoke(app, ["hallucinate", str(masked), str(tmp_path / "o"), "--method", "mean", "--shard", value])
    assert r.exit_code == 2 and hint in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o").exists()


def test_shard_help_states_the_base():
    r = runner.invoke(app, ["hallucinate", "--help"])
    assert "counted from 0" in " ".join(r.output.split()) and "9/10" in r.output
