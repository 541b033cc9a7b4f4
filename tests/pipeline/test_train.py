"""The training driver (facefill.pipeline.train.train_folder) on real aligned faces with the tiny
preset (seconds on CPU): losses, exact resume at any stop, the run folder, checks before work,
--init, DDP. The loop's own pieces are tested in tests/train/."""

import csv
import dataclasses as dc
import os
import re
import signal

import cv2
import pytest
import torch

from facefill.config import get_preset
from facefill.errors import CheckpointError, DeviceError, FacefillError, OutputError, UsageError
from facefill.models.release import load_generator
from facefill.pipeline.train import Callbacks, TrainingInterrupted
from facefill.pipeline.train import train_folder as train
from facefill.train.state import load_state


def _cfg(regime="cascaded", features=False, **train):
    cfg = get_preset("tiny")
    loss = cfg.loss if features else dc.replace(cfg.loss, id=0.0, pc=0.0)
    settings = dict(regime=regime, batch_size=2, val_fraction=0.0, num_workers=0, sample_every=0,
                    checkpoint_every=0)
    tr = dc.replace(cfg.train, **{**settings, **train})
    return dc.replace(cfg, loss=loss, train=tr)


def _record():
    seen = []
    return seen, Callbacks(on_step=lambda step, total, m: seen.append(dict(m)))


def _same_weights(a, b):
    for part in ("G", "D", "G_ema", "opt_g", "opt_d"):
        sa, sb = a[part], b[part]
        if part.startswith("opt"):
            sa = {i: t for i, s in sa["state"].items() for t in s.values()}
            sb = {i: t for i, s in sb["state"].items() for t in s.values()}
        for k in sa:
            assert torch.equal(sa[k], sb[k]), (part, k)


def _final(run):
    return load_state(sorted((run / "checkpoints").glob("state_*.pt"))[-1])


@pytest.mark.parametrize("regime", ["cascaded", "progressive"])
def test_overfit_reduces_pixel_loss(faces_copy, tmp_path, regime):
    seen, cb = _record()
    cfg = _cfg(regime, lr_g=2e-3, lr_d=2e-3, images_per_stage=10**9, flip=False)
    cfg = dc.replace(cfg, loss=dc.replace(cfg.loss, adv=0.0))
    train(faces_copy, tmp_path / "run", cfg, max_steps=30, callbacks=cb)
    key = "loss/G/pixel/128" if regime == "cascaded" else "loss/G/pixel/8"  # progressive stays at stage 0
    first = sum(m[key] for m in seen[:4]) / 4
    last = sum(m[key] for m in seen[-4:]) / 4
    assert last < 0.85 * first


def test_all_four_losses_run_on_real_weights(faces_copy, tmp_path):
    seen, cb = _record()
    train(faces_copy, tmp_path / "run", _cfg(features=True), max_steps=1, callbacks=cb)
    keys = set(seen[-1])
    assert {"loss/G/pixel/128", "loss/G/adv/128", "loss/G/id/128", "loss/G/pc/128", "loss/D/adv/128",
            "loss/D/total", "loss/G/total"} <= keys
    assert "loss/G/id/16" not in keys  # feature losses only from 32 px up


def test_resume_continues_exactly(faces_copy, tmp_path):
    cfg = _cfg(checkpoint_every=3)
    train(faces_copy, tmp_path / "straight", cfg, max_steps=6)
    train(faces_copy, tmp_path / "split", cfg, max_steps=3)
    result = train(faces_copy, tmp_path / "split", cfg, resume=True, max_steps=6)
    assert result.steps == 6
    a, b = _final(tmp_path / "straight"), _final(tmp_path / "split")
    assert (a["step"], a["epoch"], a["pos"]) == (b["step"], b["epoch"], b["pos"]) == (6, 3, 0)
    _same_weights(a, b)


