"""Output safety shared by every command: inputs are never overwritten or dropped."""

import json
import os
import socket
import subprocess
import sys

import pytest

from facefill.errors import OutputError
from facefill.pipeline.outputs import (OutputLock, RunManifest, Write, check_write_plan, plan_outputs,
                                       write_failures)


def test_output_inside_or_equal_to_input_is_refused(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for out in (src, src / "sub", src / "a" / "b"):
        with pytest.raises(OutputError, match="input folder"):
            check_write_plan([Write("output folder", out)], {"input folder": src})
    assert not (src / "sub").exists()  # refused before creating anything
    check_write_plan([Write("output folder", tmp_path / "out")], {"input folder": src})
    assert (tmp_path / "out").is_dir()


def test_unwritable_output_names_the_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write into output folder .*file/out"):
        check_write_plan([Write("output folder", blocker / "out")], {"input folder": tmp_path / "in"})
    with pytest.raises(OutputError, match="not a folder"):
        check_write_plan([Write("output folder", blocker)], {"input folder": tmp_path / "in"})


def test_unwritable_file_target_is_refused_before_any_work(tmp_path):
    """Issue 24 item 17: a --grid or --json that cannot be written is found by the plan, not after
    the run; a file target's missing parent folders are made."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write --grid .*file/sheet.png"):
        check_write_plan([Write("output folder", tmp_path / "out"), Write("--grid", blocker / "sheet.png", folder=False)],
                         {"input folder": tmp_path / "in"})
    states = check_write_plan([Write("--json", tmp_path / "new" / "deep" / "r.json", folder=False)], {})
    assert states == {"--json": "new"} and (tmp_path / "new" / "deep").is_dir()
    assert list((tmp_path / "new" / "deep").iterdir()) == []  # the probe is gone


def test_hallucinate_with_an_unwritable_grid_stops_before_the_model_runs(masked, tmp_path):
    from facefill.pipeline.hallucinate import hallucinate_folder
    from facefill.options import HallucinateOptions

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="--grid"):
        hallucinate_folder(masked, tmp_path / "out", HallucinateOptions(method="mean", grid=blocker / "g.png"))
    assert not list((tmp_path / "out").glob("*.png"))


def test_name_collisions_keep_every_input(tmp_path):
    src = tmp_path / "in"
    files = [src / "a.jpg", src / "a.png", src / "b.jpg", src / "sub" / "a.jpg"]
    plan = plan_outputs(files, src, tmp_path / "o")
    assert plan[src / "a.jpg"] == tmp_path / "o" / "a.jpg.png"
    assert plan[src / "a.png"] == tmp_path / "o" / "a.png.png"
    assert plan[src / "b.jpg"] == tmp_path / "o" / "b.png"
    assert plan[src / "sub" / "a.jpg"] == tmp_path / "o" / "sub" / "a.png"
    assert len(set(plan.values())) == len(files)


def test_manifest_allows_resume_only_with_the_same_settings(tmp_path):
    m = RunManifest(tmp_path, "hallucinate", {"weights": "aaa", "feather": 2})
    m.check_resume(has_outputs=False, overwrite=False)  # empty folder: fine
    m.write()
    m.check_resume(has_outputs=True, overwrite=False)  # same settings: resume
    other = RunManifest(tmp_path, "hallucinate", {"weights": "bbb", "feather": 2})
    with pytest.raises(OutputError, match="weights: 'aaa' -> 'bbb'.*--overwrite"):
        other.check_resume(has_outputs=True, overwrite=False)
    other.check_resume(has_outputs=True, overwrite=True)
    (tmp_path / ".facefill-run.json").unlink()
    with pytest.raises(OutputError, match="no record"):
        m.check_resume(has_outputs=True, overwrite=False)


def test_failures_tsv_written_and_cleared(tmp_path):
    path = write_failures(tmp_path, [(tmp_path / "x.png", "x.png: broken\nreally")])
    # a reason over several lines stays on its row, escaped like a name (tsv_field)
    assert path.read_text().splitlines() == ["input\treason", f"{tmp_path / 'x.png'}\tx.png: broken\\nreally"]
    assert write_failures(tmp_path, []) is None and not path.exists()


def test_write_plan_checks_every_write_against_every_read_and_each_other(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    (src / "a.png").write_bytes(b"")
    reads = {"input folder": src, "--real-dir": tmp_path / "real"}
    for writes, message in (
            ([Write("output folder", tmp_path)], f"input folder {src} is inside the output folder"),
            ([Write("output folder", out), Write("--grid", out / "g.png", folder=False)], "--grid .* is inside the output folder"),
            ([Write("--json", tmp_path / "r", folder=False), Write("--csv", tmp_path / "r", folder=False)], "same path"),
            ([Write("--grid", tmp_path / "real" / "g.png", folder=False)], "inside the --real-dir"),
            ([Write("--grid", src / "a.png", folder=False)], "is inside the input folder")):
        with pytest.raises(OutputError, match=message):
            check_write_plan(writes, reads)
    assert not out.exists()  # refused before anything was created
    (tmp_path / "g.png").write_bytes(b"")
    states = check_write_plan([Write("output folder", out), Write("--grid", tmp_path / "g.png", folder=False),
                               Write("--json", "-", folder=False), Write("--csv", None, folder=False)], reads)
    assert states == {"--grid": "replace", "--json": "-"} and out.is_dir()


def test_overwrite_removes_only_recorded_files_inside_the_folder(tmp_path):
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    for name in ("a.png", "sub/b.png", "mine.png"):
        (out / name).write_bytes(b"x")
    (tmp_path / "outside.png").write_bytes(b"x")
    m = RunManifest(out, "mask", {})
    m.record("a.jpg", [out / "a.png"])
    m.record("sub/b.jpg", [out / "sub" / "b.png"])
    m.close()
    with open(out / ".facefill-run.files", "a") as fh:
        fh.write("../outside.png\ta.jpg\n")  # a damaged record cannot reach outside the folder
    assert m.remove_previous({"sub/b.jpg"}) == 1  # a shard removes only its inputs' files
    assert (out / "a.png").exists() and not (out / "sub").exists()
    assert m.remove_previous() == 1
    left = sorted(p.name for p in out.iterdir() if p.name != ".facefill-failures.lock")  # the folder's bookkeeping lock
    assert left == ["mine.png"] and (tmp_path / "outside.png").exists()


def test_lock_live_stale_and_shards(tmp_path):
    settings = {"method": "mean"}
    with OutputLock(tmp_path, "hallucinate", settings):
        with pytest.raises(OutputError, match=f"in use by another 'hallucinate' run \\(pid {os.getpid()}"):
            OutputLock(tmp_path, "mask", {}).acquire()
    assert not list(tmp_path.iterdir())
    # shards of one run share the folder; another run, or other settings, do not
    with OutputLock(tmp_path, "hallucinate", settings, (0, 2)), OutputLock(tmp_path, "hallucinate", settings, (1, 2)):
        for other in (OutputLock(tmp_path, "hallucinate", settings), OutputLock(tmp_path, "hallucinate", settings, (0, 2)),
                      OutputLock(tmp_path, "hallucinate", {"method": "ns"}, (1, 3))):
            with pytest.raises(OutputError, match="in use"):
                other.acquire()
    assert not list(tmp_path.iterdir())
    # a lock left by a process that is gone (or whose PID now belongs to another process) is taken over
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for holder in ({"pid": dead.pid}, {"pid": os.getpid(), "started": "1"}):
        (tmp_path / ".facefill-lock").write_text(json.dumps({**holder, "host": socket.gethostname()}))
        with OutputLock(tmp_path, "mask", {}) as lock:
            assert json.loads(lock.path.read_text())["pid"] == os.getpid()
        assert not list(tmp_path.iterdir())


def test_a_shard_s_overwrite_never_loses_the_lines_another_shard_is_recording(tmp_path):
    """Shard 1 of a run records its files while shard 0 starts with --overwrite (which rewrites the
    record without shard 0's old lines): shard 1's later lines still land in the record."""
    (tmp_path / "a.png").write_bytes(b"a")
    (tmp_path / "b.png").write_bytes(b"b")
    (tmp_path / "c.png").write_bytes(b"c")
    one = RunManifest(tmp_path, "hallucinate", {})
    one.record("b.jpg", [tmp_path / "b.png"])  # shard 1 is writing: its record is open
    zero = RunManifest(tmp_path, "hallucinate", {})
    zero.record("a.jpg", [tmp_path / "a.png"])
    zero.close()
    RunManifest(tmp_path, "hallucinate", {}).remove_previous({"a.jpg"})  # shard 0 again, --overwrite
    one.record("c.jpg", [tmp_path / "c.png"])
    one.close()
    lines = (tmp_path / ".facefill-run.files").read_text().splitlines()
    assert sorted(line.split("\t")[0] for line in lines) == ["b.png", "c.png"] and not (tmp_path / "a.png").exists()
