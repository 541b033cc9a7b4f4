"""No command destroys, shadows or keeps stale user files (issue 23; docs/cli-conventions.md):
one list of written paths checked against the read paths before any work, names that cannot
collide with companions, a run record that holds every setting and the files written, a lock."""

import hashlib
import json
import shutil
import signal
import subprocess
import sys

import cv2
import pytest
import torch
from typer.testing import CliRunner

from facefill.cli.app import app

runner = CliRunner()


def digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def images(folder):
    """The images in ``folder`` (validity masks left out)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png")
                  if p.is_file() and not p.name.endswith(".valid.png"))


# ----------------------------------------------------------------------------- inputs overwritten

@pytest.mark.parametrize("command", ["align", "mask", "hallucinate", "replace-bg"])
def test_input_folder_inside_the_output_folder_is_refused_even_with_overwrite(command, raw, faces_copy, masked,
                                                                             tmp_path, data_dir):
    """Issue 23 #1: `hallucinate W/m W --overwrite` replaced W/m/*.png with hallucinations."""
    src = {"align": raw, "mask": faces_copy, "hallucinate": masked, "replace-bg": masked}[command]
    work = tmp_path / "W"
    shutil.copytree(src, work / "in")
    extra = {"hallucinate": ["--method", "mean"], "replace-bg": ["-b", str(data_dir / "faces" / "obama.jpg")]}
    before = digest(work)
    for flag in ([], ["--overwrite"]):
        r = runner.invoke(app, [command, str(work / "in"), str(work), *extra.get(command, []), *flag])
        assert r.exit_code == 1, (flag, r.output)
        assert f"input folder {work / 'in'} is inside the output folder {work}" in r.output, r.output
        assert digest(work) == before  # nothing replaced, nothing added (no record, no lock)


def test_all_scales_folder_is_checked_against_the_input(masked, tmp_path):
    """#2: `hallucinate as/128 o --all-scales as` replaced the inputs."""
    scales = tmp_path / "as"
    shutil.copytree(masked, scales / "128")
    before = digest(scales)
    r = runner.invoke(app, ["hallucinate", str(scales / "128"), str(tmp_path / "o"), "--all-scales", str(scales)])
    assert r.exit_code == 1 and "is inside the --all-scales folder" in r.output, r.output
    assert digest(scales) == before and not (tmp_path / "o").exists()


def test_grid_is_checked_against_every_read_and_written_path(faces_copy, masked, tmp_path):
    """#3: `--grid al/biden.png` (inside --real-dir) or `--grid h/biden.png` (an output)
    replaced that image with a contact sheet."""
    h = tmp_path / "h"
    assert runner.invoke(app, ["hallucinate", str(masked), str(h), "--method", "mean"]).exit_code == 0
    before_real, before_out = digest(faces_copy), digest(h)
    r = runner.invoke(app, ["hallucinate", str(masked), str(h), "--method", "mean", "--real-dir", str(faces_copy),
                            "--grid", str(faces_copy / "biden.png")])
    assert r.exit_code == 1 and "--grid" in r.output and "--real-dir" in r.output, r.output
    r = runner.invoke(app, ["hallucinate", str(masked), str(h), "--method", "mean", "--grid", str(h / "biden.png")])
    assert r.exit_code == 1 and "--grid" in r.output and "inside the output folder" in r.output, r.output
    assert digest(faces_copy) == before_real and digest(h) == before_out


def test_replace_bg_never_writes_into_its_backgrounds(masked, tmp_path, data_dir):
    """#4: `replace-bg h bg -b bg` wrote into (or, with --overwrite, over) the backgrounds."""
    bg = tmp_path / "bg"
    bg.mkdir()
    shutil.copy(data_dir / "faces" / "astronaut.jpg", bg / "sky.jpg")
    before = digest(bg)
    for args in ([str(bg)], [str(bg), "--overwrite"], [str(bg / "out")]):
        r = runner.invoke(app, ["replace-bg", str(masked), *args, "-b", str(bg)])
        assert r.exit_code == 1 and "--background" in r.output, (args, r.output)
    assert digest(bg) == before


