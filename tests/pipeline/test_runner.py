"""The batch runner's contract (facefill.pipeline.runner): what every batch command relies on."""

import json
import os
from pathlib import Path

import pytest

from facefill.data.io import list_images
from facefill.errors import ImageError, OutputError, OutputPathError
from facefill.pipeline.outputs import RunManifest
from facefill.pipeline.runner import Folders, Job, run_folder


def _inputs(tmp_path, n=7):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(n):
        (src / f"f{i}.png").write_bytes(b"x")
    return src


def _job(plan, calls, fail_load=(), fail_write=(), stop_write=(), batch_size=3, threads=2):
    """A stage that 'computes' the input's name in upper case and writes it as text."""

    def load(path):
        calls.append(("load", path.name))
        if path.name in fail_load:
            raise ImageError(f"{path}: unreadable")
        return path.stem

    def compute(items):
        calls.append(("compute", tuple(items)))
        return [s.upper() for s in items]

    def write(path, item, result):
        if path.name in stop_write:
            raise OutputError("disk full")
        if path.name in fail_write:
            raise OutputPathError(f"cannot write {plan.outputs[path]}: a folder is in the way")
        plan.outputs[path].parent.mkdir(parents=True, exist_ok=True)
        plan.outputs[path].write_text(result)
        return [plan.outputs[path]]

    return Job("test", {"k": 1}, load, compute, write, done=lambda p: plan.outputs[p].is_file(),
               batch_size=batch_size, read_ahead=threads, write_threads=threads)


@pytest.mark.parametrize("threads", [0, 2])
def test_bad_inputs_are_skipped_and_every_good_output_kept(tmp_path, threads):
    src, calls, seen = _inputs(tmp_path), [], []
    report, plan = run_folder(Folders(src, tmp_path / "out", "empty"),
                              lambda plan: _job(plan, calls, fail_load={"f1.png"}, fail_write={"f5.png"}, threads=threads),
                              progress=lambda done, total, name: seen.append((done, total)))
    assert [p.name for p in report.done] == ["f0.png", "f2.png", "f3.png", "f4.png", "f6.png"]
    assert [p.name for p, _ in report.failed] == ["f1.png", "f5.png"]
    assert (tmp_path / "out" / "f3.png").read_text() == "F3"
    assert "f1.png" in (tmp_path / "out" / "failures.tsv").read_text()
    assert seen == [(3, 7), (6, 7), (7, 7)]  # per chunk of 3
    # compute sees only the loaded inputs of a chunk, batched
    assert ("compute", ("f0", "f2")) in calls
    # every written file is in the run record, by input
    # (each input's files are recorded before they are written and again after, with the
    # input's content identity; f5's write failed, so its line names a file that is not there)
    rows = {tuple(line.split("\t")[:2]) for line in (tmp_path / "out" / ".facefill-run.files").read_text().splitlines()}
    assert rows == {(f"f{i}.png", f"f{i}.png") for i in (0, 2, 3, 4, 5, 6)}
    written = RunManifest(tmp_path / "out", "test", {}).previous_files()
    assert sorted(p.name for p, _ in written) == [f"f{i}.png" for i in (0, 2, 3, 4, 6)]
    assert json.loads((tmp_path / "out" / ".facefill-run.json").read_text())["command"] == "test"


def test_resume_skips_done_inputs_and_overwrite_redoes_them(tmp_path):
    src, calls = _inputs(tmp_path), []
    run_folder(Folders(src, tmp_path / "out", "empty"), lambda plan: _job(plan, calls, fail_load={"f1.png"}))
    calls.clear()
    report, _ = run_folder(Folders(src, tmp_path / "out", "empty"), lambda plan: _job(plan, calls))
    assert [p.name for p in report.done] == ["f1.png"] and len(report.skipped) == 6
    assert [c for c in calls if c[0] == "load"] == [("load", "f1.png")]
    report, _ = run_folder(Folders(src, tmp_path / "out", "empty"), lambda plan: _job(plan, calls), overwrite=True)
    assert len(report.done) == 7 and not report.skipped


def test_an_output_error_stops_the_batch_and_keeps_what_was_written(tmp_path):
    src, calls = _inputs(tmp_path), []
    with pytest.raises(OutputError, match="disk full"):
        run_folder(Folders(src, tmp_path / "out", "empty"), lambda plan: _job(plan, calls, stop_write={"f4.png"}))
    kept = sorted(p.name for p in list_images(tmp_path / "out"))
    assert kept[:3] == ["f0.png", "f1.png", "f2.png"] and "f4.png" not in kept
    assert not (tmp_path / "out" / ".facefill-lock").exists()  # the lock is released


