"""GPU checks (marked ``gpu``; run with ``python3 -m pytest -m gpu`` on a CUDA machine).

Not run by default and not run on the CPU-only machine this version was built on.
"""

import dataclasses as dc

import cv2
import numpy as np
import pytest
import torch

pytestmark = pytest.mark.gpu

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
def test_blend_on_cuda_equals_cpu():
    from facefill.blend import laplacian_blend

    fg, bg = torch.rand(4, 3, 101, 77), torch.rand(4, 3, 101, 77)
    m = (torch.rand(4, 1, 101, 77) > 0.5).float()
    ref = laplacian_blend(fg, bg, m, 5, 1.0)
    out = laplacian_blend(fg.cuda(), bg.cuda(), m.cuda(), 5, 1.0).cpu()
    assert torch.allclose(out, ref, atol=1e-4)


@cuda
def test_hallucinate_bf16_on_cuda_keeps_the_face(aligned_faces, tmp_path):
    from facefill.data.io import read_image
    from facefill.fill.model import ModelFill
    from facefill.pipeline.hallucinate import HallucinateOptions, hallucinate_folder, load_model
    from facefill.pipeline.mask import mask_folder

    mask_folder(aligned_faces, tmp_path / "m")
    G, cfg = load_model(None, "cuda")
    report = hallucinate_folder(tmp_path / "m", tmp_path / "o", HallucinateOptions(precision="bf16"), "cuda", filler=ModelFill(G=G, cfg=cfg))
    assert len(report.written) == 5
    for out in report.written:
        m = cv2.imread(str(tmp_path / "m" / (out.stem + ".mask.png")), cv2.IMREAD_GRAYSCALE) > 127
        assert np.array_equal(read_image(out)[m], read_image(tmp_path / "m" / out.name)[m])


@cuda
@pytest.mark.parametrize("method", ["model", "donor"])
def test_hallucinate_cli_on_cuda(method, aligned_faces, donor_bank, tmp_path, monkeypatch):
    """``facefill hallucinate --device cuda`` with the model and with donors (issue 32): the run
    works on the GPU and keeps every face pixel; the donor's own device checks are in
    tests/donor/test_steps.py."""
    from typer.testing import CliRunner

    from facefill.cli.app import app
    from facefill.data.io import read_image
    from facefill.pipeline.mask import mask_folder

    monkeypatch.setenv("FACEFILL_CACHE", str(tmp_path / "cache"))
    mask_folder(aligned_faces, tmp_path / "m")
    if method == "donor":  # the test bank's only woman has no donor of her gender: she would fail (exit 3)
        for p in (tmp_path / "m").glob("astronaut*"):
            p.unlink()
    extra = ["--method", "donor", "--donors", str(donor_bank), "--variants", "2"] if method == "donor" else []
    r = CliRunner().invoke(app, ["hallucinate", str(tmp_path / "m"), str(tmp_path / "o"), "--device", "cuda", *extra])
    assert r.exit_code == 0, r.output
    outs = sorted((tmp_path / "o").glob("*.png"))
    assert len(outs) == (8 if method == "donor" else 5)
    for out in outs:
        name = out.name.replace("_v0", "").replace("_v1", "")
        m = cv2.imread(str(tmp_path / "m" / name.replace(".png", ".mask.png")), cv2.IMREAD_GRAYSCALE) > 127
        assert np.array_equal(read_image(out)[m], read_image(tmp_path / "m" / name)[m])


@cuda
def test_train_steps_on_cuda_bf16(faces_copy, tmp_path):
    from facefill.config import get_preset
    from facefill.pipeline.train import train_folder as train

    cfg = get_preset("tiny")
    cfg = dc.replace(cfg, train=dc.replace(cfg.train, batch_size=2, val_fraction=0.0, precision="bf16",
                                           sample_every=0, checkpoint_every=0))
    result = train(faces_copy, tmp_path / "run", cfg, device="cuda", max_steps=3)
    assert result.steps == 3 and np.isfinite(result.last_metrics["loss/G/total"])
