"""Issue 33 items 10 and 11: cases a fuzzer found that ended in a traceback or a misleading line.
Each is run as a user would, through the CLI: one ``error:`` line naming the file or option and
the fix, no traceback, the exit code of docs/cli-conventions.md, and nothing of the user's lost."""

import json
import os
import shutil

import pytest
from typer.testing import CliRunner

from facefill.cli.app import app
from facefill.weights import WEIGHTS, locate

runner = CliRunner()


def error_line(r, code: int) -> str:
    """The one ``error:`` line of a run that stopped with ``code`` (and no traceback)."""
    assert r.exit_code == code, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output, r.output
    errors = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.output
    return errors[0]


@pytest.fixture
def no_overrides(monkeypatch):
    for w in WEIGHTS.values():
        monkeypatch.delenv(w.env, raising=False)
    return monkeypatch


# ------------------------------------------------------------------ item 10: '-' as an output folder

@pytest.mark.parametrize("stage", ["align", "mask", "hallucinate", "replace-bg", "all-scales"])
def test_dash_as_output_folder_is_a_usage_error(stage, raw, faces_copy, masked, data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = {"align": ["align", str(raw), "-"], "mask": ["mask", str(faces_copy), "-"],
            "hallucinate": ["hallucinate", str(masked), "-", "--method", "mean"],
            "replace-bg": ["replace-bg", str(masked), "-", "-b", str(data_dir / "faces" / "astronaut.jpg")],
            "all-scales": ["hallucinate", str(masked), "out", "--all-scales", "-"]}[stage]
    line = error_line(runner.invoke(app, args), 2)
    assert "'-'" in line and "folder" in line and "stdout" in line, line
    assert not (tmp_path / "-").exists() and not (tmp_path / "out").exists()


# ------------------------------------------------------------------ item 10: weight overrides

def _replace_bg(masked, data_dir, out):
    return runner.invoke(app, ["replace-bg", str(masked), str(out), "-b", str(data_dir / "faces" / "astronaut.jpg")])


@pytest.mark.parametrize("content", [b"not safetensors at all", os.urandom(2000), "other-tensors"])
def test_selfie_segmenter_override_of_another_kind_is_one_line(content, masked, data_dir, tmp_path, no_overrides):
    wrong = tmp_path / "wrong.safetensors"
    if content == "other-tensors":
        import torch
        from safetensors.torch import save_file

        save_file({"x": torch.zeros(2)}, str(wrong))
    else:
        wrong.write_bytes(content)
    no_overrides.setenv("FACEFILL_SELFIE_SEGMENTER", str(wrong))
    line = error_line(_replace_bg(masked, data_dir, tmp_path / "out"), 1)
    assert str(wrong) in line and "selfie segmentation" in line and "$FACEFILL_SELFIE_SEGMENTER" in line, line
    assert not list((tmp_path / "out").glob("*.png"))


def test_selfie_segmenter_override_missing_stops_replace_bg(masked, data_dir, tmp_path, no_overrides):
    """Issue 32 item 5: --segmenter auto used to fall back to GrabCut in silence (exit 0)."""
    missing = tmp_path / "nowhere" / "selfie_segmentation.safetensors"
    no_overrides.setenv("FACEFILL_SELFIE_SEGMENTER", str(missing))
    line = error_line(_replace_bg(masked, data_dir, tmp_path / "out"), 1)
    assert f"$FACEFILL_SELFIE_SEGMENTER={missing} does not exist" in line, line
    assert not list((tmp_path / "out").glob("*.png"))
    # unset, auto uses the shipped network again (not GrabCut): the run succeeds
    no_overrides.delenv("FACEFILL_SELFIE_SEGMENTER")
    assert _replace_bg(masked, data_dir, tmp_path / "out").exit_code == 0


def test_selfie_segmenter_override_of_another_kind_in_the_donor_index_build(faces_copy, masked, tmp_path,
                                                                            no_overrides):
    wrong = tmp_path / "wrong.safetensors"
    wrong.write_bytes(b"x" * 100)
    no_overrides.setenv("FACEFILL_SELFIE_SEGMENTER", str(wrong))
    no_overrides.setenv("FACEFILL_CACHE", str(tmp_path / "cache"))
    r = runner.invoke(app, ["hallucinate", str(masked), str(tmp_path / "out"), "--method", "donor",
                            "--donors", str(faces_copy)])
    line = error_line(r, 1)
    assert str(wrong) in line and "$FACEFILL_SELFIE_SEGMENTER" in line, line


def _dlib_file(key):
    path, _ = locate(key)
    if path is None:
        pytest.skip(f"{key} is not installed here")
    return path


@pytest.mark.parametrize("what", ["garbage", "dlib-landmarks5", "dlib-resnet", "dlib-cnn"])
def test_dlib_landmarks_override_of_another_kind_is_one_line(what, raw, tmp_path, no_overrides):
    pytest.importorskip("dlib")
    if what == "garbage":
        wrong = tmp_path / "shape_predictor_68_face_landmarks.dat"
        wrong.write_bytes(b"garbage" * 100)
    else:
        wrong = _dlib_file(what)
    no_overrides.setenv("FACEFILL_DLIB_LANDMARKS", str(wrong))
    line = error_line(runner.invoke(app, ["align", str(raw), str(tmp_path / "out")]), 1)
    assert str(wrong) in line and "shape_predictor_68_face_landmarks.dat" in line, line
    assert "$FACEFILL_DLIB_LANDMARKS" in line, line
    assert not list((tmp_path / "out").glob("*.png"))


def test_dlib_cnn_override_of_another_kind_is_one_line(raw, tmp_path, no_overrides):
    pytest.importorskip("dlib")
    no_overrides.setenv("FACEFILL_DLIB_CNN", str(_dlib_file("dlib-landmarks5")))
    line = error_line(runner.invoke(app, ["align", str(raw), str(tmp_path / "out"), "--detector", "cnn"]), 1)
    assert "mmod_human_face_detector.dat" in line and "$FACEFILL_DLIB_CNN" in line, line


# ------------------------------------------------------------------ item 10: damaged lock and run record

def _mask(faces_copy, out, *extra):
    return runner.invoke(app, ["mask", str(faces_copy), str(out), *extra])


@pytest.mark.parametrize("content", ["[1, 2]", '"str"', 'PID-20', '{"pid": "x", "host": "H"}',
                                     '{"pid": 1, "host": "H", "shard": 5}', "folder"])
def test_a_lock_facefill_did_not_write_is_refused_naming_it(content, faces_copy, tmp_path):
    import socket

    out = tmp_path / "out"
    out.mkdir()
    lock = out / ".facefill-lock"
    if content == "folder":
        lock.mkdir()
    else:
        content = content.replace("PID-20", '{"pid": 12345678901234567890, "host": "H"}')
        lock.write_text(content.replace('"H"', json.dumps(socket.gethostname())))
    line = error_line(_mask(faces_copy, out), 1)
    assert str(lock) in line and "not a lock facefill wrote" in line and "delete it" in line, line
    assert lock.exists() and not list(out.glob("*.png"))


def test_an_empty_lock_says_a_run_is_starting(faces_copy, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".facefill-lock").write_text("")
    line = error_line(_mask(faces_copy, out), 1)
    assert "starting" in line and "None" not in line and "pid ?" not in line, line
    os.utime(out / ".facefill-lock", (0, 0))  # left empty by a crash long ago: taken over
    assert _mask(faces_copy, out).exit_code == 0


@pytest.mark.parametrize("content", [b"\xff\xfe{", b"[1, 2]", b'{"command": 1, "settings": [1]}'])
def test_a_damaged_run_record_is_one_line_and_overwrite_redoes_it(content, faces_copy, tmp_path):
    out = tmp_path / "out"
    assert _mask(faces_copy, out).exit_code == 0
    (out / ".facefill-run.json").write_bytes(content)
    mine = out / "mine.txt"
    mine.write_text("a file of the user's")
    line = error_line(_mask(faces_copy, out), 1)
    assert ".facefill-run.json is damaged" in line and "--overwrite" in line, line
    r = _mask(faces_copy, out, "--overwrite")
    assert r.exit_code == 0 and "5 done" in r.output, r.output
    assert json.loads((out / ".facefill-run.json").read_text())["command"] == "mask" and mine.exists()


def test_a_run_files_record_not_utf8_is_read(faces_copy, tmp_path):
    out = tmp_path / "out"
    assert _mask(faces_copy, out).exit_code == 0
    odd = os.fsdecode(b"odd\xff.png")  # a name that is not UTF-8, as a file system may hold
    (out / odd).write_bytes(b"x")
    with open(out / ".facefill-run.files", "ab") as fh:
        fh.write(b"odd\xff.png\tobama.png\n\x00broken\n")
    r = _mask(faces_copy, out)
    assert r.exit_code == 0 and "5 already done" in r.output, r.output
    r = _mask(faces_copy, out, "--overwrite")  # the recorded file is removed by its bytes, nothing else
    assert r.exit_code == 0 and not (out / odd).exists(), r.output
    assert (out / "obama.png").is_file()


# ------------------------------------------------------------------ item 11: true lines, not misleading ones

@pytest.fixture
def pair(image_folders):
    """Two folders of 3 random 32 px images with the same names (tests/conftest.py)."""
    return image_folders


def _plain_pickle(path):
    import pickle

    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}, protocol=4))
    return path


