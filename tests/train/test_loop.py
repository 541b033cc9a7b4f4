"""The training loop on real aligned faces with the tiny preset (seconds on CPU)."""

import dataclasses as dc
import os
import socket

import cv2
import pytest
import torch

from facefill.config import get_preset
from facefill.errors import FacefillError
from facefill.models.release import load_generator
from facefill.train.loop import Callbacks, TrainingInterrupted, progressive_stage, train
from facefill.train.state import load_state


def _cfg(regime="cascaded", features=False, **train):
    cfg = get_preset("tiny")
    loss = dc.replace(cfg.loss, use_id=features, use_pc=features)
    settings = dict(regime=regime, batch_size=2, val_fraction=0.0, num_workers=0, sample_every=0,
                    checkpoint_every=0)
    tr = dc.replace(cfg.train, **{**settings, **train})
    return dc.replace(cfg, loss=loss, train=tr)


def _record():
    seen = []
    return seen, Callbacks(on_step=lambda step, total, m: seen.append(dict(m)))


@pytest.mark.parametrize("regime", ["cascaded", "progressive"])
def test_overfit_reduces_pixel_loss(faces_copy, tmp_path, regime):
    seen, cb = _record()
    cfg = _cfg(regime, lr_g=2e-3, lr_d=2e-3, images_per_stage=10**9, flip=False)
    cfg = dc.replace(cfg, loss=dc.replace(cfg.loss, use_adv=False))
    train(faces_copy, tmp_path / "run", cfg, max_steps=40, callbacks=cb)
    key = "pixel@128" if regime == "cascaded" else "pixel@8"  # progressive stays at stage 0 here
    first = sum(m[key] for m in seen[:4]) / 4
    last = sum(m[key] for m in seen[-4:]) / 4
    assert last < 0.85 * first


def test_all_four_losses_run_on_real_weights(faces_copy, tmp_path):
    seen, cb = _record()
    train(faces_copy, tmp_path / "run", _cfg(features=True), max_steps=2, callbacks=cb)
    keys = set(seen[-1])
    assert {"pixel@128", "adv@128", "id@128", "pc@128", "d_loss"} <= keys
    assert "id@16" not in keys  # feature losses only from 32 px up


def test_resume_continues_exactly(faces_copy, tmp_path):
    cfg = _cfg(checkpoint_every=3)
    train(faces_copy, tmp_path / "straight", cfg, max_steps=6)
    train(faces_copy, tmp_path / "split", cfg, max_steps=3)
    result = train(faces_copy, tmp_path / "split", cfg, resume=True, max_steps=6)
    assert result.steps == 6
    a = load_state(tmp_path / "straight" / "checkpoints" / "state_0000006.pt")
    b = load_state(tmp_path / "split" / "checkpoints" / "state_0000006.pt")
    assert (a["step"], a["epoch"], a["pos"]) == (b["step"], b["epoch"], b["pos"])
    for part in ("G", "D", "G_ema"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)


def test_run_folder(faces_copy, tmp_path):
    run = tmp_path / "run"
    cfg = _cfg(sample_every=2, checkpoint_every=2, keep_checkpoints=2, log_every=1)
    train(faces_copy, run, cfg, max_steps=6)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["state_0000004.pt", "state_0000006.pt"]
    grid = cv2.imread(str(run / "samples" / "step_0000006.png"))
    assert grid.shape == (2 * 128, 7 * 128, 3)  # rows = batch; mask | 5 scales | real
    assert grid.std() > 10  # not blank
    assert (run / "config.toml").read_text().count("[train]") == 1
    lines = (run / "metrics.csv").read_text().splitlines()
    assert lines[0] == "step,epoch,kind,name,value" and any(",pixel@128," in line for line in lines)
    G, cfg2 = load_generator(run / "generator.safetensors")
    assert cfg2 == dc.replace(cfg, train=dc.replace(cfg.train, max_steps=6))
    out = G(torch.zeros(1, 3, 128, 128))
    assert out[128].shape == (1, 3, 128, 128)


def test_progressive_schedule():
    assert progressive_stage(0, 100, 5) == (0, 1.0)
    assert progressive_stage(100, 100, 5) == (1, 0.0)
    assert progressive_stage(125, 100, 5) == (1, 0.5)
    assert progressive_stage(160, 100, 5) == (1, 1.0)
    assert progressive_stage(10_000, 100, 5)[0] == 4


def test_stop_saves_a_checkpoint_and_says_how_to_resume(faces_copy, tmp_path):
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 2

    with pytest.raises(TrainingInterrupted, match="--resume") as err:
        train(faces_copy, tmp_path / "run", _cfg(), max_steps=50, should_stop=stop)
    assert err.value.exit_code == 130
    assert load_state(next((tmp_path / "run" / "checkpoints").glob("*.pt")))["step"] == 2


def test_bad_data_fails_before_work(tmp_path, faces_copy):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FacefillError, match="no usable training images"):
        train(empty, tmp_path / "r1", _cfg())
    with pytest.raises(FacefillError, match="batch needs 8"):
        train(faces_copy, tmp_path / "r2", _cfg(batch_size=8))
    assert not (tmp_path / "r2").exists()
    (faces_copy / "broken.png").write_bytes(b"not a png")
    result = train(faces_copy, tmp_path / "r3", _cfg(), max_steps=1)
    assert [p.name for p, _ in result.skipped] == ["broken.png"]


def _ddp_worker(rank, port, data, run, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    import torch.distributed as dist

    try:
        result = train(data, run, _cfg(batch_size=1), max_steps=2, device="cpu")
        torch.save({"steps": result.steps, "G": {k: v.clone() for k, v in load_state(
            next((run / "checkpoints").glob("*.pt")))["G"].items()} if rank == 0 else None}, out / f"{rank}.pt")
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_ddp_gloo_two_processes(faces_copy, tmp_path):
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(port, faces_copy, tmp_path / "run", tmp_path), nprocs=2, join=True)
    r0, r1 = torch.load(tmp_path / "0.pt", weights_only=True), torch.load(tmp_path / "1.pt", weights_only=True)
    assert r0["steps"] == r1["steps"] == 2
    assert (tmp_path / "run" / "generator.safetensors").exists()
    assert len(list((tmp_path / "run" / "checkpoints").glob("*.pt"))) == 1  # rank 0 alone wrote


def test_tensorboard_when_installed(faces_copy, tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (optional)")
    train(faces_copy, tmp_path / "run", _cfg(log_every=1), max_steps=2)
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