@pytest.mark.parametrize("stop_at, workers", [(3, 0), (5, 1)])
def test_stop_at_any_step_then_resume_is_exact(faces_copy, tmp_path, stop_at, workers, monkeypatch):
    """A stop mid-epoch (4 training faces, batch 2 -> steps 1, 3, 5 end half an epoch), with and
    without DataLoader workers, resumes into the same weights as an uninterrupted run."""
    monkeypatch.setattr("facefill.train.loop.machine_cores", lambda: 4)  # workers even on a 2-core machine
    cfg = _cfg(num_workers=workers, flip=True)
    train(faces_copy, tmp_path / "straight", cfg, max_steps=7)
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > stop_at

    with pytest.raises(TrainingInterrupted):
        train(faces_copy, tmp_path / "split", cfg, max_steps=7, should_stop=stop)
    assert _final(tmp_path / "split")["step"] == stop_at
    train(faces_copy, tmp_path / "split", cfg, resume=True, max_steps=7)
    _same_weights(_final(tmp_path / "straight"), _final(tmp_path / "split"))


def test_sigint_in_the_middle_of_a_step_is_deferred_to_its_end(faces_copy, tmp_path, monkeypatch):
    """Ctrl-C arriving after the D step but before the G step (sent from inside D's forward
    during the G step of step 3) stops after that step; the saved state is whole, and resuming
    from it gives the same weights as an uninterrupted run."""
    import facefill.train.loop as loop_mod

    cfg = _cfg()
    train(faces_copy, tmp_path / "straight", cfg, max_steps=5)
    real_step = loop_mod.train_step

    def step_with_sigint(nets, objective, batch, step, **kw):
        if step != 2:
            return real_step(nets, objective, batch, step, **kw)
        calls = []

        def hook(*_):  # D runs twice in the D step (real, fake), the third call is the G step's
            calls.append(1)
            if len(calls) == 3:
                os.kill(os.getpid(), signal.SIGINT)

        handle = nets.D.register_forward_hook(hook)
        try:
            return real_step(nets, objective, batch, step, **kw)
        finally:
            handle.remove()

    monkeypatch.setattr(loop_mod, "train_step", step_with_sigint)
    seen = []
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when pytest runs in a background job
    with pytest.raises(TrainingInterrupted, match="interrupted at step 3"):
        train(faces_copy, tmp_path / "split", cfg, max_steps=5,
              callbacks=Callbacks(on_step=lambda step, total, m: seen.append(step)))
    monkeypatch.setattr(loop_mod, "train_step", real_step)
    assert seen == [1, 2, 3] and _final(tmp_path / "split")["step"] == 3
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored
    train(faces_copy, tmp_path / "split", cfg, resume=True, max_steps=5)
    _same_weights(_final(tmp_path / "straight"), _final(tmp_path / "split"))


def test_resume_falls_back_from_a_bad_newest_state(faces_copy, tmp_path):
    cfg = _cfg(checkpoint_every=2)
    train(faces_copy, tmp_path / "run", cfg, max_steps=2)
    (tmp_path / "run" / "checkpoints" / "state_0000010.pt").write_bytes(b"random file, renamed")
    messages = []
    result = train(faces_copy, tmp_path / "run", cfg, resume=True, max_steps=3,
                   callbacks=Callbacks(on_message=messages.append))
    assert result.steps == 3
    assert "state_0000010.pt is not a facefill training state" in messages[0]
    assert "resuming from" in messages[1] and "state_0000002.pt" in messages[1]


def test_resume_from_a_facefill_0_1_state(faces_copy, tmp_path):
    """States written before this version: old [loss] keys, the progressive generator's
    stage/alpha buffers in G and G_ema, and a position saved at the very end of an epoch."""
    from facefill.train.state import save_state

    cfg = _cfg(checkpoint_every=2)
    train(faces_copy, tmp_path / "run", cfg, max_steps=2)
    path = tmp_path / "run" / "checkpoints" / "state_0000002.pt"
    state = load_state(path)
    loss = state["config"]["loss"]
    state["config"]["loss"] = {"pixel": loss.pop("pixel_kind"), "use_pixel": True, "use_adv": True, "use_id": False,
                               "use_pc": False, "w_pixel": loss.pop("pixel"), "w_adv": loss.pop("adv"),
                               "w_id": 1.0, "w_pc": 1.0, **{k: v for k, v in loss.items() if k not in ("id", "pc")}}
    for part in ("G", "G_ema"):
        state[part] = {**state[part], "stage": torch.tensor(4), "alpha": torch.tensor(1.0)}
    state["epoch"], state["pos"] = 0, 2  # the old loop could save "after the epoch's last batch"
    del state["format_version"]
    save_state(path, state)
    result = train(faces_copy, tmp_path / "run", cfg, resume=True, max_steps=3)
    assert result.steps == 3 and _final(tmp_path / "run")["epoch"] == 1


