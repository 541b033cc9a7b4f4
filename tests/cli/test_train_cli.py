import pytest
import torch
from typer.testing import CliRunner

from facefill.cli.app import app

runner = CliRunner()
FAST = ["--preset", "tiny", "--batch-size", "2", "--set", "loss.id=0", "--set", "loss.pc=0",
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
    # a foreign file as the newest state: one line, then the newest good state is used
    (run / "checkpoints" / "state_0000010.pt").write_bytes(b"not a checkpoint")
    r = runner.invoke(app, ["train", str(faces_copy), "--resume", str(run), "--steps", "5", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "state_0000010.pt is not a facefill training state" in r.output and "weights_only" not in r.output
    assert "resuming from" in r.output and "state_0000004.pt" in r.output


def test_train_errors(tmp_path):
    r = runner.invoke(app, ["train", str(tmp_path / "nope"), "--out", str(tmp_path), *FAST])
    assert r.exit_code == 1 and "not a folder" in r.output
    r = runner.invoke(app, ["train", str(tmp_path), "--regime", "sideways", *FAST])
    assert r.exit_code == 2
    r = runner.invoke(app, ["train", str(tmp_path), "--set", "train.nosuch=1"])
    assert r.exit_code == 2 and "nosuch" in r.output
    r = runner.invoke(app, ["train", str(tmp_path), "--set", "loss.gan=wgan"])
    assert r.exit_code == 2 and "hinge, nonsaturating, lsgan" in r.output


@pytest.mark.parametrize("bad", ["generator.width=nan", "generator.scales=[]", "train.lr_g=-1", "train.lr_g=nan",
                                 "train.betas=[2.0,0.999]", "train.seed=9223372036854775807", "loss.pixel=nan"])
def test_set_values_that_crashed_later_are_usage_errors_naming_the_key(tmp_path, bad):
    """Issue 24 item 13: refused when the config is read (exit 2), before any folder is made."""
    r = runner.invoke(app, ["train", str(tmp_path), "--out", str(tmp_path / "runs"), "--set", bad])
    assert r.exit_code == 2 and bad.split("=")[0] in r.output and "Traceback" not in r.output
    assert not (tmp_path / "runs").exists()


def test_unreadable_config_file_is_one_line(tmp_path):
    """Issue 24 item 10: a non-UTF-8 (or folder) --config is one line, not a UnicodeDecodeError."""
    latin = tmp_path / "latin1.toml"
    latin.write_bytes("[train]\nlr_g = 1e-4  # r\u00e9glage\n".encode("latin-1"))
    r = runner.invoke(app, ["train", str(tmp_path), "--config", str(latin)])
    assert r.exit_code == 2 and "not UTF-8" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["train", str(tmp_path), "--config", str(tmp_path)])
    assert r.exit_code == 2 and "cannot be read" in r.output


def test_device_errors(faces_copy, tmp_path):
    r = runner.invoke(app, ["train", str(faces_copy), "--out", str(tmp_path), *FAST, "--device", "tpu"])
    assert r.exit_code == 2 and "not a device" in r.output
    if not torch.cuda.is_available():
        r = runner.invoke(app, ["train", str(faces_copy), "--out", str(tmp_path / "o"), *FAST, "--device", "cuda"])
        assert r.exit_code == 1 and "no CUDA device" in r.output and "Traceback" not in r.output
        assert len(r.output.strip().splitlines()) == 1, r.output


def test_unwritable_out(faces_copy, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = runner.invoke(app, ["train", str(faces_copy), "--out", str(blocker), "--name", "r", *FAST])
    assert r.exit_code == 1 and str(blocker / "r") in r.output.replace("\n", "") and "Traceback" not in r.output


def test_a_training_state_given_to_hallucinate(faces_copy, tmp_path):
    out = tmp_path / "runs"
    r = runner.invoke(app, ["train", str(faces_copy), "--out", str(out), "--name", "r", "--steps", "1", *FAST])
    assert r.exit_code == 0, r.output
    state = out / "r" / "checkpoints" / "state_0000001.pt"
    r = runner.invoke(app, ["hallucinate", str(faces_copy), str(tmp_path / "h"), "--checkpoint", str(state)])
    assert r.exit_code == 1 and "is a training state" in r.output
    assert "generator.safetensors" in r.output


def test_init_and_checkpoint_with_crafted_metadata_are_one_line(faces_copy, masked, tmp_path):
    """Issue 24 item 11: format_version 'abc' in a release file, for --init and --checkpoint."""
    from safetensors.torch import load_file, save_file

    from facefill.config import get_preset
    from facefill.models import build_generator
    from facefill.models.release import read_metadata, save_release

    cfg = get_preset("tiny")
    good = save_release(tmp_path / "g.safetensors", build_generator(cfg), cfg)
    bad = tmp_path / "bad.safetensors"
    save_file(load_file(str(good)), str(bad), metadata={**read_metadata(good), "format_version": "abc"})
    r = runner.invoke(app, ["train", str(faces_copy), "--out", str(tmp_path / "runs"), *FAST, "--init", str(bad)])
    assert r.exit_code == 1 and "format_version 'abc'" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["hallucinate", str(masked), str(tmp_path / "o"), "--checkpoint", str(bad)])
    assert r.exit_code == 1 and "format_version 'abc'" in r.output and "Traceback" not in r.output


@pytest.fixture(scope="module")
def trained_run(aligned_faces, tmp_path_factory):
    """A tiny 2-step run (its checkpoints/state_0000002.pt is altered by the tests below)."""
    out = tmp_path_factory.mktemp("runs")
    r = runner.invoke(app, ["train", str(aligned_faces), "--out", str(out), "--name", "r", "--steps", "2", *FAST])
    assert r.exit_code == 0, r.output
    return out / "r"


def _other_shapes(state):
    from facefill.config import get_preset, merge
    from facefill.models import build_generator

    state["G"] = build_generator(merge(get_preset("tiny"), {"generator": {"width": 0.0625}})).state_dict()


@pytest.mark.parametrize("damage, message", [
    (_other_shapes, "G: "),
    (lambda s: s.update(config=[1, 2]), "stored config cannot be read (a list"),
    (lambda s: s.update(step="2"), "step is '2', not a whole number"),
    (lambda s: s.update(rng={"python": 1}), "rng: "),
    (lambda s: s["opt_g"]["param_groups"][0].update(params=[0, 1]), "opt_g: 2 parameters"),
    (lambda s: next(iter(s["opt_d"]["state"].values())).update(exp_avg=torch.zeros(3, 3)), "opt_d: parameter"),
])
def test_resume_from_a_state_that_loads_but_does_not_fit_is_one_line(trained_run, aligned_faces, tmp_path, damage,
                                                                       message):
    """Issue 24 item 12: each was a traceback (224 lines for other shapes) before any message."""
    import shutil

    run = tmp_path / "r"
    shutil.copytree(trained_run, run)
    path = run / "checkpoints" / "state_0000002.pt"
    state = torch.load(path, weights_only=True)
    damage(state)
    torch.save(state, path)
    r = runner.invoke(app, ["train", str(aligned_faces), "--resume", str(run), "--steps", "3", "--device", "cpu"])
    assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output, r.output
    assert len(r.stderr.strip().splitlines()) == 1 and "state_0000002.pt" in r.output


def test_batch_size_0_is_a_usage_error_and_quiet_prints_nothing_on_success(faces_copy, tmp_path):
    """Issue 24 item 16: --batch-size 0 was exit 1 (docs: 2); train had no --quiet."""
    r = runner.invoke(app, ["train", str(faces_copy), "--out", str(tmp_path / "runs"), "--batch-size", "0"])
    assert r.exit_code == 2 and "--batch-size" in r.output and not (tmp_path / "runs").exists()
    args = [a for a in FAST if a not in ("--batch-size", "2")]
    r = runner.invoke(app, ["train", str(faces_copy), "--out", str(tmp_path / "runs"), "--name", "q", "--steps", "1",
                            "--batch-size", "2", *args, "--quiet"])
    assert r.exit_code == 0 and r.stderr == "", r.stderr
    assert (tmp_path / "runs" / "q" / "generator.safetensors").is_file()


def test_data_on_device_option(faces_copy, tmp_path):
    r = runner.invoke(app, ["train", str(faces_copy), "--out", str(tmp_path), *FAST, "--data-on-device", "maybe"])
    assert r.exit_code == 2 and "--data-on-device" in r.output
    r = runner.invoke(app, ["train", str(faces_copy), "--out", str(tmp_path), "--name", "d", "--steps", "1", *FAST,
                            "--data-on-device", "on"])
    assert r.exit_code == 0, r.output
    assert "training data on cpu" in r.output and (tmp_path / "d" / "checkpoints" / "state_0000001.pt").is_file()