def test_should_stop_between_chunks_writes_the_chunk_in_flight(tmp_path):
    src, calls = _inputs(tmp_path), []
    asked = []

    def stop():
        asked.append(1)
        return len(asked) > 1  # after the first chunk

    report, _ = run_folder(Folders(src, tmp_path / "out", "empty"), lambda plan: _job(plan, calls), should_stop=stop)
    assert report.stopped and [p.name for p in report.done] == ["f0.png", "f1.png", "f2.png"]
    assert (tmp_path / "out" / "f2.png").read_text() == "F2"


def test_shards_cover_every_input_once_and_empty_folders_are_refused(tmp_path):
    from facefill.errors import FacefillError

    src, calls = _inputs(tmp_path), []
    done = []
    for i in range(3):
        report, _ = run_folder(Folders(src, tmp_path / "out", "empty"), lambda plan: _job(plan, calls), shard=(i, 3))
        done += [p.name for p in report.done]
    assert sorted(done) == [f"f{i}.png" for i in range(7)]
    (tmp_path / "none").mkdir()
    with pytest.raises(FacefillError, match="nothing here"):
        run_folder(Folders(tmp_path / "none", tmp_path / "o2", "nothing here"), lambda plan: _job(plan, calls))


def test_a_crash_while_computing_still_records_the_chunk_written_behind(tmp_path):
    """Chunk 1's files are written in threads while chunk 2 computes; when chunk 2's compute
    raises (a bug, Ctrl-C), chunk 1's files are still in the run record, so --overwrite can
    remove them later."""
    src, calls = _inputs(tmp_path), []

    def make(plan):
        job = _job(plan, calls)
        compute = job.compute

        def crash_on_second(items):
            if "f3" in items:
                raise KeyboardInterrupt
            return compute(items)

        job.compute = crash_on_second
        return job

    with pytest.raises(KeyboardInterrupt):
        run_folder(Folders(src, tmp_path / "out", "empty"), make)
    written = RunManifest(tmp_path / "out", "test", {}).previous_files()
    assert sorted((p.name, key) for p, key in written) == [(f"f{i}.png", f"f{i}.png") for i in range(3)]
    assert not (tmp_path / "out" / ".facefill-lock").exists()


_KILLED_RUN = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from pipeline.test_runner import _job
from facefill.pipeline.runner import Folders, run_folder

def make(plan):
    job = _job(plan, [], batch_size=2, threads=2)
    write = job.write
    def write_then_die(path, item, result):
        files = write(path, item, result)
        if path.name == "f3.png":  # written, and the process dies before anything else
            os.kill(os.getpid(), signal.SIGKILL)
        return files
    job.write = write_then_die
    return job

