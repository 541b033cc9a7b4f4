"""Issue 24 item 19: ``facefill info`` piped is never wrapped (a path stays on one line), and
``info --json`` is one JSON object with every weight file. CliRunner's stdout is not a terminal."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from facefill import __version__
from facefill.cli.app import app
from facefill.weights import WEIGHTS, hub_checkpoints, locate

runner = CliRunner()


def test_piped_info_keeps_every_row_on_one_line(monkeypatch, tmp_path):
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / WEIGHTS["dlib-resnet"].file
    deep.parent.mkdir(parents=True)
    deep.write_bytes(b"x")
    monkeypatch.setenv(WEIGHTS["dlib-resnet"].env, str(deep))
    monkeypatch.setenv("COLUMNS", "80")
    res = runner.invoke(app, ["info"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert f"facefill\t{__version__}" in lines and any(line.startswith("devices\tcpu") for line in lines)
    rows = {line.split("\t")[1]: line.split("\t") for line in lines if line.count("\t") == 4}
    assert set(WEIGHTS) <= set(rows)
    assert rows["dlib-resnet"] == [WEIGHTS["dlib-resnet"].what, "dlib-resnet", "weights", "yes",
                                   f"{deep} (from ${WEIGHTS['dlib-resnet'].env})"]
    assert len(rows["dlib-resnet"][4]) > 80  # longer than the 80 columns it was folded at
    for key, (path, detail) in ((k, locate(k)) for k in WEIGHTS):
        assert rows[key][3] == ("yes" if path else "no") and rows[key][4] == detail
    assert "│" not in res.output and "\x1b[" not in res.output  # no table borders, no colour codes


def test_info_json_is_one_object_with_every_weight_file(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # hub files: none here
    monkeypatch.setenv(WEIGHTS["efficientnet-lite0"].env, str(tmp_path / "missing.pth"))
    for key in WEIGHTS:
        if key != "efficientnet-lite0":
            monkeypatch.delenv(WEIGHTS[key].env, raising=False)
    res = runner.invoke(app, ["info", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)  # the whole of stdout is the one object
    assert data["version"] == __version__
    assert data["torch"]["devices"][0] == "cpu" and isinstance(data["torch"]["cuda_available"], bool)
    weights = {w["key"]: w for w in data["weights"]}
    assert list(weights) == list(WEIGHTS)
    for key, w in weights.items():
        path, detail = locate(key)
        assert w["found"] is (path is not None) and w["path"] == (str(path) if path else None)
        assert w["what"] == WEIGHTS[key].what and w["how"] == WEIGHTS[key].how and w["detail"] == detail
    eff = weights["efficientnet-lite0"]
    assert eff["found"] is False and eff["path"] is None and eff["env"] == "FACEFILL_EFFICIENTNET_LITE0"
    assert "missing.pth does not exist" in eff["detail"]
    assert weights["pieapp"] | {"found": False, "path": None, "env": None} == weights["pieapp"]
    assert str(hub_checkpoints()) in weights["pieapp"]["detail"]
    assert {b["module"] for b in data["backends"]} == {"mediapipe", "tensorboard"}
