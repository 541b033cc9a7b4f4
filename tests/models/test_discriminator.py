import pytest
import torch

from facefill.config import get_preset
from facefill.models import build_discriminator
from facefill.models.discriminator import PatchDiscriminator
from facefill.models.generator import SCALES


@pytest.mark.parametrize("n", SCALES)
def test_patch_logits_shape(n):
    d = PatchDiscriminator(n, width=1 / 16)
    y = d(torch.zeros(2, 6, n, n))
    assert y.shape[:2] == (2, 1)
    assert y.shape[-1] == n // 2 ** min(3, max(1, (n // 4).bit_length() - 1))


def test_multiscale_is_conditional_on_mask():
    d = build_discriminator(get_preset("tiny"))
    images = {n: torch.zeros(1, 3, n, n) for n in SCALES}
    a = d(images, torch.zeros(1, 3, 128, 128))
    b = d(images, torch.ones(1, 3, 128, 128))
    assert set(a) == set(SCALES)
    assert any(not torch.allclose(a[n], b[n]) for n in SCALES)
