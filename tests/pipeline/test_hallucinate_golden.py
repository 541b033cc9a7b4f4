"""Every hallucinate method's outputs pinned bit for bit (issue 32: the refactor alone changes no
output).

Each case runs :func:`facefill.pipeline.hallucinate.hallucinate_folder` on real test faces (raw
photos aligned on the fly, aligned crops masked on the fly, ``facefill mask`` outputs) and compares
the sha256 of every file it writes (images, sidecars, masks, contact sheet) with
``golden/hallucinate.json``. The digests pin the float results of the machine that wrote them (the
model and the donor math run on the CPU in float32): another CPU, torch or OpenCV may round a few
pixels the other way without any change in facefill (on an AMD EPYC machine, 2026-12-07, two of
the model's outputs differed from those written on the machine before). So an image whose digest
differs is decoded and compared with its 16 px block means in ``golden/hallucinate_blocks.json``:
every block mean within :data:`BLOCK_TOLERANCE` grey levels (a pixel rounded the other way moves
its block's mean by 1/256 of a level; a real change of outputs moves whole blocks by levels).
A table (``donors.tsv``) whose digest differs is compared row by row with its rows in the same
file: every word exact (the donor chosen), every number within 2 units of its last printed digit
(a query's gender and age read from a masked face round differently on another CPU: p_male
0.997 against 0.996). Every other file (sidecars, run records) must match exactly. After an intended change of
outputs, rewrite both files with

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
BLOCKS = Path(__file__).parent / "golden" / "hallucinate_blocks.json"
#: largest difference of a 16 px block's mean, in grey levels, for an image whose digest differs
BLOCK_TOLERANCE = 0.5
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


def block_means(path: Path, block: int = 16) -> list:
    """The mean of each ``block`` px square of the image at ``path`` per channel, in grey levels
    rounded to 1/10 (the image's edge blocks cut short): ``(rows, cols, channels)`` as lists."""
    import cv2
    import numpy as np

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(np.float64)
    image = image.reshape(*image.shape[:2], -1)
    h, w = image.shape[:2]
    return [[np.round(image[y:y + block, x:x + block].mean((0, 1)), 1).tolist() for x in range(0, w, block)]
            for y in range(0, h, block)]


def table_rows(path: Path) -> list[list[str]]:
    """A tab-separated table's cells, row by row."""
    return [line.split("\t") for line in path.read_text().splitlines()]


def _cells_differ(a: str, b: str) -> bool:
    """Two cells differ: words at all, numbers by more than 2 units of the last digit printed."""
    try:
        x, y = float(a), float(b)
    except ValueError:
        return a != b
    digits = max(len(c.split(".")[1]) if "." in c else 0 for c in (a, b))
    return abs(x - y) > 2 * 10 ** -digits + 1e-12


def compare_tables(got: list[list[str]], want: list[list[str]]) -> str | None:
    """Why two tables differ beyond rounding (:func:`_cells_differ`), or None."""
    if [len(r) for r in got] != [len(r) for r in want]:
        return f"{len(got)} rows against {len(want)}, or other columns"
    bad = [(i, j, a, b) for i, (r, w) in enumerate(zip(got, want)) for j, (a, b) in enumerate(zip(r, w)) if _cells_differ(a, b)]
    return None if not bad else f"{len(bad)} cells differ, first row {bad[0][0]} column {bad[0][1]}: {bad[0][2]!r} for {bad[0][3]!r}"


def compare(got: dict, want: dict, blocks: dict, folder: Path, tolerance: float = BLOCK_TOLERANCE) -> list[str]:
    """What differs between a run's digests ``got`` (its files under ``folder``) and the golden
    ``want``: one line per file; an image (.png) whose digest differs passes when its
    :func:`block_means` are within ``tolerance`` of ``blocks[file]``."""
    import numpy as np

    wrong = [f"{f}: {'missing' if f not in got else 'not expected'}" for f in sorted(set(got) ^ set(want))]
    for f in sorted(set(got) & set(want)):
        if got[f] == want[f]:
            continue
        if f.endswith(".tsv") and f in blocks:
            why = compare_tables(table_rows(folder / f), blocks[f])
            if why is not None:
                wrong.append(f"{f}: {why}")
            continue
        if not f.endswith(".png") or f not in blocks:
            wrong.append(f"{f}: differs")
            continue
        a, b = np.asarray(block_means(folder / f)), np.asarray(blocks[f])
        if a.shape != b.shape:
            wrong.append(f"{f}: blocks {a.shape} against {b.shape}")
        elif np.abs(a - b).max() > tolerance:
            wrong.append(f"{f}: a 16 px block's mean moved by {np.abs(a - b).max():.2f} grey levels "
                         f"(over {tolerance} in {int((np.abs(a - b) > tolerance).sum())} block channels)")
    return wrong


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
    # the test bank's only woman (astronaut) has no donor of her gender besides her own copies: she fails alone
    expected = {"astronaut.png", "astronaut.jpg"} if method == "donor" else set()
    assert {Path(p).name for p, _ in report.failed} <= expected, report.failed
    found = {}
    for root in (out, scales):
        for f in sorted(root.rglob("*")) if root.is_dir() else ():
            if f.is_file() and f.name not in SKIP and not f.name.startswith(".facefill"):
                found[f.relative_to(tmp_path).as_posix()] = hashlib.sha256(f.read_bytes()).hexdigest()
    if sheet.is_file():
        found["sheet.png"] = hashlib.sha256(sheet.read_bytes()).hexdigest()
    record = json.loads((out / ".facefill-run.json").read_text())["settings"]
    record.pop("input", None)  # runs before 2026-12 named the input folder in the settings
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
        blocks = {f: block_means(tmp_path / f) for f in got if f.endswith(".png")}
        blocks.update({f: table_rows(tmp_path / f) for f in got if f.endswith(".tsv")})
        for path, value in ((GOLDEN, got), (BLOCKS, blocks)):
            stored = json.loads(path.read_text()) if path.is_file() else {}
            stored[case] = value
            path.write_text(json.dumps(dict(sorted(stored.items())), indent=1 if path == GOLDEN else None) + "\n")
        return
    want, blocks = json.loads(GOLDEN.read_text())[case], json.loads(BLOCKS.read_text())[case]
    wrong = compare(got, want, blocks, tmp_path)
    assert not wrong, f"{case}: outputs changed:\n" + "\n".join(wrong) + f"\nnew digests:\n{json.dumps(got, indent=1)}"


def test_compare_passes_rounding_and_fails_a_real_change(tmp_path):
    """A few pixels rounded the other way (1 grey level on 3 % of them) pass; a 6 px patch moved by
    40 levels, or one channel of the whole image by 1 level, does not."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "ref.png"), image)
    want, blocks = {"a.png": "digest"}, {"a.png": block_means(tmp_path / "ref.png")}
    rounded = image.astype(np.int16) + (rng.random(image.shape) < 0.03) * rng.choice([-1, 1], image.shape)
    cv2.imwrite(str(tmp_path / "a.png"), np.clip(rounded, 0, 255).astype(np.uint8))
    assert compare({"a.png": "other"}, want, blocks, tmp_path) == []
    patch = image.astype(np.int16)
    patch[40:46, 40:46] += 40
    cv2.imwrite(str(tmp_path / "a.png"), np.clip(patch, 0, 255).astype(np.uint8))
    assert compare({"a.png": "other"}, want, blocks, tmp_path)
    shifted = image.astype(np.int16)
    shifted[..., 1] += 1
    cv2.imwrite(str(tmp_path / "a.png"), np.clip(shifted, 0, 255).astype(np.uint8))
    assert compare({"a.png": "other"}, want, blocks, tmp_path)
    assert compare({"a.json": "x"}, {"a.json": "y"}, {}, tmp_path) == ["a.json: differs"]


def test_compare_tables_passes_a_last_digit_and_fails_another_donor_or_a_real_change(tmp_path):
    rows = [["output", "donor", "cost", "p_male", "age"], ["a.png", "d1.png", "0.6327", "0.997", "67.0"]]
    (tmp_path / "t.tsv").write_text("\n".join("\t".join(r) for r in rows) + "\n")
    blocks = {"t.tsv": [r[:] for r in rows]}

    def check(**cell):
        want = [r[:] for r in rows]
        for col, value in cell.items():
            want[1][rows[0].index(col)] = value
        return compare({"t.tsv": "x"}, {"t.tsv": "y"}, {"t.tsv": want}, tmp_path)

    assert compare({"t.tsv": "x"}, {"t.tsv": "y"}, blocks, tmp_path) == []
    assert check(p_male="0.996", age="67.1", cost="0.6329") == []  # another CPU's rounding
    assert check(donor="d2.png")  # another donor chosen
    assert check(p_male="0.990") and check(age="67.5") and check(cost="0.6340")
    assert compare({"t.tsv": "x"}, {"t.tsv": "y"}, {"t.tsv": rows[:1]}, tmp_path)  # a row more
