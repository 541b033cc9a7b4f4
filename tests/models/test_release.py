import json

import pytest
import torch
from safetensors.torch import save_file

from facefill.config import get_preset, merge
from facefill.errors import CheckpointError
from facefill.models import build_generator
from facefill.models.release import load_generator, read_metadata, save_release


def test_round_trip_identical_outputs(tmp_path):
    cfg = get_preset("tiny")
    g = build_generator(cfg).eval()
    path = save_release(tmp_path / "g.safetensors", g, cfg)
    g2, cfg2 = load_generator(path)
    assert cfg2 == cfg
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(g(x)[128], g2(x)[128], rtol=0, atol=0)
    meta = read_metadata(path)
    assert meta["format"] == "facefill-generator" and json.loads(meta["config"])["generator"]["width"] == cfg.generator.width


def test_progressive_round_trip_keeps_stage(tmp_path):
    cfg = merge(get_preset("tiny"), {"train": {"regime": "progressive"}})
    g = build_generator(cfg)
    g.grow(2, 0.5)
    g2, _ = load_generator(save_release(tmp_path / "p.safetensors", g, cfg))
    assert int(g2.stage) == 2 and float(g2.alpha) == 0.5


def test_fp16_storage_is_half_size_and_close(tmp_path):
    cfg = get_preset("tiny")
    g = build_generator(cfg).eval()
    p32 = save_release(tmp_path / "a.safetensors", g, cfg)
    p16 = save_release(tmp_path / "b.safetensors", g, cfg, dtype=torch.float16)
    assert p16.stat().st_size < 0.6 * p32.stat().st_size
    g16, _ = load_generator(p16)
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(g(x)[128], g16(x)[128], atol=2e-2, rtol=0)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_generator(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="junk.safetensors"):
        load_generator(junk)
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(1)}, str(other), metadata={"format": "something-else"})
    with pytest.raises(CheckpointError, match="not a facefill generator"):
        load_generator(other)