def test_train_run_folder_may_not_hold_its_data(faces_copy, tmp_path):
    """#5: `train R/samples --out . --name R` wrote sample images into its own data folder."""
    run = tmp_path / "R"
    shutil.copytree(faces_copy, run / "samples")
    before = digest(run)
    r = runner.invoke(app, ["train", str(run / "samples"), "--out", str(tmp_path), "--name", "R", "--preset", "tiny",
                            "--batch-size", "1", "--steps", "1", "--device", "cpu"])
    assert r.exit_code == 1 and f"data folder {run / 'samples'} is inside the run folder" in r.output, r.output
    assert digest(run) == before


def test_evaluate_real_stats_may_not_go_into_a_folder_it_reads(faces_copy, tmp_path):
    """#5: `evaluate ... --real-stats ea/stats.npz` wrote into the real folder."""
    gen = tmp_path / "gen"
    shutil.copytree(faces_copy, gen)
    before = digest(faces_copy)
    for target in (faces_copy / "stats.npz", gen / "stats.npz"):
        r = runner.invoke(app, ["evaluate", str(gen), str(faces_copy), "-m", "fid", "--real-stats", str(target)])
        assert r.exit_code == 1 and f"--real-stats {target} is inside the" in r.output, r.output
    r = runner.invoke(app, ["evaluate", str(gen), str(faces_copy), "-m", "ssim", "--json", str(tmp_path / "r"),
                            "--csv", str(tmp_path / "r")])
    assert r.exit_code == 1 and "the same path" in r.output, r.output
    assert digest(faces_copy) == before


# ------------------------------------------------------------------------- inputs dropped by names

def test_photos_named_like_companions_fail_loudly(tmp_path, data_dir):
    """#6: `q.valid.jpg` beside `q.jpg` was aligned over q's validity mask, and mask silently
    skipped `q.valid`, `p.mask` and `r.fg` (exit 0, nothing in failures.tsv)."""
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(data_dir / "faces" / "obama.jpg", raw / "q.jpg")
    for name in ("q.valid.jpg", "p.mask.jpg", "r.fg.jpg", "s.mask.png"):
        shutil.copy(data_dir / "faces" / "biden.jpg", raw / name)
    al, m = tmp_path / "al", tmp_path / "m"
    r = runner.invoke(app, ["align", str(raw), str(al)])
    assert r.exit_code == 3, r.output  # some inputs failed, the good output was written
    failed = [line.split("\t")[0] for line in (al / "failures.tsv").read_text().splitlines()[1:]]
    assert sorted(failed) == sorted(str(raw / n) for n in ("q.valid.jpg", "p.mask.jpg", "r.fg.jpg", "s.mask.png"))
    assert "rename it" in r.output and "1 done" in r.output
    assert images(al) == ["q.png"]
    if (al / "q.valid.png").exists():  # q's validity mask, not a crop
        assert cv2.imread(str(al / "q.valid.png"), cv2.IMREAD_UNCHANGED).ndim == 2
    r = runner.invoke(app, ["mask", str(al), str(m)])
    assert r.exit_code == 0 and "1 done" in r.output and "of 1 inputs" in r.output, r.output


def test_output_name_taken_by_a_folder(tmp_path, data_dir):
    """#7: a file `x.jpg` beside a folder `x.png/` stopped align after one input (exit 1)."""
    raw = tmp_path / "raw"
    (raw / "obama.png").mkdir(parents=True)
    shutil.copy(data_dir / "faces" / "obama.jpg", raw / "obama.jpg")
    shutil.copy(data_dir / "faces" / "biden.jpg", raw / "obama.png" / "biden.jpg")
    shutil.copy(data_dir / "faces" / "obama2.jpg", raw / "z.jpg")
    r = runner.invoke(app, ["align", str(raw), str(tmp_path / "al")])
    assert r.exit_code == 0 and "3 done" in r.output, r.output
    assert images(tmp_path / "al") == ["obama.jpg.png", "obama.png/biden.png", "z.png"]
    # a folder already in the output folder at an output's path: that input fails, the others are written
    out = tmp_path / "al2"
    (out / "obama.png").mkdir(parents=True)
    r = runner.invoke(app, ["align", str(raw / "obama.jpg"), str(out)])
    assert r.exit_code == 1 and "in the way" in r.output, r.output
    shutil.copy(data_dir / "faces" / "biden.jpg", raw / "obama.png" / "obama.jpg")
    r = runner.invoke(app, ["align", str(raw / "obama.png"), str(out)])
    assert r.exit_code == 3 and "in the way" in r.output and "1 done" in r.output, r.output
    assert (out / "biden.png").is_file()


