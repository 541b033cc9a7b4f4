import cv2
import numpy as np
import pytest


@pytest.fixture
def two_faces(tmp_path, data_dir):
    """One photo with two faces side by side (obama | biden)."""
    a, b = (cv2.imread(str(data_dir / "faces" / n)) for n in ("obama.jpg", "biden.jpg"))
    h = min(a.shape[0], b.shape[0])
    a, b = (cv2.resize(x, (x.shape[1] * h // x.shape[0], h)) for x in (a, b))
    raw = tmp_path / "raw"
    raw.mkdir()
    cv2.imwrite(str(raw / "pair.jpg"), np.concatenate([a, b], 1))
    return raw
