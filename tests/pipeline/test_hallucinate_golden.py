"""Every hallucinate method's outputs pinned bit for bit (issue 32: the refactor alone changes no
output).

Each case runs :func:`facefill.pipeline.hallucinate.hallucinate_folder` on real test faces (raw
photos aligned on the fly, aligned crops masked on the fly, ``facefill mask`` outputs) and compares
the sha256 of every file it writes (images, sidecars, masks, contact sheet) with
``golden/hallucinate.json``. The digests pin this machine's float results (the model and the donor
math run on the CPU in float32): a change of CPU, torch or OpenCV may change them without any
change in facefill. After an intended change of outputs, rewrite the file with

    FACEFILL_UPDATE_GOLDEN=1 python -m pytest tests/pipeline/test_hallucinate_golden.py
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden" / "hallucinate.json"
FACES = Path(__file__).parents[1] / "data" / "faces"
#: files of the run itself, not outputs (the run record's settings are compared on their own)
SKIP = {"failures.tsv"}

#: case -> (method, input kind, extra options)
CASES = {
    "model-raw-grid": ("model", "raw", {"grid": True}),
    "model-raw-all-faces": ("model", "pair", {"faces": "all"}),
    "model-aligned": ("model", "aligned", {}),
    "model-aligned-from-landmarks": ("model", "aligned", {"mask_from_landmarks": True}),
    "model-masked-all-scales": ("model", "masked", {"all_scales": True}),
    "model-masked-no-keep-face": ("model", "masked", {"keep_face": False}),
    "telea-raw": ("telea", "raw", {}),
    "telea-masked": ("telea", "masked", {}),
    "ns-aligned": ("ns", "aligned", {}),
    "ns-masked": ("ns", "masked", {}),
    "mean-raw": ("mean", "raw", {}),
    "mean-masked-grid": ("mean", "masked", {"grid": True}),
    "donor-raw-2": ("donor", "raw", {"variants": 2}),
    "donor-aligned-2": ("donor", "aligned", {"variants": 2}),
    "donor-masked-2-grid": ("donor", "masked", {"variants": 2, "grid": True}),
    "donor-masked-1": ("donor", "masked", {"variants": 1}),
}


@pytest.fixture(scope="module")
def inputs(aligned_faces, tmp_path_factory):
    """The three kinds of input, and a photo with two faces."""
    import cv2
    import numpy as np

    from facefill.pipeline.mask import mask_folder

    root = tmp_path_factory.mktemp("golden-inputs")
    raw = root / "raw"
    raw.mkdir()
    for name in ("obama.jpg", "biden.jpg"):
        shutil.copy(FACES / name, raw / name)
    pair = root / "pair"
    pair.mkdir()
    a, b = (cv2.imread(str(FACES / n)) for n in ("obama.jpg", "biden.jpg"))
    h = min(a.shape[0], b.shape[0])
    a, b = (cv2.resize(x, (x.shape[1] * h // x.shape[0], h)) for x in (a, b))
    cv2.imwrite(str(pair / "pair.jpg"), np.concatenate([a, b], 1))
    mask_folder(aligned_faces, root / "masked")
    return {"raw": raw, "pair": pair, "aligned": aligned_faces, "masked": root / "masked"}


@pytest.fixture(scope="module")
def donors(donor_bank, tmp_path_factory):
    """The donor bank's index, built once (variants are set per case)."""
    from facefill.donor import load_index

    return load_index(donor_bank, cache=tmp_path_factory.mktemp("golden-cache"))


def run_case(case: str, inputs: dict, donors, tmp_path: Path) -> dict[str, str]:
    """Run one case into ``tmp_path``; ``{relative file: sha256}`` of everything it wrote, and the
    settings its run record holds (a resume compares them)."""
    from facefill.options import AlignOptions

    method, kind, extra = CASES[case]
    out, sheet, scales = tmp_path / "out", tmp_path / "sheet.png", tmp_path / "scales"
    kwargs = {"method": method, "keep_face": extra.get("keep_face", True),
              "mask_from_landmarks": extra.get("mask_from_landmarks", False),
              "raw": AlignOptions(faces=extra.get("faces", "largest")),
              "grid": sheet if extra.get("grid") else None, "all_scales_dir": scales if extra.get("all_scales") else None}
    report = _hallucinate(method, inputs[kind], out, kwargs, extra.get("variants", 1), donors)
    assert not report.failed, report.failed
    found = {}
    for root in (out, scales):
        for f in sorted(root.rglob("*")) if root.is_dir() else ():
            if f.is_file() and f.name not in SKIP and not f.name.startswith(".facefill"):
                found[f.relative_to(tmp_path).as_posix()] = hashlib.sha256(f.read_bytes()).hexdigest()
    if sheet.is_file():
        found["sheet.png"] = hashlib.sha256(sheet.read_bytes()).hexdigest()
    record = json.loads((out / ".facefill-run.json").read_text())["settings"]
    record.pop("input", None)  # at the top level of the record since 2026-12, no longer in settings
    found["run-record settings"] = json.loads(json.dumps(record).replace(str(tmp_path), "<tmp>"))
    return found


def _hallucinate(method, src, out, kwargs, variants, donors):
    """hallucinate_folder with ``method`` (the donor bank's index built once for every case)."""
    from facefill.donor import DonorHallucinator, DonorSettings
    from facefill.fill.donor import DonorFill
    from facefill.options import HallucinateOptions
    from facefill.pipeline.hallucinate import hallucinate_folder

    if method == "donor":
        opts = HallucinateOptions(**kwargs, donors=donors.root, variants=variants)
        return hallucinate_folder(src, out, opts, filler=DonorFill(
            hallucinator=DonorHallucinator(donors, DonorSettings(variants=variants))))
    return hallucinate_folder(src, out, HallucinateOptions(**kwargs))


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_are_bit_identical_to_the_golden_run(case, inputs, donors, tmp_path):
    got = run_case(case, inputs, donors, tmp_path)
    assert got, "the case wrote nothing"
    if os.environ.get("FACEFILL_UPDATE_GOLDEN") == "1":
        stored = json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}
        stored[case] = got
        GOLDEN.write_text(json.dumps(dict(sorted(stored.items())), indent=1) + "\n")
        return
    want = json.loads(GOLDEN.read_text())[case]
    assert got == want, f"{case}: outputs changed; new digests:\n{json.dumps(got, indent=1)}"
