"""align_folder with --faces all: a photo is done only when all its faces are."""

import pytest

import facefill.align.sidecar as sidecar_module
from facefill.pipeline.align import align_folder


def test_faces_all_photo_counts_as_done_only_when_every_face_is_written(two_faces, tmp_path, monkeypatch):
    """Issue 23 #12: interrupted after face 0 of a photo, the re-run skipped it and face 1 never came."""
    out = tmp_path / "al"
    real_write = sidecar_module.write_sidecar
    calls = []

    def interrupted(path, data):  # Ctrl-C after the first face's files
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_write(path, data)

    monkeypatch.setattr(sidecar_module, "write_sidecar", interrupted)
    with pytest.raises(KeyboardInterrupt):
        align_folder(two_faces, out, faces="all")
    monkeypatch.setattr(sidecar_module, "write_sidecar", real_write)
    report = align_folder(two_faces, out, faces="all")  # resume
    assert len(report.done) == 1 and not report.skipped, report
    assert sorted(p.name for p in out.glob("pair_*.json")) == ["pair_0.json", "pair_1.json"]
    assert not (out / ".facefill-lock").exists()  # the interrupted run released its lock



def test_no_face_hint_offers_fan_only_where_its_weights_are(tmp_path, monkeypatch):
    """Issue 24 item 7: a hint must lead somewhere; offline, --landmarks fan ends in a weights error."""
    from facefill.pipeline.align import no_face_fix
    from facefill.weights import WEIGHTS

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert "--landmarks fan" not in no_face_fix() and "--upsample 2" in no_face_fix()
    hub = tmp_path / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    for key in ("fan", "s3fd"):
        (hub / WEIGHTS[key].file).write_bytes(b"x")
    assert "--landmarks fan" in no_face_fix()