@pytest.mark.parametrize("kind", ["random bytes", "plain pickle"])
def test_an_inception_file_that_is_no_pickle_of_objects_is_not_called_one(kind, pair, tmp_path):
    f = tmp_path / "inception.pth"
    f.write_bytes(os.urandom(5000)) if kind == "random bytes" else _plain_pickle(f)
    line = error_line(runner.invoke(app, ["evaluate", *pair, "-m", "fid", "--inception-weights", str(f)]), 1)
    assert str(f) in line and "pickled Python objects" not in line and "weights_only" not in line, line
    assert ("not a PyTorch file" if kind == "random bytes" else "a plain Python pickle") in line, line


def test_a_plain_pickle_as_checkpoint_is_not_called_a_training_state(masked, tmp_path):
    f = _plain_pickle(tmp_path / "model.pkl")
    line = error_line(runner.invoke(app, ["hallucinate", str(masked), str(tmp_path / "out"), "--checkpoint", str(f)]), 1)
    assert str(f) in line and "training state" not in line and "a plain Python pickle" in line, line


@pytest.mark.parametrize("content", [b"hello, not numpy\n", "npy"])
def test_real_stats_that_is_no_npz_gets_no_allow_pickle_hint(content, pair, tmp_path):
    import numpy as np

    stats = tmp_path / "stats.npz"
    if content == "npy":
        np.save(tmp_path / "x.npy", np.zeros(3))
        (tmp_path / "x.npy").rename(stats)
    else:
        stats.write_bytes(content)
    before = stats.read_bytes()
    line = error_line(runner.invoke(app, ["evaluate", *pair, "-m", "fid", "--real-stats", str(stats)]), 1)
    assert str(stats) in line and "allow_pickle" not in line and "pickle" not in line, line
    assert stats.read_bytes() == before


