from typer.testing import CliRunner

from facefill.cli.app import app

runner = CliRunner()
FAST = ["--preset", "tiny", "--batch-size", "2", "--set", "loss.use_id=false", "--set", "loss.use_pc=false",
        "--set", "train.val_fraction=0.0", "--device", "cpu"]


def test_train_then_resume(faces_copy, tmp_path):
    out = tmp_path / "runs"
    r = runner.invoke(app, ["train", str(faces_copy), "--out", str(out), "--name", "r", "--steps", "2", *FAST])
    assert r.exit_code == 0, r.output
    run = out / "r"
    assert (run / "generator.safetensors").is_file() and (run / "metrics.csv").is_file()
    r = runner.invoke(app, ["train", str(faces_copy), "--resume", str(run), "--steps", "4", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "4 steps" in r.output
    assert (run / "checkpoints" / "state_0000004.pt").is_file()
    # the same name again is refused rather than overwritten
    r = runner.invoke(app, ["train", str(faces_copy), "--out", str(out), "--name", "r", "--steps", "2", *FAST])
    assert r.exit_code == 1 and "--resume" in r.output


def test_train_errors(tmp_path):
    r = runner.invoke(app, ["train", str(tmp_path / "nope"), "--out", str(tmp_path), *FAST])
    assert r.exit_code == 1 and "not a folder" in r.output
    r = runner.invoke(app, ["train", str(tmp_path), "--regime", "sideways", *FAST])
    assert r.exit_code == 2
    r = runner.invoke(app, ["train", str(tmp_path), "--set", "train.nosuch=1"])
    assert r.exit_code == 1 and "nosuch" in r.output