def test_run_folder(faces_copy, tmp_path):
    run = tmp_path / "run"
    val_list = tmp_path / "val.txt"
    val_list.write_text("biden.png\n")
    cfg = _cfg(sample_every=2, checkpoint_every=2, keep_checkpoints=2, log_every=1, val_list=str(val_list))
    train(faces_copy, run, cfg, max_steps=6)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["state_0000004.pt", "state_0000006.pt"]
    grid = cv2.imread(str(run / "samples" / "step_0000006.png"))
    assert grid.shape == (2 * 128, 7 * 128, 3)  # rows = batch; mask | 5 scales | real
    assert grid.std() > 10  # not blank
    assert (run / "config.toml").read_text().count("[train]") == 1
    with (run / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    names = {r["name"] for r in rows}
    assert {"loss/G/pixel/128", "loss/G/adv/64", "loss/D/adv/64", "loss/G/total", "loss/D/total"} <= names
    val = {(r["step"], r["name"]): float(r["value"]) for r in rows if r["kind"] == "val"}
    # 4 training faces, batch 2: an epoch is 2 steps, validated at its end
    assert set(val) == {(s, n) for s in ("2", "4", "6") for n in ("val/l1", "val/ssim", "val/ssim_keep")}
    assert 0 < val[("6", "val/l1")] < 2 and -1 < val[("6", "val/ssim")] <= 1
    # pasting the real face back can only help an untrained model's SSIM
    assert val[("6", "val/ssim")] < val[("6", "val/ssim_keep")] <= 1
    G, cfg2 = load_generator(run / "generator.safetensors")
    assert cfg2 == dc.replace(cfg, train=dc.replace(cfg.train, max_steps=6))
    assert G(torch.zeros(1, 3, 128, 128))[128].shape == (1, 3, 128, 128)


def test_val_every(faces_copy, tmp_path):
    val_list = tmp_path / "val.txt"
    val_list.write_text("biden.png\n")
    train(faces_copy, tmp_path / "run", _cfg(val_every=3, val_list=str(val_list)), max_steps=3)
    with (tmp_path / "run" / "metrics.csv").open() as fh:
        val = [(r["step"], r["name"]) for r in csv.DictReader(fh) if r["kind"] == "val"]
    assert val == [("3", "val/l1"), ("3", "val/ssim"), ("3", "val/ssim_keep")]


def test_progressive_release_refuses_to_hallucinate_until_grown(faces_copy, tmp_path):
    """A progressive run still at stage 0 exports a release that the hallucinate path refuses
    with a one-line message (it crashed with an IndexError before)."""
    from facefill.pipeline.hallucinate import load_model

    train(faces_copy, tmp_path / "run", _cfg("progressive", images_per_stage=10**6), max_steps=1)
    with pytest.raises(CheckpointError, match=r"progressive stage 0 \(8 px\); the model makes 128 px only after "
                                              r"stage 4: train longer \(--resume .*run\)"):
        load_model(tmp_path / "run" / "generator.safetensors")
    train(faces_copy, tmp_path / "run2", _cfg("progressive", images_per_stage=2), max_steps=5)
    G, _ = load_model(tmp_path / "run2" / "generator.safetensors")  # 10 images: stage 4
    assert list(G(torch.zeros(1, 3, 128, 128))) == [8, 16, 32, 64, 128]


def test_stop_saves_a_checkpoint_and_says_how_to_resume(faces_copy, tmp_path):
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 2

    with pytest.raises(TrainingInterrupted, match="--resume") as err:
        train(faces_copy, tmp_path / "run", _cfg(), max_steps=50, should_stop=stop)
    assert err.value.exit_code == 130
    assert load_state(next((tmp_path / "run" / "checkpoints").glob("*.pt")))["step"] == 2


def _empty_folder(tmp_path, faces):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FacefillError, match="no usable training images"):
        train(empty, tmp_path / "r", _cfg())


