import json

import pytest
import torch
from safetensors.torch import save_file

from facefill.config import get_preset, to_dict
from facefill.errors import CheckpointError
from facefill.models import build_generator
from facefill.models.release import load_generator, read_metadata, save_release
from tools.update_default_golden import GOLDEN, GOLDEN_INPUT, golden_outputs  # the one definition of the file


def _legacy_config(cfg):
    """The config dict as facefill 0.1 stored it: use_*/w_* switches, loss.pixel the distance."""
    d = to_dict(cfg)
    loss = d["loss"]
    d["loss"] = {"pixel": loss["pixel_kind"], "gan": loss["gan"], "use_pixel": True, "use_adv": True,
                 "use_id": False, "use_pc": True, "w_pixel": 10.0, "w_adv": 0.1, "w_id": 1.0, "w_pc": 2.0,
                 "identity": loss["identity"], "perceptual": loss["perceptual"], "feature_min_scale": 32}
    return d


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
    assert meta["stage"] == "4"


def test_progressive_release_before_the_last_stage_is_refused(tmp_path):
    cfg = get_preset("tiny")
    g = build_generator(cfg)
    path = save_release(tmp_path / "run" / "generator.safetensors", g, cfg, stage=2)
    with pytest.raises(CheckpointError, match=r"progressive stage 2 \(32 px\).*after stage 4.*--resume") as err:
        load_generator(path)
    assert "\n" not in str(err.value) and str(tmp_path / "run") in str(err.value)
    load_generator(save_release(tmp_path / "full.safetensors", g, cfg, stage=4))


def test_legacy_release_with_stage_buffers_and_old_loss_keys(tmp_path):
    """facefill 0.1's ProgressiveGenerator saved stage/alpha tensors, and its config had the
    use_*/w_* loss keys: such files still load (and a stage < 4 one is refused, not crashed)."""
    cfg = get_preset("tiny")
    g = build_generator(cfg).eval()
    meta = {"format": "facefill-generator", "format_version": "1", "facefill_version": "0.1.0",
            "config": json.dumps(_legacy_config(cfg))}
    full = {**g.state_dict(), "stage": torch.tensor(4), "alpha": torch.tensor(1.0)}
    save_file(full, str(tmp_path / "old.safetensors"), metadata=meta)
    g2, cfg2 = load_generator(tmp_path / "old.safetensors")
    assert cfg2.loss.id == 0.0 and cfg2.loss.pc == 2.0 and cfg2.loss.pixel == 10.0 and cfg2.loss.pixel_kind == "l1"
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(g(x)[128], g2(x)[128], rtol=0, atol=1e-5)
    save_file({**full, "stage": torch.tensor(1)}, str(tmp_path / "old1.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match=r"stage 1 \(16 px\)"):
        load_generator(tmp_path / "old1.safetensors")


def test_shipped_default_model_loads_and_matches_its_golden_output():
    from facefill.pipeline.hallucinate import default_model_path

    G, cfg = load_generator(default_model_path())
    golden = json.loads(GOLDEN.read_text())
    assert golden["input"] == GOLDEN_INPUT
    got = golden_outputs(G)
    for k, want in golden["outputs"].items():
        assert got[k]["mean"] == pytest.approx(want["mean"], abs=1e-6), f"new values: {json.dumps(got)}"
        assert got[k]["abs_mean"] == pytest.approx(want["abs_mean"], abs=1e-6), f"new values: {json.dumps(got)}"
        assert got[k]["first"] == pytest.approx(want["first"], abs=2e-6), f"new values: {json.dumps(got)}"


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


def test_a_training_state_is_named_as_such(tmp_path):
    from facefill.train.state import save_state

    state = save_state(tmp_path / "run" / "checkpoints" / "state_0000010.pt", {"step": 10})
    with pytest.raises(CheckpointError, match="is a training state") as err:
        load_generator(state)
    assert str(tmp_path / "run" / "generator.safetensors") in str(err.value)
    torch.save({"anything": torch.zeros(2)}, tmp_path / "weights.pt")
    with pytest.raises(CheckpointError, match=r"training state .*use RUN/generator.safetensors"):
        load_generator(tmp_path / "weights.pt")


def test_a_release_whose_header_length_starts_with_a_pickle_byte(tmp_path):
    """A safetensors file starts with its header's length; when that starts with 0x80 (a pickle
    protocol byte) it is still a release file, not a training state."""
    cfg = get_preset("tiny")
    g = build_generator(cfg)
    for pad in range(0, 512):
        path = save_release(tmp_path / "g.safetensors", g, cfg, extra={"note": "x" * pad})
        if path.read_bytes()[:1] == b"\x80":
            break
    else:
        pytest.fail("no padding gave a header length starting with 0x80")
    G, loaded_cfg = load_generator(path)  # read as a release (a pickle would raise CheckpointError)
    assert to_dict(loaded_cfg) == to_dict(cfg) and read_metadata(path)["note"] == "x" * pad
    want = g.state_dict()
    assert G.state_dict().keys() == want.keys()
    assert all(torch.equal(v, want[k]) for k, v in G.state_dict().items())


def _crafted(tmp_path, name, weights=None, **meta_changes):
    """A tiny release file with some of its metadata (or weights) replaced."""
    cfg = get_preset("tiny")
    path = save_release(tmp_path / "ok.safetensors", build_generator(cfg), cfg)
    from safetensors.torch import load_file

    state = load_file(str(path))
    meta = {**read_metadata(path), **meta_changes}
    save_file({**state, **(weights or {})}, str(tmp_path / name), metadata=meta)
    return tmp_path / name


@pytest.mark.parametrize("changes, message", [
    ({"format_version": "abc"}, "format_version 'abc' is not a number"),
    ({"config": "[]"}, "stored config cannot be read"),
    ({"config": json.dumps({**to_dict(get_preset("tiny")),
                            "generator": {**to_dict(get_preset("tiny"))["generator"],
                                          "scales": [8, 16, 32, 64, 128, 256]}})}, "generator.scales"),
    ({"config": json.dumps({**to_dict(get_preset("tiny")),
                            "train": {**to_dict(get_preset("tiny"))["train"], "lr_g": float("nan")}})},
     "stored config cannot be read"),
    ({"stage": "9"}, "stage metadata 9 is not a block"),
])
def test_crafted_metadata_is_a_one_line_checkpoint_error(tmp_path, changes, message):
    """Issue 24 item 11: each was a traceback (ValueError, AttributeError) or a model of 256 px."""
    bad = _crafted(tmp_path, "bad.safetensors", **changes)
    with pytest.raises(CheckpointError, match=message):
        load_generator(bad)


def test_weights_with_nan_are_refused(tmp_path):
    """Issue 24 item 14: a generator full of NaN hallucinated black faces with exit 0."""
    G = build_generator(get_preset("tiny"))
    key = next(k for k, v in G.state_dict().items() if v.is_floating_point())
    nan = torch.full_like(G.state_dict()[key], float("nan"))
    with pytest.raises(CheckpointError, match=f"NaN or infinite values \\({key}\\)"):
        load_generator(_crafted(tmp_path, "nan.safetensors", weights={key: nan}))
