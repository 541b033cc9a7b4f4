import random
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(2)

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture
def data_dir() -> Path:
    return DATA