def _too_few_for_a_batch(tmp_path, faces):
    with pytest.raises(FacefillError, match="batch needs 8"):
        train(faces, tmp_path / "r", _cfg(batch_size=8))


def _run_folder_under_a_file(tmp_path, faces):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(OutputError, match=f"{blocker / 'run'}") as err:
        train(faces, blocker / "run", _cfg())
    assert "\n" not in str(err.value)


def _run_folder_inside_the_data(tmp_path, faces):
    with pytest.raises(OutputError, match="inside the data folder"):
        train(faces, faces / "runs" / "r", _cfg())


def _no_such_device_name(tmp_path, faces):
    with pytest.raises(UsageError):
        train(faces, tmp_path / "r", _cfg(), device="tpu")


def _a_device_this_machine_lacks(tmp_path, faces):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(DeviceError, match="no CUDA device"):
        train(faces, tmp_path / "r", _cfg(), device="cuda")


@pytest.mark.parametrize("case", [_empty_folder, _too_few_for_a_batch, _run_folder_under_a_file,
                                  _run_folder_inside_the_data, _no_such_device_name, _a_device_this_machine_lacks],
                         ids=lambda f: f.__name__.strip("_"))
def test_bad_data_device_and_output_fail_before_work(faces_copy, tmp_path, case):
    case(tmp_path, faces_copy)
    assert not (tmp_path / "r").exists() and not (faces_copy / "runs").exists()  # nothing made


def test_a_broken_image_is_skipped_and_reported(faces_copy, tmp_path):
    (faces_copy / "broken.png").write_bytes(b"not a png")
    result = train(faces_copy, tmp_path / "r3", _cfg(), max_steps=1)
    assert [p.name for p, _ in result.skipped] == ["broken.png"]


def test_tensorboard_when_installed(faces_copy, tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (optional)")
    train(faces_copy, tmp_path / "run", _cfg(log_every=1), max_steps=2)
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))


def test_init_starts_a_new_run_from_a_release_or_a_state(faces_copy, tmp_path):
    """--init: a release brings G (and G_ema), a state also D; steps start from zero. With the
    learning rates at 0 the new run's weights stay exactly the ones it started from."""
    first = tmp_path / "first"
    train(faces_copy, first, _cfg(checkpoint_every=2), max_steps=2)
    frozen = _cfg(lr_g=0.0, lr_d=0.0)
    result = train(faces_copy, tmp_path / "from_release", frozen, max_steps=1, init=first / "generator.safetensors")
    assert result.steps == 1
    a, _ = load_generator(first / "generator.safetensors")
    b, _ = load_generator(tmp_path / "from_release" / "generator.safetensors")
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    state = _final(first)
    train(faces_copy, tmp_path / "from_state", frozen, max_steps=1, init=sorted((first / "checkpoints").glob("state_*.pt"))[-1])
    new = _final(tmp_path / "from_state")
    assert new["step"] == 1
    for part in ("G", "D"):
        for k in state[part]:
            assert torch.equal(state[part][k], new[part][k]), (part, k)
    fresh = _final(first)  # a run without --init starts elsewhere
    train(faces_copy, tmp_path / "fresh", dc.replace(frozen, train=dc.replace(frozen.train, seed=1)), max_steps=1)
    assert not torch.equal(next(iter(_final(tmp_path / "fresh")["G"].values())), next(iter(fresh["G"].values())))


def test_init_refuses_other_architectures_missing_files_and_resume(faces_copy, tmp_path):
    first = tmp_path / "first"
    train(faces_copy, first, _cfg(), max_steps=1)
    wider = _cfg()
    wider = dc.replace(wider, generator=dc.replace(wider.generator, width=wider.generator.width * 2))
    with pytest.raises(CheckpointError, match="do not fit"):
        train(faces_copy, tmp_path / "wide", wider, max_steps=1, init=first / "generator.safetensors")
    assert not (tmp_path / "wide").exists()  # refused before any work
    with pytest.raises(CheckpointError, match="no such file"):
        train(faces_copy, tmp_path / "x", _cfg(), max_steps=1, init=tmp_path / "nope.safetensors")
    with pytest.raises(FacefillError, match="--init"):
        train(faces_copy, first, _cfg(), resume=True, max_steps=2, init=first / "generator.safetensors")


