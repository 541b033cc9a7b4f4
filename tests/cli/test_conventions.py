"""The shared CLI conventions (docs/cli-conventions.md), with real files on disk: no command
overwrites or drops a user's file, exit codes tell the truth, reports go where asked."""

import hashlib
import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from facefill.cli.app import app

runner = CliRunner()


def digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_align_into_its_own_input_folder_is_refused(raw):
    before = digest(raw)
    for out in (raw, raw / "aligned"):
        r = runner.invoke(app, ["align", str(raw), str(out)])
        assert r.exit_code == 1 and "input folder" in r.output, r.output
    assert digest(raw) == before  # the user's photos are untouched, nothing was added


def test_mask_hallucinate_replace_bg_refuse_their_input_folder(faces_copy, masked, tmp_path, data_dir):
    for args in (["mask", str(faces_copy), str(faces_copy)],
                 ["hallucinate", str(masked), str(masked)],
                 ["replace-bg", str(masked), str(masked), "--background", str(data_dir / "faces" / "obama.jpg")]):
        before = digest(Path(args[1]))
        r = runner.invoke(app, args)
        assert r.exit_code == 1 and "input folder" in r.output, (args, r.output)
        assert digest(Path(args[1])) == before


def test_name_collision_writes_both(tmp_path, data_dir):
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(data_dir / "faces" / "obama.jpg", raw / "a.jpg")
    shutil.copy(data_dir / "faces" / "biden.jpg", raw / "a.png")
    r = runner.invoke(app, ["align", str(raw), str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / "a.jpg.png").is_file() and (tmp_path / "o" / "a.png.png").is_file()
    assert json.loads((tmp_path / "o" / "a.jpg.json").read_text())["source"] == "a.jpg"
    assert "2 done" in r.output


def test_rerun_with_other_weights_is_refused_not_skipped(masked, tmp_path):
    from facefill.pipeline.hallucinate import default_model_path

    out = tmp_path / "out"
    r = runner.invoke(app, ["hallucinate", str(masked), str(out), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    other = tmp_path / "other.safetensors"
    data = bytearray(default_model_path().read_bytes())
    data[-1] ^= 1  # the same model, one weight bit changed
    other.write_bytes(bytes(data))
    before = digest(out)
    r = runner.invoke(app, ["hallucinate", str(masked), str(out), "--checkpoint", str(other)])
    assert r.exit_code == 1 and "other settings" in r.output and "--overwrite" in r.output, r.output
    assert digest(out) == before
    # same settings: a resumed run keeps the outputs and still writes the contact sheet
    r = runner.invoke(app, ["hallucinate", str(masked), str(out), "--grid", str(tmp_path / "g.png")])
    assert r.exit_code == 0 and "already done" in r.output and (tmp_path / "g.png").is_file(), r.output


def test_baseline_methods_run_through_the_cli(masked, tmp_path):
    for method in ("telea", "mean"):
        out = tmp_path / method
        r = runner.invoke(app, ["hallucinate", str(masked), str(out), "--method", method, "--feather", "0"])
        assert r.exit_code == 0, r.output
        img = cv2.imread(str(out / "obama.png"))
        m = cv2.imread(str(masked / "obama.mask.png"), 0)
        src = cv2.imread(str(masked / "obama.png"))
        assert np.array_equal(img[m == 255], src[m == 255])  # the face is kept exactly
        colours = len(np.unique(img[m == 0].reshape(-1, 3), axis=0))
        assert colours > 100 if method == "telea" else colours == 1  # inpainted vs one mean colour


def test_usage_errors_exit_2(masked, tmp_path, data_dir):
    bg = str(data_dir / "faces" / "obama.jpg")
    for args in (["replace-bg", str(masked), str(tmp_path / "o"), "-b", bg, "--levels", "20"],
                 ["replace-bg", str(masked), str(tmp_path / "o"), "-b", bg, "--threshold", "5"],
                 ["replace-bg", str(masked), str(tmp_path / "o"), "-b", bg, "--device", "tpu"],
                 ["hallucinate", str(masked), str(tmp_path / "o"), "--device", "tpu"],
                 ["hallucinate", str(masked), str(tmp_path / "o"), "--batch-size", "0"],
                 ["align", str(masked), str(tmp_path / "o"), "--device", "gpu0"]):
        r = runner.invoke(app, args)
        assert r.exit_code == 2, (args, r.output)
        assert "Traceback" not in r.output
    assert not (tmp_path / "o").exists()


def test_missing_cuda_is_one_line_exit_1(masked, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    r = runner.invoke(app, ["hallucinate", str(masked), str(tmp_path / "o"), "--device", "cuda"])
    assert r.exit_code == 1 and "no CUDA device" in r.output and "Traceback" not in r.output


def test_unwritable_output_is_one_line_error(masked, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = runner.invoke(app, ["hallucinate", str(masked), str(blocker / "out")])
    assert r.exit_code == 1 and "cannot write" in r.output and str(blocker / "out") in r.output
    r = runner.invoke(app, ["evaluate", str(masked), str(masked), "-m", "ssim", "--json", str(blocker / "r.json")])
    assert r.exit_code == 1 and "cannot write" in r.output and "Traceback" not in r.output


def test_evaluate_json_to_stdout_and_replaced_report(faces_copy, tmp_path):
    gen = tmp_path / "gen"
    shutil.copytree(faces_copy, gen)
    r = runner.invoke(app, ["evaluate", str(gen), str(faces_copy), "-m", "ssim", "--json", "-"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["summary"]["ssim"]["n"] == 5 and not (tmp_path / "-").exists()
    assert "byte-identical" in r.stderr
    target = tmp_path / "r.csv"
    target.write_text("old")
    r = runner.invoke(app, ["evaluate", str(gen), str(faces_copy), "-m", "ssim", "--csv", str(target)])
    assert r.exit_code == 0 and "replaced" in r.stderr and target.read_text().startswith("file,ssim")


def test_evaluate_checks_fid_before_work(faces_copy, tmp_path, monkeypatch):
    one_g, one_r = tmp_path / "g", tmp_path / "r"
    one_g.mkdir(), one_r.mkdir()
    shutil.copy(faces_copy / "obama.png", one_g / "obama.png")
    shutil.copy(faces_copy / "obama.png", one_r / "obama.png")

    def computed(*_a, **_k):
        raise AssertionError("a metric was computed before the checks")

    monkeypatch.setattr("facefill.metrics.ssim.ssim", computed)
    monkeypatch.setattr("facefill.metrics.inception.load_inception", computed)
    r = runner.invoke(app, ["evaluate", str(one_g), str(one_r), "-m", "ssim", "fid"])
    assert r.exit_code == 1, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr  # one line: no progress bar, no traceback
    # it names what is wrong (fid, the folder, its count) and the fix
    assert "fid needs at least 2 images" in lines[0] and f"{one_g} has 1" in lines[0], lines[0]
    assert "leave fid out" in lines[0] and "evaluate more images" in lines[0], lines[0]


def test_evaluate_same_folder_warns(faces_copy):
    r = runner.invoke(app, ["evaluate", str(faces_copy), str(faces_copy), "-m", "ssim"])
    assert r.exit_code == 0 and "same folder" in r.stderr


def test_mask_rejects_unaligned_photos(tmp_path, data_dir):
    src = tmp_path / "photos"
    src.mkdir()
    img = cv2.imread(str(data_dir / "faces" / "obama.jpg"))
    side = min(img.shape[:2])
    cv2.imwrite(str(src / "big.png"), cv2.resize(img[:side, :side], (512, 512)))
    r = runner.invoke(app, ["mask", str(src), str(tmp_path / "m")])
    assert r.exit_code == 1 and "not an aligned face" in r.output and "facefill align" in r.output


def test_summary_is_not_wrapped_when_piped(raw, tmp_path):
    out = tmp_path / ("a-rather-long-output-folder-name-" * 3)
    proc = subprocess.run([sys.executable, "-m", "facefill", "align", str(raw), str(out)],
                          capture_output=True, text=True, env={**__import__("os").environ, "COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    summary = [line for line in proc.stderr.splitlines() if line.startswith("align:")]
    assert len(summary) == 1 and summary[0].endswith(str(out)), proc.stderr
    quiet = subprocess.run([sys.executable, "-m", "facefill", "align", str(raw), str(tmp_path / "q"), "--quiet"],
                           capture_output=True, text=True)
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == ""


def test_cli_start_up_imports_no_heavy_modules():
    code = ("import sys, facefill.cli.app as a; "
            "print(sorted(m for m in ('torch', 'cv2', 'dlib', 'kornia', 'numpy', 'piq') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


from pathlib import Path  # noqa: E402


def test_evaluate_context_metrics_cover_only_the_hallucinated_region(faces_copy, masked, tmp_path):
    from facefill.align.sidecar import read_valid

    gen = tmp_path / "gen"
    gen.mkdir()
    expected, padded = {}, 0
    for p in sorted(faces_copy.glob("*.png")):
        if p.name.endswith(".valid.png"):
            continue
        real = cv2.imread(str(p))
        face = cv2.imread(str(masked / p.name.replace(".png", ".mask.png")), 0) > 127
        valid = read_valid(p, real.shape[0])
        valid = np.ones(face.shape, bool) if valid is None else valid > 0.5
        padded += int(not valid.all())
        fake = real.copy()
        fake[~face] = np.clip(fake[~face].astype(int) + 40, 0, 255).astype(np.uint8)  # context changed
        fake[face] = 255 - fake[face]  # the face changed too: must not count in the context L1
        fake[~valid] = 255 - fake[~valid]  # and the padding (align's .valid.png 0): must not count either
        cv2.imwrite(str(gen / p.name), fake)
        context = ~face & valid
        expected[p.stem] = np.abs(fake[context].astype(float) - real[context]).mean() / 255
    assert 0 < padded < len(expected)  # the test photos have both kinds
    r = runner.invoke(app, ["evaluate", str(gen), str(faces_copy), "-m", "ssim", "--masks", str(masked), "--json", "-"])
    assert r.exit_code == 0, r.output
    rows = {row["file"]: row for row in json.loads(r.stdout)["rows"]}
    for stem, l1 in expected.items():
        assert rows[stem]["l1_context"] == pytest.approx(l1, abs=1e-6)
        assert 0 < rows[stem]["ssim_context"] < 1
    assert f"{padded} of {len(expected)} real images have padding" in " ".join(r.stderr.split())


@pytest.mark.parametrize("command", ["align", "mask", "hallucinate", "replace-bg"])
def test_an_error_before_any_work_is_exactly_one_line(command, tmp_path):
    """No empty line above it (a progress bar that never showed used to leave one)."""
    (tmp_path / "empty").mkdir()
    extra = ["--background", str(tmp_path / "empty")] if command == "replace-bg" else []
    r = runner.invoke(app, [command, str(tmp_path / "empty"), str(tmp_path / "out"), *extra])
    assert r.exit_code == 1 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, repr(r.stderr)


@pytest.mark.parametrize("args, words", [
    (["train", "x", "--batch-size", "0"], "--batch-size"),
    (["hallucinate", "a", "b", "--overwite"], "--overwrite"),  # with Click's suggestion
    (["replace-bg", "a", "b"], "--background"),
    (["align"], "raw_dir"),
    (["evaluate", "a", "b", "-m", "fdi"], "fdi"),
])
def test_clicks_own_usage_errors_are_one_line_exit_2(args, words):
    """Click's errors (range, unknown option, missing argument) read like facefill's: one line."""
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, repr(r.stderr)
    assert words in r.stderr and f"--help" in r.stderr


def test_bare_facefill_still_shows_the_help():
    r = runner.invoke(app, [])
    assert "Usage: facefill" in r.output and "hallucinate" in r.output