# ------------------------------------------------------------------------------- old outputs kept

def test_align_settings_that_change_crops_are_in_the_run_record(raw, tmp_path):
    """#8: `align raw al --upsample 2` after a default run said "already done" (exit 0)."""
    al = tmp_path / "al"
    assert runner.invoke(app, ["align", str(raw), str(al)]).exit_code == 0
    record = json.loads((al / ".facefill-run.json").read_text())["settings"]
    assert record["detector"] == "hog" and record["upsample"] == 1
    before = digest(al)
    r = runner.invoke(app, ["align", str(raw), str(al), "--upsample", "2"])
    assert r.exit_code == 1 and "upsample: 1 -> 2" in r.output and "--overwrite" in r.output, r.output
    assert digest(al) == before


def test_hallucinate_all_scales_is_in_the_run_record(masked, tmp_path):
    """#9: `hallucinate m h --all-scales s` after a plain run: exit 0 and s/ empty."""
    h = tmp_path / "h"
    assert runner.invoke(app, ["hallucinate", str(masked), str(h)]).exit_code == 0
    r = runner.invoke(app, ["hallucinate", str(masked), str(h), "--all-scales", str(tmp_path / "s")])
    assert r.exit_code == 1 and "all_scales: None ->" in r.output and "--overwrite" in r.output, r.output


def test_overwrite_removes_what_the_previous_run_wrote_and_nothing_else(raw, tmp_path):
    """#10: `align raw al --faces all --overwrite` after a `largest` run kept the old `x.png`
    beside the new `x_0.png`, and `mask` then processed both."""
    al = tmp_path / "al"
    assert runner.invoke(app, ["align", str(raw), str(al)]).exit_code == 0
    (al / "mine.png").write_bytes((al / "obama.png").read_bytes())  # the user's own files
    (al / "notes.txt").write_text("keep me")
    r = runner.invoke(app, ["align", str(raw), str(al), "--faces", "all", "--overwrite"])
    assert r.exit_code == 0, r.output
    assert {"biden_0.png", "obama_0.png", "mine.png"} <= set(images(al))
    assert not (al / "obama.png").exists() and not (al / "obama.json").exists() and not (al / "biden.png").exists()
    assert (al / "notes.txt").read_text() == "keep me"
    (al / "mine.png").unlink()
    r = runner.invoke(app, ["mask", str(al), str(tmp_path / "m")])
    assert r.exit_code == 0 and "of 2 inputs" in r.output, r.output


