import pytest
import torch

from facefill.config import get_preset
from facefill.models import build_generator
from facefill.models.generator import SCALES, CascadedGenerator, GeneratorBlock, Upscaler, split_legacy_buffers

TINY = 1 / 32


def conv(k, cin, cout):
    return k * k * cin * cout + cout


def linear(cin, cout):
    return cin * cout + cout


def rb(c):
    return 2 * conv(3, c, c)


# The paper's table, written out independently of facefill.models.generator.WIDTHS.
ENC = {8: [1024], 16: [512, 1024], 32: [256, 512, 1024], 64: [128, 256, 512, 1024], 128: [64, 128, 256, 512, 1024]}
DEC = {8: [512], 16: [512, 256], 32: [512, 256, 128], 64: [512, 256, 128, 64], 128: [512, 256, 128, 64, 64]}


def expected_block_params(n):
    total = conv(3, 3, 128)  # conv0 3x3/1/2, 128
    prev = 128
    for w in ENC[n]:  # stride-2 (b8: stride-1 dilated) conv + RB of the same width
        total += conv(3, prev, w) + rb(w)
        prev = w
    spatial = 8 if n == 8 else 4
    total += linear(spatial * spatial * 1024, 512)  # fc1
    total += linear(512, 16384)  # fc2 = 4 x 4 x 1024
    prev = 1024
    for c in DEC[n]:  # conv 3x3 with 4*C filters + pixel shuffle -> C channels
        total += conv(3, prev, 4 * c)
        prev = c
    total += conv(5, prev, 3)  # last conv 5x5 -> 3
    return total


@pytest.mark.parametrize("n", SCALES)
def test_full_width_parameter_count_matches_table(n):
    with torch.device("meta"):
        block = GeneratorBlock(n, width=1.0)
    assert sum(p.numel() for p in block.parameters()) == expected_block_params(n)


def test_full_width_cascade_is_about_the_papers_size():
    with torch.device("meta"):
        g = build_generator(get_preset("paper"))
    total = sum(p.numel() for p in g.parameters())
    blocks = sum(expected_block_params(n) for n in SCALES)
    up = 4 * (conv(3, 3, 4 * 64) + conv(3, 64, 3))
    assert total == blocks + up
    assert 300e6 < total < 400e6


@pytest.mark.parametrize("n", SCALES)
@pytest.mark.parametrize("in_ch", [3, 6])
def test_block_shape_range_and_gradients(n, in_ch):
    block = GeneratorBlock(n, width=TINY, in_channels=in_ch)
    x = torch.rand(2, in_ch, n, n) * 2 - 1
    y = block(x)
    assert y.shape == (2, 3, n, n)
    assert y.min() >= -1 and y.max() <= 1
    y.square().mean().backward()
    missing = [name for name, p in block.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reached {missing}"


def test_block_rejects_wrong_size():
    with pytest.raises(ValueError, match="b16 expects"):
        GeneratorBlock(16, width=TINY)(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="resolution"):
        GeneratorBlock(12)


def test_upscaler_doubles():
    y = Upscaler(TINY)(torch.zeros(2, 3, 8, 8))
    assert y.shape == (2, 3, 16, 16)


@pytest.mark.parametrize("mask_skip", [False, True])
def test_cascade_outputs_every_scale_and_all_params_get_gradients(mask_skip):
    g = CascadedGenerator(width=TINY, mask_skip=mask_skip)
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    out = g(x)
    assert list(out) == list(SCALES)
    for n, y in out.items():
        assert y.shape == (2, 3, n, n)
        assert -1 <= y.min() and y.max() <= 1
    sum(y.mean() for y in out.values()).backward()
    missing = [name for name, p in g.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing


def test_cascade_feeds_previous_output_forward():
    """Changing b8's output must visibly change b128's: the blocks are chained and the signal
    survives each block at initialisation (it did not with PyTorch's default init)."""
    g = CascadedGenerator(width=TINY).eval()
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    before = g(x)[128]
    with torch.no_grad():
        g.blocks["b8"].last.bias += 0.5
    assert (before - g(x)[128]).abs().max() > 1e-2


def test_cascade_partial_scales_and_bad_input():
    g = CascadedGenerator(width=TINY, scales=(8, 16, 32))
    assert list(g(torch.zeros(1, 3, 32, 32))) == [8, 16, 32]
    with pytest.raises(ValueError, match="double"):
        CascadedGenerator(width=TINY, scales=(8, 32))
    with pytest.raises(ValueError, match="masked face"):
        g(torch.zeros(1, 1, 32, 32))


def test_stage_and_fade_in_are_forward_arguments():
    g = CascadedGenerator(width=TINY).eval()
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    out = g(x, stage=1, alpha=0.0)
    assert list(out) == [8, 16]
    # alpha = 0: the new block is invisible; output is the nearest-upsampled b8 output.
    torch.testing.assert_close(out[16], torch.nn.functional.interpolate(out[8], scale_factor=2))
    assert not torch.allclose(g(x, stage=1, alpha=1.0)[16], out[16])
    assert list(g(x, stage=4)) == list(g(x)) == list(SCALES)
    with pytest.raises(ValueError, match="stage"):
        g(x, stage=5)


def test_state_dict_holds_weights_only():
    g = CascadedGenerator(width=TINY)
    assert not [k for k in g.state_dict() if k in ("stage", "alpha")]
    assert len(g.state_dict()) == len(list(g.parameters()))
    clean, stage = split_legacy_buffers({**g.state_dict(), "stage": torch.tensor(2), "alpha": torch.tensor(0.5)})
    assert stage == 2 and clean.keys() == g.state_dict().keys()
    assert split_legacy_buffers(g.state_dict())[1] is None


def test_paper_parameter_count_is_stated():
    """The one measured number quoted in config.py and the docs: 369,641,691."""
    with torch.device("meta"):
        g = build_generator(get_preset("paper"))
    assert sum(p.numel() for p in g.parameters()) == 369_641_691


def test_seed_determinism():
    torch.manual_seed(1)
    a = CascadedGenerator(width=TINY)
    torch.manual_seed(1)
    b = CascadedGenerator(width=TINY)
    x = torch.rand(1, 3, 128, 128)
    torch.testing.assert_close(a(x)[128], b(x)[128], rtol=0, atol=0)
    torch.manual_seed(2)
    c = CascadedGenerator(width=TINY)
    assert not torch.allclose(a(x)[128], c(x)[128])
