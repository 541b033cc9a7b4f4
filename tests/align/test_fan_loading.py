"""The fan backend's loading path, proven with weights this test creates (the real ones are a
download and cannot be fetched here). Slow: builds and saves two ~20M-parameter networks."""

import numpy as np
import pytest
import torch

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
    backend = FanBackend(device="cpu")
    faces = backend.detect(np.zeros((96, 96, 3), np.uint8))  # random weights: any result is fine
    for f in faces:
        assert f.landmarks.shape == (68, 2)
