import random

import numpy as np
import pytest
import torch

from facefill.errors import CheckpointError
from facefill.train.state import load_state, rng_state, save_state, set_rng_state


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