def test_a_live_run_locks_the_output_folder_and_a_stale_lock_is_taken_over(masked, tmp_path):
    """#11: two runs with different settings into one folder at once both said "done", and all
    files were from one of them."""
    h = tmp_path / "h"
    h.mkdir()
    holder = subprocess.Popen(  # another run: it holds the lock (the documented format) until killed
        [sys.executable, "-c", "import json, os, socket, sys, time; open(sys.argv[1], 'w').write(json.dumps("
         "{'pid': os.getpid(), 'host': socket.gethostname(), 'command': 'hallucinate'})); "
         "print('locked', flush=True); time.sleep(120)", str(h / ".facefill-lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        r = runner.invoke(app, ["hallucinate", str(masked), str(h), "--method", "mean"])
        assert r.exit_code == 1 and "in use by another 'hallucinate' run" in r.output, r.output
        assert f"pid {holder.pid}" in r.output and not images(h)
    finally:
        holder.send_signal(signal.SIGKILL)  # dies holding the lock: the lock file stays, stale
        holder.wait()
    assert (h / ".facefill-lock").exists()
    r = runner.invoke(app, ["hallucinate", str(masked), str(h), "--method", "mean"])
    assert r.exit_code == 0 and "5 done" in r.output, r.output
    assert not (h / ".facefill-lock").exists()


def test_replace_bg_background_content_is_in_the_run_record(masked, tmp_path, data_dir):
    """#14: replace-bg kept its outputs after the background file changed at the same path."""
    bg, out = tmp_path / "bg.jpg", tmp_path / "out"
    shutil.copy(data_dir / "faces" / "astronaut.jpg", bg)
    args = ["replace-bg", str(masked), str(out), "-b", str(bg), "--device", "cpu"]
    assert runner.invoke(app, args).exit_code == 0
    img = cv2.imread(str(bg))
    cv2.imwrite(str(bg), img[:, ::-1])  # the same file name, another picture
    r = runner.invoke(app, args)
    assert r.exit_code == 1 and "background_sha256" in r.output and "--overwrite" in r.output, r.output
    assert runner.invoke(app, args + ["--overwrite"]).exit_code == 0



class _FakeInception:
    """Stands in for the FID network (slow on CPU): 6-d colour statistics of each image."""

    source = "fake"

    def to(self, device):
        return self

    def __call__(self, images):  # (B, 3, H, W) in [0, 1] -> (B, 6)
        return torch.cat([images.mean((2, 3)), images.std((2, 3))], 1)


def test_evaluate_real_stats_record_the_real_set_they_were_computed_from(faces_copy, tmp_path, monkeypatch):
    """#13: `--real-stats st.npz` reused statistics computed for another real folder (FID 318.8
    where the truth is 0)."""
    monkeypatch.setattr("facefill.metrics.inception.load_inception", lambda path=None: _FakeInception())
    other, same = tmp_path / "other", tmp_path / "same"
    shutil.copytree(faces_copy, same)  # the same images in another folder
    shutil.copytree(faces_copy, other)
    for p in other.glob("*.png"):
        if not p.name.endswith(".valid.png"):
            cv2.imwrite(str(p), 255 - cv2.imread(str(p)))  # other images, the same names
    stats = tmp_path / "st.npz"
    args = ["-m", "fid", "--real-stats", str(stats)]
    r = runner.invoke(app, ["evaluate", str(other), str(other), *args, "--json", "-"])  # stats of `other`
    assert r.exit_code == 0 and stats.is_file(), r.output
    r = runner.invoke(app, ["evaluate", str(faces_copy), str(faces_copy), *args])
    assert r.exit_code == 1 and "computed from other real images" in r.output and str(other) in r.output, r.output
    stats.unlink()
    assert runner.invoke(app, ["evaluate", str(faces_copy), str(faces_copy), *args]).exit_code == 0
    r = runner.invoke(app, ["evaluate", str(faces_copy), str(same), *args, "--json", "-"])
    assert r.exit_code == 0 and "read from" in r.stderr, r.output
    assert abs(json.loads(r.stdout)["summary"]["fid"]["mean"]) < 1e-6


# ------------------------------------------------- run record and failure list (issue 24 items 8, 9, 18)

def test_a_full_disk_when_the_run_record_is_written_is_one_line_and_leaves_no_tmp(faces_copy, tmp_path, monkeypatch):
    import errno
    import os
    from pathlib import Path

    write_text = Path.write_text

    def full_disk(self, text, *args, **kwargs):
        if ".facefill-run.json" in self.name:
            write_text(self, text[:10], *args, **kwargs)  # a partial file, then ENOSPC
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write_text(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_disk)
    out = tmp_path / "m"
    r = runner.invoke(app, ["mask", str(faces_copy), str(out)])
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert "cannot write" in r.output and ".facefill-run.json" in r.output and "No space left" in r.output
    assert not list(out.glob("*.tmp"))


@pytest.mark.parametrize("name", [".facefill-run.json", ".facefill-run.files", "failures.tsv"])
def test_a_folder_where_the_run_record_or_failure_list_goes_is_one_line(faces_copy, tmp_path, name):
    (faces_copy / "broken.png").write_bytes(b"not an image")  # one input fails: failures.tsv is written
    out = tmp_path / "m"
    (out / name).mkdir(parents=True)
    r = runner.invoke(app, ["mask", str(faces_copy), str(out)])
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert f"{out / name}: a folder is in its place" in r.output


def test_a_folder_named_failures_tsv_is_left_alone_when_nothing_failed(faces_copy, tmp_path):
    out = tmp_path / "m"
    (out / "failures.tsv").mkdir(parents=True)
    r = runner.invoke(app, ["mask", str(faces_copy), str(out)])
    assert r.exit_code == 0 and (out / "failures.tsv").is_dir(), r.output


def test_names_with_tab_or_newline_keep_one_row_and_one_line_each(faces_copy, tmp_path):
    for name in ("tab\there.png", "new\nline.png", "back\\slash.png"):
        (faces_copy / name).write_bytes(b"not an image")
    out = tmp_path / "m"
    r = runner.invoke(app, ["mask", str(faces_copy), str(out)])
    assert r.exit_code == 3, r.output
    rows = (out / "failures.tsv").read_text().splitlines()
    assert len(rows) == 4 and all(row.count("\t") == 1 for row in rows)
    unescape = {"\\\\": "\\", "\\t": "\t", "\\n": "\n"}
    import re

    names = sorted(re.sub(r"\\[\\tn]", lambda m: unescape[m.group()], row.split("\t")[0]) for row in rows[1:])
    assert names == sorted(str(faces_copy / n) for n in ("tab\there.png", "new\nline.png", "back\\slash.png"))
    skipped = [line for line in r.stderr.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 3 and any("tab\\there.png" in line for line in skipped)


def test_a_grid_that_replaces_an_existing_file_says_so_even_when_quiet(masked, tmp_path):
    mine = tmp_path / "mine.png"
    cv2.imwrite(str(mine), 255 * __import__("numpy").ones((8, 8, 3), "uint8"))
    r = runner.invoke(app, ["hallucinate", str(masked), str(tmp_path / "out"), "--method", "mean", "--grid", str(mine),
                            "-q"])
    assert r.exit_code == 0 and f"replaced the existing file {mine}" in r.stderr


def test_a_per_file_shell_pipeline_keeps_every_output(masked, tmp_path):
    """Issue 33 #3: ``ls photos/* | xargs -I{} facefill hallucinate {} out/ -q``: every call
    after the first was refused ('made with other settings (input: a -> b)'), and with
    --overwrite, as that said to, only the last face was left. The input is part of an output's
    identity, not of the folder's."""
    out = tmp_path / "out"
    faces = sorted(p for p in masked.glob("*.png") if not p.name.endswith((".mask.png", ".valid.png")))
    assert len(faces) >= 3
    for face in faces:
        r = runner.invoke(app, ["hallucinate", str(face), str(out), "--method", "mean", "-q"])
        assert r.exit_code == 0, r.output
    want = sorted(f.name for f in faces)
    assert [n for n in images(out) if not n.endswith(".mask.png")] == want
    r = runner.invoke(app, ["hallucinate", str(faces[0]), str(out), "--method", "mean", "-q", "--overwrite"])
    assert r.exit_code == 0, r.output
    assert [n for n in images(out) if not n.endswith(".mask.png")] == want  # the others' outputs kept
    # a changed photo under a name already done is refused, not resumed as if it were the old one
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(faces[0], other / faces[1].name)
    shutil.copy(masked / (faces[0].stem + ".mask.png"), other / (faces[1].stem + ".mask.png"))
    r = runner.invoke(app, ["hallucinate", str(other / faces[1].name), str(out), "--method", "mean", "-q"])
    assert r.exit_code != 0 and "other photos named" in r.output and "Traceback" not in r.output