def test_init_accepts_the_shipped_fp16_default_model():
    """The documented fine-tune (`--init` the shipped file with the small preset): its fp16
    weights come back as float32 and fit the small preset, not the tiny one."""
    from facefill.pipeline.hallucinate import default_model_path
    from facefill.pipeline.train import check_fits, initial_weights

    weights = initial_weights(default_model_path())
    assert set(weights) == {"G", "G_ema"}
    assert all(v.dtype == torch.float32 for v in weights["G"].values())
    check_fits(weights, get_preset("small"))
    with pytest.raises(CheckpointError, match="do not fit"):
        check_fits(weights, get_preset("tiny"))


def test_a_double_ctrl_c_before_the_first_checkpoint_does_not_point_to_resume(faces_copy, tmp_path, monkeypatch):
    """Issue 24 item 22: a second Ctrl-C in step 1 said "continue with --resume", with nothing saved."""
    import facefill.train.loop as loop_mod

    def interrupted_step(*args, **kwargs):
        raise KeyboardInterrupt  # what deferred_signals raises on the second SIGINT

    monkeypatch.setattr(loop_mod, "train_step", interrupted_step)
    run = tmp_path / "r"
    with pytest.raises(TrainingInterrupted, match="before any checkpoint was saved; nothing to resume") as exc:
        train(faces_copy, run, _cfg(), max_steps=5)
    assert "--resume" not in str(exc.value) and not (run / "checkpoints").exists()


def _ddp_worker(rank, store, data, run, out):
    """One of two gloo ranks. The process group is joined here through a file store (no port to
    pick and race for); train_folder sees it initialised and uses it."""
    import torch.distributed as dist

    os.environ.update(WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        result = train(data, run, _cfg(batch_size=1), max_steps=2, device="cpu")
        torch.save({"steps": result.steps, "G": {k: v.clone() for k, v in load_state(
            next((run / "checkpoints").glob("*.pt")))["G"].items()} if rank == 0 else None}, out / f"{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ddp_gloo_two_processes(faces_copy, tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(tmp_path / "store", faces_copy, tmp_path / "run", tmp_path), nprocs=2, join=True)
    r0, r1 = torch.load(tmp_path / "0.pt", weights_only=True), torch.load(tmp_path / "1.pt", weights_only=True)
    assert r0["steps"] == r1["steps"] == 2
    assert (tmp_path / "run" / "generator.safetensors").exists()
    assert len(list((tmp_path / "run" / "checkpoints").glob("*.pt"))) == 1  # rank 0 alone wrote


@pytest.mark.parametrize("augment", [pytest.param(False, marks=pytest.mark.slow), True], ids=["flip", "flip+warp+color"])
def test_data_on_device_trains_exactly_as_the_dataloader_and_resumes_exactly(faces_copy, tmp_path, augment):
    """The device-resident set (train.data_on_device = on: decoded once, batches built and
    augmented in batched ops) gives the same weights as the DataLoader path, also across a stop
    mid-epoch and a resume."""
    from facefill.config import AugmentConfig

    cfg = _cfg(flip=True)
    if augment:
        cfg = dc.replace(cfg, augment=AugmentConfig(geometric=True, color=True, rotate=20, shift=0.1))
    train(faces_copy, tmp_path / "loader", cfg, max_steps=5, data_on_device="off")
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 3

    messages = []
    with pytest.raises(TrainingInterrupted):
        train(faces_copy, tmp_path / "device", cfg, max_steps=5, should_stop=stop, data_on_device="on",
              callbacks=Callbacks(on_message=messages.append))
    assert any(re.fullmatch(r"training data on cpu: \d+ faces, \d+ MiB", m) for m in messages), messages
    train(faces_copy, tmp_path / "device", cfg, resume=True, max_steps=5, data_on_device="on")
    _same_weights(_final(tmp_path / "loader"), _final(tmp_path / "device"))
