"""hallucinate on photos that 'facefill align' did not make (issue 27): aligned and masked on the
fly exactly as align -> mask -> hallucinate would, per file in a mixed folder; and the default
model's outputs have no border frame."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from facefill.cli.app import app
from facefill.config import get_preset
from facefill.data.io import read_image
from facefill.models import build_generator
from facefill.models.release import save_release
from facefill.pipeline.align import align_folder
from facefill.fill.model import ModelFill
from facefill.options import AlignOptions
from facefill.pipeline.hallucinate import HallucinateJob, HallucinateOptions, hallucinate_folder, load_model
from facefill.pipeline.runner import Folders, plan_run
from facefill.pipeline.mask import mask_folder

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "raw"


@pytest.fixture
def tiny(tmp_path):
    cfg = get_preset("tiny")
    torch.manual_seed(0)
    return load_model(save_release(tmp_path / "g.safetensors", build_generator(cfg), cfg))


@pytest.fixture
def raw(tmp_path, data_dir):
    d = tmp_path / "raw"
    d.mkdir()
    for name in ("obama.jpg", "biden.jpg"):
        shutil.copy(data_dir / "faces" / name, d / name)
    return d


def test_photos_give_what_align_then_mask_then_hallucinate_gives(raw, tmp_path, tiny):
    G, cfg = tiny
    report = hallucinate_folder(raw, tmp_path / "one", HallucinateOptions(feather=3), filler=ModelFill(G=G, cfg=cfg))
    assert len(report.done) == 2 and not report.failed
    assert "2 photos aligned and masked on the fly, 2 faces (biden.jpg, obama.jpg)" in report.notes[-1]
    align_folder(raw, tmp_path / "al")
    mask_folder(tmp_path / "al", tmp_path / "ma")
    hallucinate_folder(tmp_path / "ma", tmp_path / "three", HallucinateOptions(feather=3), filler=ModelFill(G=G, cfg=cfg))
    for name in ("obama", "biden"):
        one, three = tmp_path / "one" / f"{name}.png", tmp_path / "three" / f"{name}.png"
        assert np.array_equal(read_image(one), read_image(three)), name  # bit for bit
        # beside each output: align's sidecar (with mask's entry), the validity mask, the binary mask
        side = json.loads(one.with_suffix(".json").read_text())
        aligned = json.loads((tmp_path / "al" / f"{name}.json").read_text())
        assert side["landmarks"] == aligned["landmarks"] and side["matrix"] == aligned["matrix"]
        assert side["source"] == f"{name}.jpg" and side["mask"] == {"grow": 0, "feather": 0, "fill": [0, 0, 0]}
        m = cv2.imread(str(tmp_path / "one" / f"{name}.mask.png"), 0)
        assert np.array_equal(m, cv2.imread(str(tmp_path / "ma" / f"{name}.mask.png"), 0))
        valid = tmp_path / "al" / f"{name}.valid.png"
        assert valid.is_file() == (tmp_path / "one" / f"{name}.valid.png").is_file()
    # evaluate reads them: the hallucinated folder is its own --masks folder
    r = runner.invoke(app, ["evaluate", "--metrics", "ssim", str(tmp_path / "one"), str(tmp_path / "al"),
                            "--masks", str(tmp_path / "one")])
    assert r.exit_code == 0, r.output
    # a second run resumes
    again = hallucinate_folder(raw, tmp_path / "one", HallucinateOptions(feather=3), filler=ModelFill(G=G, cfg=cfg))
    assert len(again.skipped) == 2 and not again.done


def test_a_mixed_folder_is_handled_per_file(raw, tmp_path, tiny, faces_copy):
    G, cfg = tiny
    mask_folder(faces_copy, tmp_path / "ma")
    mixed = tmp_path / "mixed"
    shutil.copytree(raw, mixed)
    for suffix in (".png", ".mask.png", ".json"):  # a masked face: used as is
        shutil.copy(tmp_path / "ma" / f"astronaut{suffix}", mixed / f"masked{suffix}")
    for suffix in (".png", ".json"):  # an aligned crop: masked on the fly
        shutil.copy(faces_copy / f"obama2{suffix}", mixed / f"aligned{suffix}")
    cv2.imwrite(str(mixed / "wall.jpg"), np.full((300, 200, 3), 90, np.uint8))  # no face
    (mixed / "corrupt.jpg").write_bytes(b"not a jpeg")
    r = runner.invoke(app, ["hallucinate", str(mixed), str(tmp_path / "out"), "--checkpoint",
                            str(tmp_path / "g.safetensors"), "--device", "cpu"])
    assert r.exit_code == 3, r.output
    text = " ".join(r.output.split())
    assert ("inputs: 1 masked (facefill mask) (masked.png); 1 aligned crop masked on the fly (aligned.png); "
            "2 photos aligned and masked on the fly, 2 faces (biden.jpg, obama.jpg)") in text
    listed = (tmp_path / "out" / "failures.tsv").read_text().splitlines()[1:]
    reasons = {Path(line.split("\t")[0]).name: line.split("\t")[1] for line in listed}
    assert set(reasons) == {"wall.jpg", "corrupt.jpg"}
    assert "no face found" in reasons["wall.jpg"] and "200x300" in reasons["wall.jpg"]
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("[!.]*.json")) == ["biden.json", "obama.json"]  # raw photos only
    alone = hallucinate_folder(tmp_path / "ma", tmp_path / "alone", HallucinateOptions(), filler=ModelFill(G=G, cfg=cfg))
    assert not alone.failed
    assert np.array_equal(read_image(out / "masked.png"), read_image(tmp_path / "alone" / "astronaut.png"))
    # the aligned crop: as if 'facefill mask' had masked it first
    assert np.array_equal(read_image(out / "aligned.png"), read_image(tmp_path / "alone" / "obama2.png"))


def test_faces_all_writes_each_face_and_donor_gets_landmarks(tmp_path, two_faces, tiny):
    G, cfg = tiny
    raw = two_faces
    opts = HallucinateOptions(raw=AlignOptions(faces="all"))
    report = hallucinate_folder(raw, tmp_path / "out", opts, filler=ModelFill(G=G, cfg=cfg))
    assert not report.failed and "1 photo aligned and masked on the fly, 2 faces" in report.notes[-1]
    names = sorted(p.name for p in (tmp_path / "out").glob("pair_*"))
    assert {"pair_0.png", "pair_1.png", "pair_0.json", "pair_1.json", "pair_0.mask.png"} <= set(names)
    assert len(hallucinate_folder(raw, tmp_path / "out", opts, filler=ModelFill(G=G, cfg=cfg)).skipped) == 1  # resumes
    # --method donor takes the landmarks of the crop aligned on the fly (as its sidecar stores them)

    plan = plan_run(Folders(raw, tmp_path / "x", "no images"))
    job = HallucinateJob(plan, ModelFill(G=G, cfg=cfg), HallucinateOptions(raw=AlignOptions(faces="all")))
    items = job.load(raw / "pair.jpg")
    assert [it.kind for it in items] == ["raw", "raw"]
    for i, it in enumerate(items):
        side = json.loads((tmp_path / "out" / f"pair_{i}.json").read_text())
        assert np.allclose(it.landmarks, np.asarray(side["landmarks"], np.float32))


def test_cli_takes_photos_with_a_baseline(raw, tmp_path):
    r = runner.invoke(app, ["hallucinate", str(raw), str(tmp_path / "out"), "--method", "mean", "--grow", "2",
                            "--upsample", "1"])
    assert r.exit_code == 0, r.output
    assert "photos aligned and masked on the fly" in r.output
    assert json.loads((tmp_path / "out" / "obama.json").read_text())["mask"]["grow"] == 2
    r = runner.invoke(app, ["hallucinate", str(raw), str(tmp_path / "o2"), "--faces", "some"])
    assert r.exit_code == 2 and "--faces" in r.output


def border_steps(image: np.ndarray) -> tuple[float, float, float]:
    """Mean grey-level step between the outermost row/column and the next (over the four sides),
    between the next two, and between neighbouring pixels inside (4 px in from the edge)."""
    a = image.astype(np.float64)

    def side_step(k: int) -> float:
        return float(np.mean([np.abs(a[k] - a[k + 1]).mean(), np.abs(a[-1 - k] - a[-2 - k]).mean(),
                              np.abs(a[:, k] - a[:, k + 1]).mean(), np.abs(a[:, -1 - k] - a[:, -2 - k]).mean()]))

    inner = (np.abs(np.diff(a[4:-4], axis=0)).mean() + np.abs(np.diff(a[:, 4:-4], axis=1)).mean()) / 2
    return side_step(0), side_step(1), float(inner)


def test_default_model_draws_no_border_frame(tmp_path):
    """Issue 27: zero padding in the output block's last 5x5 conv drew a 2 px frame (edge steps 11-19
    grey levels against 3.3-3.7 inside on these photos); with replicate padding the edge steps
    are those of the inside."""
    report = hallucinate_folder(EXAMPLES, tmp_path / "out", HallucinateOptions())
    assert len(report.done) == 4 and not report.failed
    for out in sorted((tmp_path / "out").glob("*.png")):
        if out.name.endswith(".mask.png") or out.name.endswith(".valid.png"):
            continue
        edge, next_, inner = border_steps(read_image(out))
        assert edge < 1.5 * inner and next_ < 1.5 * inner, (out.name, edge, next_, inner)


def test_a_photo_beside_an_aligned_crop_of_the_same_stem_is_aligned_not_refused(tmp_path, data_dir):
    """obama.jpg (a photo) beside obama.png + obama.json (its aligned crop): the sidecar and any
    mask belong to obama.png; the photo takes the raw path. A baseline's size comes from the crop."""
    mixed = tmp_path / "mixed"
    align_folder(data_dir / "faces" / "obama.jpg", tmp_path / "al")
    mixed.mkdir()
    shutil.copy(data_dir / "faces" / "obama.jpg", mixed / "obama.jpg")
    for name in ("obama.png", "obama.json"):
        shutil.copy(tmp_path / "al" / name, mixed / name)
    report = hallucinate_folder(mixed, tmp_path / "out", HallucinateOptions(method="mean"))
    assert not report.failed and len(report.done) == 2
    assert "1 aligned crop masked" in report.notes[-1] and "1 photo aligned" in report.notes[-1]
    assert read_image(tmp_path / "out" / "obama.jpg.png").shape == (128, 128, 3)