def test_a_folder_as_weights_override_is_called_a_folder(masked, tmp_path, no_overrides):
    no_overrides.setenv("FACEFILL_DEFAULT_GENERATOR", str(tmp_path))
    line = error_line(runner.invoke(app, ["hallucinate", str(masked), str(tmp_path / "out")]), 1)
    assert f"$FACEFILL_DEFAULT_GENERATOR={tmp_path} is a folder" in line and "does not exist" not in line, line


def test_a_run_of_8_px_in_hallucinate_names_the_scales(faces_copy, masked, tmp_path):
    fast = ["--preset", "tiny", "--batch-size", "2", "--set", "loss.id=0", "--set", "loss.pc=0",
            "--set", "train.val_fraction=0.0", "--device", "cpu"]
    r = runner.invoke(app, ["train", str(faces_copy), "--out", str(tmp_path / "runs"), "--name", "r8", "--steps", "1",
                            "--set", "generator.scales=[8]", *fast])
    assert r.exit_code == 0, r.output
    release = tmp_path / "runs" / "r8" / "generator.safetensors"
    line = error_line(runner.invoke(app, ["hallucinate", str(masked), str(tmp_path / "out"), "--checkpoint",
                                          str(release)]), 1)
    assert "8 px" in line and "generator.scales" in line and "align.size" not in line, line


