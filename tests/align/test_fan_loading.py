"""The fan backend's loading path, proven with weights this test creates (the real ones are a
download and cannot be fetched here): refused by the name's SHA-256 prefix, then, with that one
check set aside, loaded and run. Slow: builds and saves two ~20M-parameter networks."""

import re

import numpy as np
import pytest
import torch

import facefill.weights
from facefill.errors import CheckpointError

from facefill.align.landmarks import FAN_WEIGHTS, FanBackend, missing_fan_weights
from facefill.weights import WEIGHTS


@pytest.mark.slow
def test_fan_loads_weights_from_torch_hub_cache(tmp_path, monkeypatch):
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    fan_name, s3fd_name = (WEIGHTS[k].file for k in FAN_WEIGHTS)
    torch.save(FAN(4).state_dict(), cache / fan_name)
    torch.save(s3fd().state_dict(), cache / s3fd_name)
    assert missing_fan_weights() == []
    # the files carry the published names, whose SHA-256 prefix these random weights cannot match:
    # facefill refuses them before face-alignment's loader sees them
    with pytest.raises(CheckpointError, match="SHA-256 does not start with"):
        FanBackend(device="cpu").detect(np.zeros((96, 96, 3), np.uint8))
    # past that one check (as for files whose names carry no digest), the loading path itself
    monkeypatch.setattr(facefill.weights, "_HASH_IN_NAME", re.compile(r"(?!)"))
    monkeypatch.setattr(facefill.weights, "_vetted", {})
    backend = FanBackend(device="cpu")
    faces = backend.detect(np.zeros((96, 96, 3), np.uint8))  # random weights: any result is fine
    for f in faces:
        assert f.landmarks.shape == (68, 2)
