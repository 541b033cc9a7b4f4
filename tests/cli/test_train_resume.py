"""Issue 33 item 12: train locks its run folder, --resume never ignores a setting in silence, and
the DataLoader's worker count is chosen from the machine."""

import pytest
from typer.testing import CliRunner

from facefill.cli.app import app

runner = CliRunner()
FAST = ["--preset", "tiny", "--batch-size", "2", "--set", "loss.id=0", "--set", "loss.pc=0",
        "--set", "train.val_fraction=0.0", "--device", "cpu"]


@pytest.fixture
def run(faces_copy, tmp_path):
    r = runner.invoke(app, ["train", str(faces_copy), "--out", str(tmp_path / "runs"), "--name", "r", "--steps", "1",
                            *FAST])
    assert r.exit_code == 0, r.output
    return tmp_path / "runs" / "r"


def test_a_second_train_into_a_running_run_is_refused(run, faces_copy):
    """Two 'train IN --resume RUN' at once both ran to the end and wrote duplicate metrics rows."""
    from facefill.pipeline.outputs import OutputLock

    assert not (run / ".facefill-lock").exists()  # released when the run ended
    before = (run / "metrics.csv").read_bytes(), sorted(p.name for p in (run / "checkpoints").iterdir())
    with OutputLock(run, "train", {}):  # a run going on in this folder (this process is alive)
        r = runner.invoke(app, ["train", str(faces_copy), "--resume", str(run), "--steps", "3", "--device", "cpu"])
    assert r.exit_code == 1 and "in use by another 'train' run" in r.output, r.output
    assert "Traceback" not in r.output
    assert ((run / "metrics.csv").read_bytes(), sorted(p.name for p in (run / "checkpoints").iterdir())) == before
    r = runner.invoke(app, ["train", str(faces_copy), "--resume", str(run), "--steps", "3", "--device", "cpu"])
    assert r.exit_code == 0 and (run / "checkpoints" / "state_0000003.pt").is_file(), r.output
    assert not (run / ".facefill-lock").exists()


@pytest.mark.parametrize("extra", [["--set", "train.lr_g=1"], ["--preset", "small"], ["--batch-size", "4"],
                                   ["--regime", "progressive"], ["--out", "elsewhere"], ["--name", "other"]])
def test_resume_refuses_what_it_would_ignore(extra, run, faces_copy):
    config = (run / "config.toml").read_bytes()
    r = runner.invoke(app, ["train", str(faces_copy), "--resume", str(run), "--steps", "2", *extra])
    assert r.exit_code == 2, r.output
    errors = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and extra[0] in errors[0] and "--init" in errors[0] and "--steps" in errors[0], r.output
    assert (run / "config.toml").read_bytes() == config and not (run / "checkpoints" / "state_0000002.pt").exists()


def test_loader_workers_follow_the_machine():
    from facefill.train.loop import loader_workers

    assert [loader_workers(2, cores) for cores in (1, 2, 3, 4, 16)] == [0, 0, 2, 2, 2]
    assert loader_workers(8, 4) == 3 and loader_workers(0, 16) == 0


def test_a_two_core_machine_trains_without_workers(faces_copy, tmp_path, monkeypatch):
    import facefill.train.loop as loop

    seen = []

    class Loader(loop.DataLoader):
        def __init__(self, *args, **kwargs):
            seen.append(kwargs["num_workers"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(loop, "DataLoader", Loader)
    monkeypatch.setattr(loop, "machine_cores", lambda: 2)
    r = runner.invoke(app, ["train", str(faces_copy), "--out", str(tmp_path / "runs"), "--name", "w", "--steps", "1",
                            *FAST, "--set", "train.num_workers=2", "--set", "train.data_on_device=off"])
    assert r.exit_code == 0, r.output
    assert seen and set(seen) == {0}, seen
    monkeypatch.setattr(loop, "machine_cores", lambda: 8)
    seen.clear()
    r = runner.invoke(app, ["train", str(faces_copy), "--resume", str(tmp_path / "runs" / "w"), "--steps", "2"])
    assert r.exit_code == 0 and seen and set(seen) == {2}, (seen, r.output)