run_folder(Folders(Path({src!r}), Path({out!r}), "empty"), make)
"""


def test_a_run_killed_right_after_writing_leaves_no_unrecorded_output(tmp_path):
    """kill -9 between an input's files being written and the runner taking note of them: the
    files were recorded before they were written, so a later run resumes, and --overwrite
    redoes them (before, every later run was refused: 'no facefill run recorded writing')."""
    import subprocess
    import sys

    src, out = _inputs(tmp_path), tmp_path / "out"
    script = _KILLED_RUN.format(tests=str(Path(__file__).parents[1]), src=str(src), out=str(out))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    assert (out / "f3.png").is_file()
    recorded = {p.name for p, _ in RunManifest(out, "test", {}).previous_files()}
    assert "f3.png" in recorded
    calls = []
    report, _ = run_folder(Folders(src, out, "empty"), lambda plan: _job(plan, calls))
    assert "f3.png" in [p.name for p in report.skipped] and len(report.done) + len(report.skipped) == 7
    report, _ = run_folder(Folders(src, out, "empty"), lambda plan: _job(plan, calls), overwrite=True)
    assert len(report.done) == 7


def test_inputs_added_one_call_at_a_time_keep_every_output(tmp_path):
    """``ls photos/* | xargs -I{} facefill CMD {} out/``: each call's input is part of its
    outputs' identity, so every call adds its output, and --overwrite on one input removes
    that input's outputs only."""
    src, calls = _inputs(tmp_path, n=4), []
    out = tmp_path / "out"
    for path in sorted(src.iterdir()):
        report, _ = run_folder(Folders(path, out, "empty"), lambda plan: _job(plan, calls))
        assert len(report.done) == 1
    assert sorted(p.name for p in out.glob("f*.png")) == ["f0.png", "f1.png", "f2.png", "f3.png"]
    report, _ = run_folder(Folders(src / "f2.png", out, "empty"), lambda plan: _job(plan, calls), overwrite=True)
    assert [p.name for p in report.done] == ["f2.png"]
    assert sorted(p.name for p in out.glob("f*.png")) == ["f0.png", "f1.png", "f2.png", "f3.png"]
    report, _ = run_folder(Folders(src, out, "empty"), lambda plan: _job(plan, calls))  # the folder: all done
    assert len(report.skipped) == 4


def test_an_input_whose_content_changed_is_not_resumed(tmp_path):
    """A photo replaced under the same name is another input: its old outputs are not kept as
    if they were its own (refused, one line), and --overwrite redoes that input only."""
    src, calls = _inputs(tmp_path, n=3), []
    out = tmp_path / "out"
    run_folder(Folders(src, out, "empty"), lambda plan: _job(plan, calls))
    (src / "f1.png").write_bytes(b"another photo")
    with pytest.raises(OutputError, match="other photos named f1.png.*--overwrite"):
        run_folder(Folders(src, out, "empty"), lambda plan: _job(plan, calls))
    os.utime(src / "f0.png")  # touched, same content: the same input
    calls.clear()
    report, _ = run_folder(Folders(src, out, "empty"), lambda plan: _job(plan, calls), overwrite=True)
    assert len(report.done) == 3
    report, _ = run_folder(Folders(src, out, "empty"), lambda plan: _job(plan, calls))
    assert len(report.skipped) == 3


def test_failures_of_other_shards_and_calls_are_kept(tmp_path):
    """failures.tsv is merged: a shard (or a per-file call) with no failures leaves the rows of
    the others, and a rerun that fixes an input removes only its row."""
    src, calls = _inputs(tmp_path, n=4), []
    out = tmp_path / "out"
    run_folder(Folders(src, out, "empty"), lambda plan: _job(plan, calls, fail_load={"f0.png"}), shard=(0, 2))
    run_folder(Folders(src, out, "empty"), lambda plan: _job(plan, calls), shard=(1, 2))
    assert "f0.png" in (out / "failures.tsv").read_text()
    run_folder(Folders(src, out, "empty"), lambda plan: _job(plan, calls, fail_load={"f1.png"}), shard=(1, 2),
               overwrite=True)
    rows = (out / "failures.tsv").read_text().splitlines()[1:]
    assert sorted(Path(r.split("\t")[0]).name for r in rows) == ["f0.png", "f1.png"]
    run_folder(Folders(src, out, "empty"), lambda plan: _job(plan, calls), shard=(0, 2))
    rows = (out / "failures.tsv").read_text().splitlines()[1:]
    assert [Path(r.split("\t")[0]).name for r in rows] == ["f1.png"]
    run_folder(Folders(src, out, "empty"), lambda plan: _job(plan, calls), shard=(1, 2))
    assert not (out / "failures.tsv").exists()


def test_overwrite_never_replaces_a_file_no_run_recorded(tmp_path):
    """A user's own file at an output name: refused without --overwrite (nothing records it as an
    output) and with it (no run recorded writing it), untouched either way."""
    src, calls = _inputs(tmp_path), []
    out = tmp_path / "out"
    out.mkdir()
    (out / "f2.png").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(OutputError, match="may be yours") as exc:
            run_folder(Folders(src, out, "empty"), lambda plan: _job(plan, calls), overwrite=overwrite)
        assert "f2.png" in str(exc.value) or not overwrite
    assert (out / "f2.png").read_text() == "mine" and not calls
    # after a run that wrote f0..f6 itself (the user's file moved away), --overwrite redoes them
    (out / "f2.png").rename(tmp_path / "kept.png")
    run_folder(Folders(src, out, "empty"), lambda plan: _job(plan, calls))
    report, _ = run_folder(Folders(src, out, "empty"), lambda plan: _job(plan, calls), overwrite=True)
    assert len(report.done) == 7


def test_outputs_of_another_input_folder_are_not_resumed(tmp_path):
    """Photos of the same names in another folder are other inputs: the run record says which
    folder made the outputs, so a resume from another one is refused, not silently kept."""
    src, calls = _inputs(tmp_path), []
    other = tmp_path / "other"
    other.mkdir()
    for i in range(7):
        (other / f"f{i}.png").write_bytes(b"y")
    run_folder(Folders(src, tmp_path / "out", "empty"), lambda plan: _job(plan, calls))
    with pytest.raises(OutputError, match="input"):
        run_folder(Folders(other, tmp_path / "out", "empty"), lambda plan: _job(plan, calls))
    report, _ = run_folder(Folders(other, tmp_path / "out", "empty"), lambda plan: _job(plan, calls), overwrite=True)
    assert len(report.done) == 7


def test_what_cannot_be_listed_fails_loudly_instead_of_being_dropped(tmp_path, monkeypatch):
    """Issue 33 #9: an unreadable subfolder, a dangling link and a link loop were dropped in
    silence (exit 0, '0 failed'); a linked subfolder and .gif files were never listed."""
    import facefill.data.io as io

    src, calls = _inputs(tmp_path, n=2), []
    extra = tmp_path / "elsewhere"
    extra.mkdir()
    (extra / "e.png").write_bytes(b"x")
    (src / "linked").symlink_to(extra)  # followed
    (src / "anim.gif").write_bytes(b"x")  # listed (OpenCV reads a GIF's first frame)
    (src / "gone.jpg").symlink_to(tmp_path / "nothing.jpg")
    (src / "loop.png").symlink_to(src / "loop.png")
    (src / "back").symlink_to(src)  # a folder link back to the input folder: not listed twice
    (src / "locked").mkdir()
    (src / "locked" / "l.png").write_bytes(b"x")
    scandir = os.scandir

    def refusing(path):
        if Path(path).name == "locked":  # root reads any folder: refuse as a chmod 000 would
            raise PermissionError(13, "Permission denied")
        return scandir(path)

    monkeypatch.setattr(io.os, "scandir", refusing)
    report, plan = run_folder(Folders(src, tmp_path / "out", "empty"), lambda plan: _job(plan, calls))
    assert sorted(p.relative_to(src).as_posix() for p in report.done) == ["anim.gif", "f0.png", "f1.png", "linked/e.png"]
    failed = {p.name: why for p, why in report.failed}
    assert set(failed) == {"back", "gone.jpg", "locked", "loop.png"}
    assert "cannot list" in failed["locked"] and "does not exist" in failed["gone.jpg"] and "loop" in failed["loop.png"]
    assert report.total == 8 and "locked" in (tmp_path / "out" / "failures.tsv").read_text()
    monkeypatch.setattr(io.os, "scandir", scandir)  # fixed: its row goes, its image is done
    for link in ("gone.jpg", "loop.png", "back"):
        (src / link).unlink()
    report, _ = run_folder(Folders(src, tmp_path / "out", "empty"), lambda plan: _job(plan, calls))
    assert [p.name for p in report.done] == ["l.png"] and not report.failed
    assert not (tmp_path / "out" / "failures.tsv").exists()


@pytest.mark.parametrize("threads", [0, 2])
def test_a_prepare_step_runs_a_chunk_ahead_in_its_own_thread_on_the_good_items(tmp_path, threads):
    """Job.prepare (donor choice, for hallucinate) takes a chunk's good items and hands compute its
    result; with reading threads it runs in a thread of its own, while compute works on the chunk before."""
    import threading
    import time

    src, calls = _inputs(tmp_path), []
    where, timeline = set(), []

    def make(plan):
        job = _job(plan, calls, fail_load={"f4.png"}, threads=threads)
        compute = job.compute

        def prepare(items):
            where.add(threading.current_thread() is threading.main_thread())
            timeline.append(("prepare", tuple(items), time.perf_counter()))
            return [s + "!" for s in items]

        def slow_compute(prepared):
            timeline.append(("compute", tuple(prepared), time.perf_counter()))
            time.sleep(0.2)
            return compute(prepared)

        job.prepare, job.compute = prepare, slow_compute
        return job

    report, _ = run_folder(Folders(src, tmp_path / "out", "empty"), make)
    assert [p.name for p in report.done] == ["f0.png", "f1.png", "f2.png", "f3.png", "f5.png", "f6.png"]
    assert [p.name for p, _ in report.failed] == ["f4.png"]
    assert (tmp_path / "out" / "f5.png").read_text() == "F5!"  # compute took the prepared items
    prepared = [t[1] for t in timeline if t[0] == "prepare"]
    assert prepared == [("f0", "f1", "f2"), ("f3", "f5"), ("f6",)]  # the failed load is not in it
    assert where == ({False} if threads else {True})
    if threads:  # chunk 2 was prepared while chunk 1 computed (each compute takes 0.2 s)
        at = {(t[0], t[1][0].rstrip("!")): t[2] for t in timeline}
        assert at[("prepare", "f3")] < at[("compute", "f0")] + 0.2


def test_a_prepare_step_that_raises_stops_the_run_and_keeps_the_outputs_written(tmp_path):
    """A bug in prepare propagates (as one in compute does); chunks written before it are recorded."""
    src, calls = _inputs(tmp_path), []

    def make(plan):
        job = _job(plan, calls)

        def prepare(items):
            if "f3" in items:
                raise RuntimeError("bug")
            return items

        job.prepare = prepare
        return job

    with pytest.raises(RuntimeError, match="bug"):
        run_folder(Folders(src, tmp_path / "out", "empty"), make)
    assert (tmp_path / "out" / "f0.png").read_text() == "F0"
    rows = {line.split("\t")[0] for line in (tmp_path / "out" / ".facefill-run.files").read_text().splitlines()}
    assert {"f0.png", "f1.png", "f2.png"} <= rows
