"""Output safety shared by every command: inputs are never overwritten or dropped."""

import json

import pytest

from facefill.errors import OutputError
from facefill.pipeline.outputs import (RunManifest, check_output_dir, check_report_file, plan_outputs,
                                       write_failures)


def test_output_inside_or_equal_to_input_is_refused(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for out in (src, src / "sub", src / "a" / "b"):
        with pytest.raises(OutputError, match="input folder"):
            check_output_dir(out, [src])
    assert not (src / "sub").exists()  # refused before creating anything
    assert check_output_dir(tmp_path / "out", [src]) == (tmp_path / "out").resolve()


def test_unwritable_output_names_the_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write into output folder .*file/out"):
        check_output_dir(blocker / "out", [tmp_path / "in"])
    with pytest.raises(OutputError, match="not a folder"):
        check_output_dir(blocker, [tmp_path / "in"])


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
    assert path.read_text().splitlines() == ["input\treason", f"{tmp_path / 'x.png'}\tx.png: broken really"]
    assert write_failures(tmp_path, []) is None and not path.exists()


def test_report_file_targets(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.png").write_bytes(b"")
    assert check_report_file(None, [src], "--json") is None
    assert check_report_file("-", [src], "--json") == "-"
    assert check_report_file(tmp_path / "r.json", [src], "--json") == "new"
    (tmp_path / "r.json").write_text(json.dumps({}))
    assert check_report_file(tmp_path / "r.json", [src], "--json") == "replace"
    with pytest.raises(OutputError, match="input"):
        check_report_file(src / "a.png", [src], "--grid")