def test_evaluate_of_photos_against_aligned_faces_says_to_align_first(masked, raw, tmp_path):
    import shutil

    gen = tmp_path / "gen"
    gen.mkdir()
    for name in ("obama", "biden"):
        shutil.copy(masked / f"{name}.png", gen / f"{name}.png")
    line = error_line(runner.invoke(app, ["evaluate", str(gen), str(raw), "-m", "ssim"]), 1)
    assert "differ in size" in line and f"facefill align {raw}" in line, line


def _damaged_images(folder):
    """A PNG failing its IDAT CRC, PNGs cut short, a BMP and a TIFF cut short."""
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    img = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    png = bytearray(cv2.imencode(".png", img)[1].tobytes())
    png[60] ^= 1
    (folder / "crc.png").write_bytes(bytes(png))
    (folder / "cut_header.png").write_bytes(bytes(png[:40]))
    (folder / "cut.png").write_bytes(cv2.imencode(".png", img)[1].tobytes()[:-20])
    for ext in (".bmp", ".tif"):
        data = cv2.imencode(ext, img)[1].tobytes()
        (folder / f"cut{ext}").write_bytes(data[:40])
    return sorted(folder.iterdir())


def test_damaged_images_print_nothing_but_facefill_s_line(tmp_path, capfd):
    """libpng's "libpng error: IDAT: CRC error" and OpenCV's "[ERROR:0@0.1] ..." lines went
    straight to stderr (fd 2) before facefill's one line about the file."""
    from facefill.data.io import read_image, read_mask
    from facefill.errors import ImageError

    for path in _damaged_images(tmp_path / "bad"):
        with pytest.raises(ImageError, match=path.name):
            read_image(path)
        assert read_mask(path) is None
    out, err = capfd.readouterr()
    assert "libpng" not in err and "ERROR" not in err and "WARN" not in err, err


def test_a_png_with_a_damaged_ancillary_chunk_is_read_in_silence(tmp_path, capfd):
    import struct
    import zlib

    import cv2
    import numpy as np

    from facefill.data.io import read_image

    img = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    png = cv2.imencode(".png", img)[1].tobytes()
    text = b"tEXt" + b"Comment\x00hello"
    chunk = struct.pack(">I", len(text) - 4) + text + struct.pack(">I", zlib.crc32(text) ^ 1)  # a wrong CRC
    (tmp_path / "t.png").write_bytes(png[:33] + chunk + png[33:])
    assert np.array_equal(read_image(tmp_path / "t.png"), img[..., ::-1])
    assert "libpng" not in capfd.readouterr().err


def test_damaged_inputs_to_a_batch_print_only_facefill_s_lines(faces_copy, tmp_path, capfd):
    _damaged_images(faces_copy)
    capfd.readouterr()
    r = runner.invoke(app, ["mask", str(faces_copy), str(tmp_path / "out")])
    assert r.exit_code == 3, r.output
    err = capfd.readouterr().err
    assert "libpng" not in err and "[ERROR" not in err, err
