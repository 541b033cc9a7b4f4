import random

import numpy as np
import pytest
import torch

from facefill.errors import CheckpointError
from facefill.train.state import STATE_KEYS, load_state, newest_good_state, rng_state, save_state, set_rng_state


def test_state_round_trip_with_weights_only(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.rand(4, 3)).sum().backward()
    opt.step()
    path = save_state(tmp_path / "s.pt", {"G": model.state_dict(), "opt": opt.state_dict(), "step": 7,
                                          "rng": rng_state(), "config": {"train": {"lr_g": 1e-4}}})
    raw = torch.load(path, weights_only=True)  # the contract: plain types only
    assert raw["step"] == 7
    state = load_state(path)
    m2 = torch.nn.Linear(3, 2)
    m2.load_state_dict(state["G"])
    torch.testing.assert_close(m2.weight, model.weight)


def test_rng_restore_replays_the_same_draws(tmp_path):
    save_state(tmp_path / "s.pt", {"rng": rng_state()})
    expected = (torch.rand(3), np.random.rand(2), random.random())
    set_rng_state(load_state(tmp_path / "s.pt")["rng"])
    torch.testing.assert_close(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(2), expected[1]) and random.random() == expected[2]


def test_bad_state_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_state(tmp_path / "none.pt")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_state(tmp_path / "bad.pt")
    torch.save({"x": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="format_version"):
        load_state(tmp_path / "other.pt")


class Foreign:
    """A pickled object: a facefill state never holds one."""


def test_foreign_files_get_a_one_line_message(tmp_path):
    (tmp_path / "state_0000010.pt").write_bytes(b"\x00random bytes renamed")
    torch.save({"obj": Foreign()}, tmp_path / "state_0000020.pt")
    for name in ("state_0000010.pt", "state_0000020.pt"):
        with pytest.raises(CheckpointError, match=f"{name} is not a facefill training state") as err:
            load_state(tmp_path / name)
        assert "\n" not in str(err.value) and "weights_only" not in str(err.value)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_state(tmp_path / "state_0000020.pt")


def _good(step):
    return {k: {} for k in STATE_KEYS} | {"step": step}


def test_newest_good_state_falls_back_and_says_so(tmp_path):
    ckpt = tmp_path / "run" / "checkpoints"
    save_state(ckpt / "state_0000005.pt", _good(5))
    save_state(ckpt / "state_0000008.pt", _good(8))
    save_state(ckpt / "state_0000009.pt", {"step": 9})  # cut short: no weights
    (ckpt / "state_0000010.pt").write_bytes(b"garbage")
    messages = []
    path, state = newest_good_state(ckpt, messages.append)
    assert path.name == "state_0000008.pt" and state["step"] == 8
    assert len(messages) == 2 and "state_0000010.pt is not a facefill training state" in messages[0]
    assert "state_0000009.pt is not a facefill training state (no config, epoch" in messages[1]
    for p in ckpt.glob("state_000000[58].pt"):
        p.unlink()
    with pytest.raises(CheckpointError, match="no usable state"):
        newest_good_state(ckpt)
    with pytest.raises(CheckpointError, match="nothing to resume"):
        newest_good_state(tmp_path / "empty" / "checkpoints")
