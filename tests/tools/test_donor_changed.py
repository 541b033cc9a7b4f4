"""tools/donor_changed.py: which outputs two runs made differently, drawn before | after."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from facefill.data.io import read_image, write_image

TOOL = Path(__file__).resolve().parents[2] / "tools" / "donor_changed.py"


def _tool():
    spec = importlib.util.spec_from_file_location("donor_changed", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_only_outputs_that_moved_are_listed_and_drawn(tmp_path, capsys):
    rng = np.random.default_rng(0)
    old, new = tmp_path / "old", tmp_path / "new"
    base = {name: rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for name in ("a_v0", "a_v1", "b_v0")}
    for name, im in base.items():
        write_image(old / f"{name}.png", im)
        moved = im.copy()
        if name == "a_v1":
            moved[:8, :8] = 255 - moved[:8, :8]  # 64 px moved far
        if name == "b_v0":
            moved[0, :40 // 2] = np.clip(moved[0, :20].astype(int) + 5, 0, 255)  # within the level: not a change
        write_image(new / f"{name}.png", moved)
        write_image(new / f"{name}.mask.png", np.zeros((32, 32), np.uint8))  # companions are not outputs
    write_image(new / "c_v0.png", base["a_v0"])  # not in OLD: all of it counts
    tool = _tool()
    rows = tool.changed(old, new, level=12, pixels=15)
    assert [r[0] for r in rows] == ["a_v1.png", "c_v0.png"] and rows[1][1] == 32 * 32 and 40 < rows[0][1] <= 64
    sheet = tmp_path / "sheet.png"
    assert tool.main([str(old), str(new), str(sheet), "--scale", "1"]) == 0
    assert "a_v1.png" in capsys.readouterr().out
    assert read_image(sheet).shape == (32 + 4, 3 * (2 * 32 + 2 + 8), 3)
    assert tool.main([str(old / "nope"), str(new), str(sheet)]) == 2
